"""Wrapper of kernels/compact.cu: occupancy grid [B*T, words] uint32 -> CSR spike list."""
from __future__ import annotations

from gpusnn.backends.gpu.runtime import KernelRuntime, i32, i64

GRID_BITS = 0     # one bit per id (binary spikes): words = ceil(n / 32)
GRID_COUNTS = 1   # one counter per id (count encoding): words = n


def grid_words(n_ids: int, mode: int) -> int:
    """uint32 words per grid row for n_ids ids."""
    return (n_ids + 31) // 32 if mode == GRID_BITS else n_ids


def compact(rt: KernelRuntime, grid, mode: int):
    """(indptr int64 [n_rows + 1], ids int32 [nnz], counts) of an occupancy grid, ids sorted
    per row; counts int32 [nnz] in GRID_COUNTS mode (the coalesced tensor), None in GRID_BITS.

    One device-to-host read (nnz, to size ids: a synchronisation); everything else stays on
    the device.
    """
    xp = rt.xp
    n_rows, words = grid.shape
    row_nnz = rt.empty(n_rows, xp.int64)
    rt.launch("compact", "grid_row_nnz", n_rows, (grid, i64(n_rows), i32(words), i32(mode), row_nnz))
    indptr = rt.exclusive_scan(row_nnz)
    ids = rt.empty(rt.scalar(indptr[-1], "compact nnz"), xp.int32)
    counts = rt.empty(ids.shape[0], xp.int32) if mode == GRID_COUNTS else None
    rt.launch("compact", "grid_compact", n_rows,
              (grid, i64(n_rows), i32(words), i32(mode), indptr, ids, ids if counts is None else counts))
    return indptr, ids, counts
