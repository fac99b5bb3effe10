"""One entry point from a data source to the trainer's EncodedDataset.

Sources: "synth-gestures" (the bundled synthetic DVS128 Gesture recordings, generated on first
use into the cache), a DVS128 Gesture directory (with the split files), tonic's preprocessed
DVSGesture layout directory, or an HDF5 event store (.h5). Event files are parsed once: a
directory is converted (trial by trial, :mod:`data_tools.convert`) to an event store in the
cache, which later runs read directly; a store of more than IN_MEMORY_EVENTS events is read
batch by batch (:mod:`data_tools.loader`), a smaller one encoded whole in memory.
Cache directory: cache_dir, else $GPUSNN_CACHE, else ~/.cache/gpusnn.
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
from data_tools.encode import BINNINGS, MODES, apply_transform, encode
from data_tools.errors import ConfigError
from data_tools.event_store import EventStore, is_complete, load_store
from data_tools.events import GESTURE_CLASSES
from data_tools.gesture_layout import SPLIT_FILES
from data_tools.loader import StoreSplit
from data_tools.samples import SampleSet
from data_tools.spikes import EncodedDataset
from data_tools.synth import VERSION, SynthConfig, generate
from data_tools.tonic_layout import is_tonic_dir

log = logging.getLogger(__name__)

SYNTH_SOURCE = "synth-gestures"
STORE_NAME = "events.h5"
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
        generate(tmp, cfg, progress=progress)
        try:
            tmp.replace(root)
        except OSError:                                # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    convert(root, store, progress=progress)
    return store


def is_store(path) -> bool:
    """True when path is an HDF5 file (by its signature)."""
    p = Path(path)
    return p.is_file() and p.open("rb").read(8) == b"\x89HDF\r\n\x1a\n"


def store_path(source: str, *, counting: str = "rows", cache_dir=None, progress: bool = True) -> Path:
    """The event store of source (see the module docstring): source itself when it is a store,
    else its store in the cache, converted trial by trial on first use (and again when an earlier
    conversion did not finish)."""
    if source == SYNTH_SOURCE:
        return synth_store(cache_dir, progress=progress)
    path = Path(source)
    if is_store(path):
        return path
    gesture = path.is_dir() and (path / SPLIT_FILES[True]).exists()
    if gesture or (path.is_dir() and is_tonic_dir(path)):
        rule = counting if gesture else "tonic"
        key = hashlib.sha256(f"{path.resolve()}|{rule}".encode()).hexdigest()[:16]
        store = cache_root(cache_dir) / f"store-{path.name}-{key}.h5"
        if not is_complete(store):
            convert(path, store, counting=counting, progress=progress)
        return store
    raise ConfigError(f"data source {source!r} is not {SYNTH_SOURCE!r}, an event store (.h5), a DVS128 Gesture "
                      f"directory (with {SPLIT_FILES[True]}) or a tonic DVSGesture directory")


def load_samples(source: str, *, counting: str = "rows", cache_dir=None, progress: bool = True) -> SampleSet:
    """All labelled samples of source in memory (through its event store)."""
    return load_store(store_path(source, counting=counting, cache_dir=cache_dir, progress=progress))


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
    if binning not in BINNINGS or mode not in MODES:
        raise ConfigError(f"binning must be one of {BINNINGS} and mode one of {MODES}, got {binning!r}, {mode!r}")
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
