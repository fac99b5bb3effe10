"""Spike logs: the input events and every layer's spikes of chosen samples, in HDF5.

Schema (format "gpusnn-spikelog", version 1; one *entry* = one sample seen once, at one
epoch's evaluation; L = number of layers):

    /            attrs: format = "gpusnn-spikelog", version = 1, config (RunConfig as JSON
                        text), class_names (JSON list), n_steps (T), widths (int64 [L + 1]),
                        input_shape (int64 [3] = [P, H, W]; an input id decodes as
                        id = (p * H + y) * W + x; [1, 28, 28] for MNIST)
    /entries     sample_id  int64 [E]  index of the sample in its dataset split
                 split      uint8 [E]  0 = train, 1 = test
                 epoch      int32 [E]  completed training epochs of the weights used
                 label      int64 [E]  true class
                 prediction int64 [E]  predicted class (argmax of the output rates)
    /input       entry  int32 [S0]  row of /entries
                 step   int32 [S0]  time step 1..T
                 neuron int32 [S0]  input id 0..widths[0]-1 (repeats = several events)
    /layers/<l>  entry, step, neuron as /input, for the spikes of layer l = 1..L
                 (neuron in 0..widths[l]-1)

Every dataset is 1-D, chunked, gzip-compressed (with the shuffle filter) and has maxshape
(None,), so a log grows epoch by epoch. Events are stored sorted by entry, then step.
Appends are atomic (copy in memory, append, write, fsync, rename): a crash leaves the previous log whole.

Reading: open_log(path) -> SpikeLog; log.spikes(layer, entry) -> (step, neuron), layer 0
being the input.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from data_tools.spikes import EncodedDataset, SpikeTensor
from gpusnn import training
from gpusnn.backends import Backend
from gpusnn.config import RunConfig
from gpusnn.errors import CheckpointError, ConfigError
from gpusnn.io.hdf5 import atomic_write, check_format, hdf5_image, open_h5

FORMAT = "gpusnn-spikelog"
VERSION = 1
SPLITS = {"train": 0, "test": 1}
ENTRY_FIELDS = {"sample_id": np.int64, "split": np.uint8, "epoch": np.int32, "label": np.int64,
                "prediction": np.int64}
EVENT_FIELDS = ("entry", "step", "neuron")
CHUNK = 16384


def input_shape(data: EncodedDataset) -> tuple[int, int, int]:
    """[P, H, W] of the data's input ids: meta["input_shape"], else [1, 1, n_inputs]."""
    shape = data.meta.get("input_shape") if data.meta else None
    return tuple(int(s) for s in shape) if shape is not None else (1, 1, data.train.n_inputs)


def header(cfg: RunConfig, data: EncodedDataset) -> dict:
    """Root attributes of a log of a run with config cfg on data."""
    return {"format": FORMAT, "version": VERSION, "config": json.dumps(cfg.to_dict()),
            "class_names": json.dumps(list(data.class_names)), "n_steps": int(cfg.network.n_steps),
            "widths": np.asarray(cfg.network.widths, np.int64),
            "input_shape": np.asarray(input_shape(data), np.int64)}


def layer_events(backend: Backend, weights, spikes: SpikeTensor, theta: float) -> list[tuple[np.ndarray, ...]]:
    """Run the network on spikes (host tensor, B samples) and return, for layer 0 (input)
    to L, the (sample 0..B-1, step 1..T, neuron) int arrays of its spikes."""
    records = backend.forward(weights, training.device_spikes(backend, spikes), theta)
    return [spikes.expand().to_coo()] + [r.spikes.to(np).to_coo() for r in records]


def _create(f: h5py.File, head: dict) -> None:
    f.attrs.update(head)
    for name, dtype in ENTRY_FIELDS.items():
        f.create_dataset(f"entries/{name}", (0,), dtype=dtype, maxshape=(None,), chunks=(1024,),
                         compression="gzip", shuffle=True)
    for group in _groups(len(head["widths"]) - 1):
        for name in EVENT_FIELDS:
            f.create_dataset(f"{group}/{name}", (0,), dtype=np.int32, maxshape=(None,), chunks=(CHUNK,),
                             compression="gzip", shuffle=True)


def _groups(n_layers: int) -> list[str]:
    return ["input"] + [f"layers/{l}" for l in range(1, n_layers + 1)]


def _extend(ds: h5py.Dataset, values: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize((n + len(values),))
    ds[n:] = values


def _check_header(f: h5py.File, path: Path, head: dict) -> None:
    check_format(f, path, FORMAT, VERSION)
    for key in ("n_steps", "widths", "input_shape"):
        if not np.array_equal(np.asarray(f.attrs[key]), np.asarray(head[key])):
            raise CheckpointError(f"{path}: cannot append, the log has {key} = {np.asarray(f.attrs[key]).tolist()} "
                                  f"but this run has {np.asarray(head[key]).tolist()}")


def append(path: str | os.PathLike, head: dict, entries: dict, events: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """Append entries (field -> array [B], see ENTRY_FIELDS) and their events (per group,
    input first: (local entry 0..B-1, step, neuron) arrays) to the log at path, creating it
    with root attributes head if needed. Atomic. Returns the new entries' rows, int64 [B]."""
    path = Path(path)
    return _write(path, head, entries, events, path if path.exists() else None)


def _write(path: Path, head: dict, entries: dict, events: list, base: Path | None) -> np.ndarray:
    """append() onto a copy of base (None = a new log), written atomically to path."""
    n_new = len(entries["sample_id"])
    rows = np.zeros(0, np.int64)

    def fill(f: h5py.File) -> None:
        nonlocal rows
        if base is not None:
            _check_header(f, base, head)
        else:
            _create(f, head)
        start = f["entries/sample_id"].shape[0]
        rows = np.arange(start, start + n_new, dtype=np.int64)
        for name, dtype in ENTRY_FIELDS.items():
            _extend(f[f"entries/{name}"], np.asarray(entries[name], dtype))
        for group, (local, step, neuron) in zip(_groups(len(head["widths"]) - 1), events, strict=True):
            for name, values in zip(EVENT_FIELDS, (np.asarray(local) + start, step, neuron)):
                _extend(f[f"{group}/{name}"], np.asarray(values, np.int32))

    atomic_write(path, hdf5_image(fill, None if base is None else base.read_bytes()))
    return rows


def log_samples(path: str | os.PathLike, backend: Backend, weights, cfg: RunConfig, data: EncodedDataset,
                sample_ids, split: str = "test", epoch: int = 0) -> np.ndarray:
    """Run the samples sample_ids (int array, indices into the split) through weights and
    append their input events, spikes, labels and predictions to the log. Returns their rows."""
    ids = np.asarray(sample_ids, np.int64)
    spikes, labels = (data.test, data.test_labels) if split == "test" else (data.train, data.train_labels)
    if ids.size and (ids.min() < 0 or ids.max() >= spikes.n_samples):
        raise CheckpointError(f"{path}: sample ids must lie in 0..{spikes.n_samples - 1} of the {split} split, "
                              f"got {ids.min()}..{ids.max()}")
    chosen = spikes.select(ids)
    pred = training.predict(backend, weights, chosen, cfg).argmax(axis=1)
    entries = {"sample_id": ids, "split": np.full(ids.size, SPLITS[split]), "epoch": np.full(ids.size, epoch),
               "label": labels[ids], "prediction": pred}
    return append(path, header(cfg, data), entries, layer_events(backend, weights, chosen, cfg.network.theta))


def truncate(path: str | os.PathLike, max_epoch: int) -> int:
    """Drop the entries with epoch > max_epoch (and their events), atomically; a resumed run
    calls this so that epochs it repeats are not logged twice. Returns entries dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    with open_log(path) as old:
        keep = old.entries["epoch"] <= max_epoch
        if keep.all():
            return 0
        head = {k: old.attrs[k] for k in ("format", "version", "config", "class_names", "n_steps", "widths",
                                          "input_shape")}
        new_row = np.cumsum(keep) - 1
        entries = {k: v[keep] for k, v in old.entries.items()}
        events = []
        for layer in range(old.n_layers + 1):
            entry, step, neuron = old.events(layer)
            m = keep[entry]
            events.append((new_row[entry[m]], step[m], neuron[m]))
    _write(path, head, entries, events, None)
    return int((~keep).sum())


class SpikeLog:
    """A spike log opened for reading (use as a context manager or call close()).

    entries: field -> array [E] (see module docstring); n_layers: L; widths: int64 [L + 1];
    n_steps: T; input_shape: (P, H, W); class_names: list of str; config: the run's
    config as a plain dict; attrs: the raw root attributes.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = open_h5(self.path, "spike log")
        try:
            f = self._f
            check_format(f, self.path, FORMAT, VERSION)
            missing = [k for k in ("config", "class_names", "n_steps", "widths", "input_shape") if k not in f.attrs]
            if missing:
                raise CheckpointError(f"{self.path}: missing root attribute(s) {missing}")
            self.attrs = dict(f.attrs)
            self.config = json.loads(f.attrs["config"])
            self.class_names = json.loads(f.attrs["class_names"])
            self.n_steps = int(f.attrs["n_steps"])
            self.widths = np.asarray(f.attrs["widths"], np.int64)
            self.input_shape = tuple(int(s) for s in f.attrs["input_shape"])
            self.n_layers = len(self.widths) - 1
            self.entries = {k: self._read(f"entries/{k}") for k in ENTRY_FIELDS}
            for group in ["entries"] + _groups(self.n_layers):
                names = ENTRY_FIELDS if group == "entries" else EVENT_FIELDS
                if len({len(self._dataset(f"{group}/{k}")) for k in names}) != 1:
                    raise CheckpointError(f"{self.path}: the datasets of /{group} have different lengths")
        except BaseException:
            self._f.close()
            raise
        self._entry_cache: dict[int, np.ndarray] = {}

    def _dataset(self, name: str) -> h5py.Dataset:
        if name not in self._f or not isinstance(self._f[name], h5py.Dataset):
            raise CheckpointError(f"{self.path}: missing dataset /{name}")
        return self._f[name]

    def _read(self, name: str) -> np.ndarray:
        return self._dataset(name)[...]

    @property
    def n_entries(self) -> int:
        return len(self.entries["sample_id"])

    def _group(self, layer: int) -> str:
        if not 0 <= layer <= self.n_layers:
            raise IndexError(f"layer must lie in 0..{self.n_layers} (0 = input), got {layer}")
        return _groups(self.n_layers)[layer]

    def events(self, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (entry, step, neuron) int32 arrays of layer (0 = input, 1..L)."""
        g = self._group(layer)
        return tuple(self._read(f"{g}/{k}") for k in EVENT_FIELDS)

    def spikes(self, layer: int, entry: int) -> tuple[np.ndarray, np.ndarray]:
        """(step 1..T, neuron) int32 arrays of one entry's spikes in layer (0 = input)."""
        if not 0 <= entry < self.n_entries:
            raise IndexError(f"entry must lie in 0..{self.n_entries - 1}, got {entry}")
        g = self._group(layer)
        if layer not in self._entry_cache:
            self._entry_cache[layer] = self._read(f"{g}/entry")
        rows = self._entry_cache[layer]
        lo, hi = np.searchsorted(rows, entry, "left"), np.searchsorted(rows, entry, "right")
        return self._f[f"{g}/step"][lo:hi], self._f[f"{g}/neuron"][lo:hi]

    def find(self, sample_id: int | None = None, split: str | None = None, epoch: int | None = None) -> np.ndarray:
        """Rows of /entries matching every criterion given, int64 [n]."""
        m = np.ones(self.n_entries, bool)
        for field, value in (("sample_id", sample_id), ("epoch", epoch),
                             ("split", None if split is None else SPLITS[split])):
            if value is not None:
                m &= self.entries[field] == value
        return np.flatnonzero(m)

    def storage(self) -> dict:
        """Per group (input, layers/1, ...): events stored and bytes on disk (compressed)."""
        out = {}
        for g in ["entries"] + _groups(self.n_layers):
            ds = [self._f[f"{g}/{k}"] for k in self._f[g]]
            out[g] = {"events": int(ds[0].shape[0]), "bytes": int(sum(d.id.get_storage_size() for d in ds))}
        return out

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "SpikeLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_log(path: str | os.PathLike) -> SpikeLog:
    """Open a spike log for reading; CheckpointError names the file and the problem."""
    return SpikeLog(path)


def parse_ids(text: str, n_samples: int) -> np.ndarray:
    """The samples a --log-spikes value names, int64 [n]: "N" = the first N samples (at most
    n_samples), "i,j,k" = those sample ids (one id alone: "i,")."""
    try:
        if "," not in text:
            return np.arange(min(int(text), n_samples), dtype=np.int64)
        ids = np.asarray([int(t) for t in text.split(",") if t.strip()], np.int64)
    except ValueError as e:
        raise ConfigError(f"--log-spikes takes a count N or comma-separated sample ids, got {text!r}") from e
    bad = ids[(ids < 0) | (ids >= n_samples)]
    if bad.size:
        raise ConfigError(f"--log-spikes: sample id(s) {bad.tolist()} outside 0..{n_samples - 1}")
    return ids
