"""The sparse spike tensor: for each sample b and step t, the list of active input ids.

Layout (CSR over rows r = b * T + (t - 1), steps t = 1..T):

    indptr : int64 [B * T + 1]   row r's ids are ids[indptr[r]:indptr[r + 1]]
    ids    : int32 [nnz]         input ids in 0..n_inputs-1; a repeated id within a row
                                 means that input spiked more than once in that step
                                 (count encoding, uncoalesced); binary encodings have no repeats
    counts : int32 [nnz] or None optional spikes per entry (>= 1); None means all ones.
                                 A coalesced tensor (``coalesce()``) has each id at most
                                 once per row and its multiplicity in counts, so
                                 nnz <= B * T * n_inputs; count encoding emits it so.

Every consumer treats an entry (r, j, c) exactly as c repeated entries (r, j): one synapse
read times a count.

DVS events and rate-coded images share this one path into the network. LayerRecord, at the
end, is what one layer of the network made of such spikes (its own spikes and per-neuron
spike times), the record every backend's forward pass returns.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np

from data_tools.errors import ShapeError


@dataclass(frozen=True)
class SpikeTensor:
    """Spikes of B samples over T steps on n_inputs input lines (see module docstring)."""

    indptr: np.ndarray
    ids: np.ndarray
    n_samples: int
    n_steps: int
    n_inputs: int
    counts: np.ndarray | None = None

    #: dtype of each array field in the layout of the module docstring (to() converts to it)
    DTYPES: ClassVar[dict[str, type]] = {"indptr": np.int64, "ids": np.int32, "counts": np.int32}

    def __post_init__(self):
        if self.n_steps <= 0:
            raise ShapeError(f"number of steps T must be positive, got {self.n_steps}")
        if self.n_samples < 0 or self.n_inputs <= 0:
            raise ShapeError(f"bad spike tensor size: {self.n_samples} samples, {self.n_inputs} inputs")
        if self.indptr.shape != (self.n_samples * self.n_steps + 1,):
            raise ShapeError(f"indptr has shape {self.indptr.shape}, expected "
                             f"({self.n_samples * self.n_steps + 1},) for B={self.n_samples}, T={self.n_steps}")
        if self.ids.ndim != 1:
            raise ShapeError(f"ids must be 1-D, got shape {self.ids.shape}")
        # Values are checked only on the host: reading a device array (CuPy) back would
        # synchronise; device tensors come from the project's kernels and uploads of host ones.
        if isinstance(self.indptr, np.ndarray) and (int(self.indptr[-1]) != self.ids.shape[0]
                                                    or int(self.indptr[0]) != 0):
            raise ShapeError("indptr does not describe ids (indptr[0] must be 0 and indptr[-1] == len(ids))")
        if self.counts is not None and self.counts.shape != self.ids.shape:
            raise ShapeError(f"counts has shape {self.counts.shape}, expected {self.ids.shape} (one per id)")
        if self.counts is not None and self.counts.dtype.kind not in "iu":
            raise ShapeError(f"counts must be integers, got dtype {self.counts.dtype}")

    def to(self, xp) -> "SpikeTensor":
        """The same spikes with every array field a C-contiguous array of module xp (numpy
        for the host, cupy for the device), in its DTYPES dtype (a field not listed there
        keeps its own). Sizes and absent optional fields (None) stay as they are.

        Arrays already of that module, dtype and layout are not copied; when none needs
        moving the tensor itself is returned.
        """
        return self.map_arrays(lambda name, a: _array_to(a, xp, self.DTYPES.get(name)))

    def map_arrays(self, fn) -> "SpikeTensor":
        """The same spikes with every array field replaced by fn(field name, array) (e.g. an
        upload through a backend's asarray); the tensor itself when fn returns every array
        unchanged."""
        moved = {f.name: fn(f.name, getattr(self, f.name))
                 for f in fields(self) if getattr(getattr(self, f.name), "ndim", 0) >= 1}
        if all(a is getattr(self, name) for name, a in moved.items()):
            return self
        return replace(self, **moved)

    @property
    def nnz(self) -> int:
        """Number of entries (ids); the number of spikes when counts is None."""
        return int(self.ids.shape[0])

    def entry_counts(self) -> np.ndarray:
        """Spikes of every entry, int32 [nnz] (ones when counts is None)."""
        return np.ones(self.nnz, np.int32) if self.counts is None else np.asarray(self.counts, np.int32)

    def n_spikes(self) -> int:
        """Total number of input spikes (sum of counts)."""
        return self.nnz if self.counts is None else int(np.asarray(self.counts, np.int64).sum())

    def coalesce(self) -> "SpikeTensor":
        """The same spikes with every id at most once per row, sorted, multiplicities in counts.

        Returns self when it already is (ids strictly increasing within every row); O(nnz)
        for that check, O(nnz log nnz) otherwise.
        """
        key = self.rows() * self.n_inputs + self.ids
        if key.size < 2 or bool(np.all(key[1:] > key[:-1])):
            return self
        uniq, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse, weights=None if self.counts is None else self.counts,
                             minlength=uniq.size).astype(np.int32)
        rows = uniq // self.n_inputs
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=self.n_samples * self.n_steps))))
        return SpikeTensor(indptr.astype(np.int64), (uniq % self.n_inputs).astype(np.int32),
                           self.n_samples, self.n_steps, self.n_inputs, counts)

    def expand(self) -> "SpikeTensor":
        """The same spikes without counts: each entry repeated counts times (uncoalesced)."""
        if self.counts is None:
            return self
        c = np.asarray(self.counts, np.int64)
        row_len = np.bincount(self.rows(), weights=c, minlength=self.n_samples * self.n_steps).astype(np.int64)
        indptr = np.concatenate(([0], np.cumsum(row_len))).astype(np.int64)
        return SpikeTensor(indptr, np.repeat(self.ids, c).astype(np.int32), self.n_samples, self.n_steps,
                           self.n_inputs)

    def rows(self) -> np.ndarray:
        """Row index r = b * T + t - 1 of every spike, int64 [nnz]."""
        return np.repeat(np.arange(self.n_samples * self.n_steps, dtype=np.int64), np.diff(self.indptr))

    def to_coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sample, step, id) of every spike; steps are 1-based. int64, int32, int32 [nnz]."""
        r = self.rows()
        return r // self.n_steps, (r % self.n_steps + 1).astype(np.int32), self.ids.astype(np.int32)

    def to_dense(self) -> np.ndarray:
        """Spike counts as a dense array, int32 [B, T, n_inputs]."""
        out = np.zeros((self.n_samples * self.n_steps, self.n_inputs), np.int32)
        np.add.at(out, (self.rows(), self.ids.astype(np.int64)), self.entry_counts())
        return out.reshape(self.n_samples, self.n_steps, self.n_inputs)

    def select(self, samples) -> "SpikeTensor":
        """A new tensor holding the given samples (int array, in that order)."""
        samples = np.asarray(samples, dtype=np.int64)
        if samples.size and (samples.min() < 0 or samples.max() >= self.n_samples):
            raise IndexError(f"sample index out of range 0..{self.n_samples - 1}")
        T = self.n_steps
        starts = self.indptr[samples * T].tolist()
        stops = self.indptr[(samples + 1) * T].tolist()
        # each sample's entries are one contiguous slice: concatenate the slices (memcpy speed)
        ids = np.concatenate([self.ids[a:b] for a, b in zip(starts, stops)]) if starts else self.ids[:0].copy()
        counts = None if self.counts is None else (
            np.concatenate([self.counts[a:b] for a, b in zip(starts, stops)]) if starts else self.counts[:0].copy())
        row_len = np.diff(self.indptr)[(samples[:, None] * T + np.arange(T)).ravel()]
        indptr = np.concatenate(([0], np.cumsum(row_len))).astype(np.int64)
        return SpikeTensor(indptr, ids, int(samples.size), T, self.n_inputs, counts)


def _array_to(a, xp, dtype):
    """a as a C-contiguous array of module xp with dtype (None = a's own)."""
    if xp is np and not isinstance(a, np.ndarray):
        a = a.get()                         # a device array (CuPy): copy it to the host
    return xp.ascontiguousarray(xp.asarray(a, dtype=dtype))


def from_coo(sample, step, ids, n_samples: int, n_steps: int, n_inputs: int) -> SpikeTensor:
    """Build a tensor from (sample, step 1..T, id) triples in any order (repeats are kept)."""
    sample = np.asarray(sample, np.int64)
    step = np.asarray(step, np.int64)
    ids = np.asarray(ids, np.int64)
    if not (sample.shape == step.shape == ids.shape):
        raise ShapeError("sample, step and id arrays must have the same length")
    if ids.size:
        if step.min() < 1 or step.max() > n_steps:
            raise ShapeError(f"steps must lie in 1..{n_steps}")
        if ids.min() < 0 or ids.max() >= n_inputs:
            raise ShapeError(f"input ids must lie in 0..{n_inputs - 1}")
        if sample.min() < 0 or sample.max() >= n_samples:
            raise ShapeError(f"sample indices must lie in 0..{n_samples - 1}")
    row = sample * n_steps + step - 1
    order = np.lexsort((ids, row))
    counts = np.bincount(row, minlength=n_samples * n_steps)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return SpikeTensor(indptr, ids[order].astype(np.int32), n_samples, n_steps, n_inputs)


def from_dense(dense: np.ndarray, coalesced: bool = False) -> SpikeTensor:
    """Build a tensor from spike counts [B, T, n_inputs] (non-negative integers): one entry
    per spike, or with coalesced one entry per nonzero count (ids sorted, counts set)."""
    dense = np.asarray(dense)
    if dense.ndim != 3:
        raise ShapeError(f"dense spikes must be [B, T, n_inputs], got shape {dense.shape}")
    B, T, N = dense.shape
    flat = dense.reshape(B * T, N).astype(np.int64)
    if flat.size and flat.min() < 0:
        raise ShapeError("spike counts must be non-negative")
    r, j = np.nonzero(flat)
    reps = flat[r, j]
    if coalesced:
        indptr = np.concatenate(([0], np.cumsum(np.bincount(r, minlength=B * T)))).astype(np.int64)
        return SpikeTensor(indptr, j.astype(np.int32), B, T, N, reps.astype(np.int32))
    return from_coo(np.repeat(r // T, reps), np.repeat(r % T + 1, reps), np.repeat(j, reps), B, T, N)


def concatenate(tensors: list[SpikeTensor]) -> SpikeTensor:
    """Stack samples of tensors with equal T and n_inputs."""
    if not tensors:
        raise ShapeError("nothing to concatenate")
    T, N = tensors[0].n_steps, tensors[0].n_inputs
    if any(t.n_steps != T or t.n_inputs != N for t in tensors):
        raise ShapeError("tensors to concatenate must share T and n_inputs")
    offs = np.cumsum([0] + [t.nnz for t in tensors[:-1]])
    indptr = np.concatenate([[0]] + [t.indptr[1:] + o for t, o in zip(tensors, offs)]).astype(np.int64)
    ids = np.concatenate([t.ids for t in tensors]).astype(np.int32)
    counts = None if all(t.counts is None for t in tensors) else np.concatenate([t.entry_counts() for t in tensors])
    return SpikeTensor(indptr, ids, sum(t.n_samples for t in tensors), T, N, counts)


@dataclass(frozen=True)
class EncodedDataset:
    """A labelled train/test split, encoded as spikes.

    train / test are batch sources (data_tools.loader.BatchSource): a SpikeTensor held in
    memory, or a data_tools.loader.StoreSplit that reads and encodes each batch from an event
    store; both give the same spike tensors through select(index).

    labels are int64 class indices 0..n_classes-1; identity is a short hash of what the
    split was made from (for checkpoints); meta holds free-form provenance (JSON-able).
    """

    name: str
    train: SpikeTensor
    train_labels: np.ndarray
    test: SpikeTensor
    test_labels: np.ndarray
    n_classes: int
    class_names: tuple[str, ...]
    identity: str
    meta: dict


@dataclass
class LayerRecord:
    """What one layer did over the window, for a batch (all [B, N] unless noted).

    counts int32: spikes per neuron; t_first, t_last, t_prev int32: first, last and
    second-to-last spike step (0 = none); u_final float32: residual potential u(T);
    spikes: the layer's output spikes as a SpikeTensor (binary, B x T x N), or a backend's
    device form of them with the same sizes and .to(xp) -> SpikeTensor (an occupancy grid).
    """

    counts: np.ndarray
    t_first: np.ndarray
    t_last: np.ndarray
    t_prev: np.ndarray
    u_final: np.ndarray
    spikes: SpikeTensor
