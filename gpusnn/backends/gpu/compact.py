"""Wrapper of kernels/compact.cu: occupancy grid [B*T, words] uint32 -> CSR spike list, and
SpikeGrid, a layer's binary spikes kept as that grid on the device (never compacted in
training: the next layer's forward and the gradient read the grid itself)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu.runtime import KernelRuntime, i32, i64
from gpusnn.errors import ShapeError

GRID_BITS = 0     # one bit per id (binary spikes): words = ceil(n / 32)
GRID_COUNTS = 1   # one counter per id (count encoding): words = n


def grid_words(n_ids: int, mode: int) -> int:
    """uint32 words per grid row for n_ids ids."""
    return (n_ids + 31) // 32 if mode == GRID_BITS else n_ids


@dataclass(frozen=True)
class SpikeGrid:
    """Binary spikes of n_samples x n_steps x n_inputs as a GRID_BITS occupancy grid.

    grid: uint32 [n_samples * n_steps, grid_words(n_inputs, GRID_BITS)] (device or host
    array); bit j & 31 of word j >> 5 of row b * n_steps + t - 1 is set when input j spiked
    at step t (1..T). Bits at j >= n_inputs are zero. The kernel-level convention of
    compact.cu / forward.cu (GPUSNN_GRID_BITS). A grid holds no repeats and no counts.
    """

    grid: Any
    n_samples: int
    n_steps: int
    n_inputs: int

    def __post_init__(self):
        want = (self.n_samples * self.n_steps, grid_words(self.n_inputs, GRID_BITS))
        if tuple(self.grid.shape) != want or self.grid.dtype != np.uint32:
            raise ShapeError(f"spike grid must be uint32 {want}, got {self.grid.dtype} {tuple(self.grid.shape)}")

    @classmethod
    def from_tensor(cls, spikes: SpikeTensor) -> SpikeGrid:
        """The grid (a host array) of a host SpikeTensor of binary spikes; ShapeError for
        counts or repeated ids (a grid holds one bit per input and step)."""
        if spikes.counts is not None:
            raise ShapeError("a spike grid holds binary spikes: this tensor has counts (count encoding)")
        B, T, N = spikes.n_samples, spikes.n_steps, spikes.n_inputs
        bits = np.zeros((B * T, grid_words(N, GRID_BITS) * 32), np.uint8)
        bits[spikes.rows(), spikes.ids] = 1
        if int(bits.sum()) != spikes.nnz:
            raise ShapeError("a spike grid holds binary spikes: this tensor repeats ids within a step")
        return cls(np.packbits(bits, axis=1, bitorder="little").view(np.uint32), B, T, N)

    def to(self, xp) -> SpikeTensor:
        """The same spikes as a SpikeTensor (ids sorted per row) of array module xp, compacted
        on the host: one device-to-host copy of the grid (a synchronisation) on cuda. For spike
        logs, profiles and benchmarks, not the training step."""
        grid = self.grid.get() if hasattr(self.grid, "get") else np.asarray(self.grid)
        bits = np.unpackbits(np.ascontiguousarray(grid).view(np.uint8), axis=1,
                             bitorder="little")[:, :self.n_inputs]
        rows, ids = np.nonzero(bits)
        indptr = np.zeros(bits.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=bits.shape[0]), out=indptr[1:])
        return SpikeTensor(indptr, ids.astype(np.int32), self.n_samples, self.n_steps, self.n_inputs).to(xp)


@dataclass(frozen=True)
class PaddedSpikes:
    """A CSR spike tensor (data_tools.spikes layout) in arrays of a fixed capacity, so that
    batches of any nnz up to it have the same shapes: indptr int64 [B*T + 1], ids int32
    [capacity], counts int32 [capacity] or None; entries past indptr[-1] are padding, never
    read (the kernels stop at indptr). The forward and gradient kernels take it as they take
    a SpikeTensor (same field names)."""

    indptr: Any
    ids: Any
    counts: Any
    n_samples: int
    n_steps: int
    n_inputs: int

    @classmethod
    def from_tensor(cls, spikes: SpikeTensor, capacity: int) -> PaddedSpikes:
        """A host SpikeTensor padded with zeros to capacity entries (ShapeError when it has more)."""
        if spikes.nnz > capacity:
            raise ShapeError(f"{spikes.nnz} spike entries do not fit a capacity of {capacity}")

        def pad(a):
            out = np.zeros(capacity, np.int32)
            out[:spikes.nnz] = a
            return out
        return cls(np.asarray(spikes.indptr, np.int64), pad(spikes.ids), None if spikes.counts is None else
                   pad(spikes.counts), spikes.n_samples, spikes.n_steps, spikes.n_inputs)

    @property
    def capacity(self) -> int:
        """Entries the ids (and counts) arrays hold, padding included."""
        return int(self.ids.shape[0])

    def to(self, xp) -> SpikeTensor:
        """The SpikeTensor (padding cut off) of array module xp, built on the host: one
        device-to-host copy of the arrays (a synchronisation) on cuda. For tests, spike logs and
        profiles, not the training step."""
        def host(a):
            return a.get() if hasattr(a, "get") else np.asarray(a)
        indptr = host(self.indptr)
        nnz = int(indptr[-1])
        return SpikeTensor(indptr, host(self.ids)[:nnz], self.n_samples, self.n_steps, self.n_inputs,
                           None if self.counts is None else host(self.counts)[:nnz]).to(xp)


def compact(rt: KernelRuntime, grid, mode: int, capacity: int | None = None, indptr=None):
    """(indptr int64 [n_rows + 1], ids int32 [nnz], counts) of an occupancy grid, ids sorted
    per row; counts int32 [nnz] in GRID_COUNTS mode (the coalesced tensor), None in GRID_BITS.

    Without capacity: one device-to-host read (nnz, to size ids: a synchronisation). With
    capacity (an upper bound of nnz the caller knows on the host): ids and counts have
    capacity entries, those past indptr[-1] unwritten padding (the PaddedSpikes layout), and
    nothing is read back. indptr: the rows' CSR offsets when the grid's producer counted the
    entries itself (encode.cu in count mode); else grid_row_nnz and a scan make them.
    """
    xp = rt.xp
    n_rows, words = grid.shape
    if indptr is None:
        row_nnz = rt.empty(n_rows, xp.int64)
        rt.launch("compact", "grid_row_nnz", n_rows, (grid, i64(n_rows), i32(words), i32(mode), row_nnz))
        indptr = rt.exclusive_scan(row_nnz)
    ids = rt.empty(rt.scalar(indptr[-1], "compact nnz") if capacity is None else capacity, xp.int32)
    counts = rt.empty(ids.shape[0], xp.int32) if mode == GRID_COUNTS else None
    rt.launch("compact", "grid_compact", n_rows,
              (grid, i64(n_rows), i32(words), i32(mode), indptr, ids, ids if counts is None else counts))
    return indptr, ids, counts
