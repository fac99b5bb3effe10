"""Wrapper of kernels/forward.cu: one IF layer over the whole window, for a batch.

The layer runs in sample chunks (current_chunks): per chunk the input currents
I [samples * T, n_post] float32 (kernel A: currents_csr or currents_grid, event-driven, one
block per row; or, on the dense path, X = scatter_dense / scatter_grid then I = X @ W with
the array module's matmul: cuBLAS on cuda, NumPy when emulated), then if_scan over t per
(b, i). A hidden layer's output stays its occupancy grid (compact.SpikeGrid), which the
next layer reads as it is.
"""
from __future__ import annotations

from data_tools.spikes import LayerRecord, SpikeTensor
from gpusnn.backends.gpu.compact import GRID_BITS, PaddedSpikes, SpikeGrid, grid_words
from gpusnn.backends.gpu.runtime import BLOCK, MAX_BLOCKS, KernelRuntime, f32, i32, i64
from gpusnn.errors import ConfigError, ShapeError

#: Input density (entries / (B x T x n_pre)) above which mode "auto" takes the dense GEMM path.
#: MODELLED, not measured (docs/kernels.md, roofline model of one H200: the event path moves
#: 4 bytes of W per entry and post neuron at L2 bandwidth, the GEMM 2 x n_pre x n_post flops
#: per row at FP32 rate plus X): benchmarks/gpu_crossover.py measures it on a GPU.
DENSE_ABOVE = 0.10
#: Bytes the per-chunk buffers (I, and X on the dense path) may take; larger batches run in
#: sample chunks (at least one sample per chunk).
CURRENT_BYTES = 256 << 20
MODES = ("auto", "event", "dense")


def check_mode(mode: str) -> str:
    """mode itself, or ConfigError when it is not one of MODES."""
    if mode not in MODES:
        raise ConfigError(f"unknown forward mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def check_weights(rt: KernelRuntime, W, n_pre: int | None = None) -> None:
    """Kernels read W as C-contiguous float32 [n_pre, n_post] of the runtime's array module."""
    xp = rt.xp
    if not isinstance(W, xp.ndarray) or W.dtype != xp.float32 or W.ndim != 2 or not W.flags.c_contiguous:
        raise ShapeError(f"weights must be C-contiguous float32 2-D {xp.__name__} arrays, got "
                         f"{type(W).__name__} {getattr(W, 'dtype', '?')} {getattr(W, 'shape', '?')}")
    if n_pre is not None and W.shape[0] != n_pre:
        raise ShapeError(f"weights have {W.shape[0]} presynaptic rows but the input has {n_pre} lines")


def count_args(ids, counts) -> tuple:
    """The (entry_counts, has_counts) kernel arguments: counts, or ids as an unread
    placeholder with has_counts = 0 (all ones)."""
    return (ids, i32(0)) if counts is None else (counts, i32(1))


def use_dense(spikes, mode: str) -> bool:
    """True when the layer's currents should come from the GEMM: mode "dense", or "auto" on a
    SpikeTensor denser than DENSE_ABOVE (its length is known on the host: no device read). A
    SpikeGrid or PaddedSpikes input runs event-driven in "auto" (its density would need a
    device read, and a captured step must not change path with it)."""
    check_mode(mode)
    if not isinstance(spikes, SpikeTensor):
        return mode == "dense"
    slots = spikes.n_samples * spikes.n_steps * spikes.n_inputs
    return mode == "dense" or (mode == "auto" and slots > 0 and spikes.nnz / slots > DENSE_ABOVE)


def current_chunks(B: int, T: int, row_bytes: int, limit: int | None = None) -> list[tuple[int, int]]:
    """(first sample, samples) chunks of a batch of B samples whose T rows of row_bytes bytes
    each (the per-chunk buffers) stay within limit bytes (CURRENT_BYTES), one sample at least."""
    limit = CURRENT_BYTES if limit is None else limit
    per = max(1, limit // max(1, T * row_bytes))
    return [(b0, min(per, B - b0)) for b0 in range(0, B, per)]


def _launch_rows(rt: KernelRuntime, name: str, n_rows: int, n_post: int, args: tuple) -> None:
    """Kernel A: one block per row (grid-stride by blocks), threads over the post neurons
    (a multiple of 32, at most BLOCK)."""
    if n_rows > 0 and n_post > 0:
        block = min(BLOCK, 32 * ((n_post + 31) // 32))
        rt.module("forward").get_function(name)((min(n_rows, MAX_BLOCKS),), (block,), args)


def input_currents(rt: KernelRuntime, W, spikes, b0: int, n_b: int, dense: bool, out=None, out_grid=None):
    """I float32 [n_b * T, n_post] (device) of samples b0 .. b0 + n_b - 1, into out (a
    C-contiguous buffer of that shape) or a new array: event-driven (the reference's float
    order, bit for bit) or, dense, X @ W (GEMM order: see docs/kernels.md). Event-driven, the
    same launch zeroes rows b0 * T .. (b0 + n_b) * T - 1 of out_grid (the layer's output grid
    uint32 [B*T, words], which if_scan marks next), when given."""
    xp = rt.xp
    if out_grid is None:
        out_grid = rt.empty((0, 0), xp.uint32)   # nothing to zero (out_words 0)
    T, n_pre, n_post = spikes.n_steps, W.shape[0], W.shape[1]
    r0, rows = b0 * T, n_b * T
    I = rt.empty((rows, n_post), xp.float32) if out is None else out
    if dense:
        X = xp.zeros((rows, n_pre), xp.float32)
        if isinstance(spikes, SpikeGrid):
            words = spikes.grid.shape[1]
            rt.launch("forward", "scatter_grid", rows * words,
                      (spikes.grid, i32(words), i64(r0), i64(rows), i32(n_pre), X))
        else:
            rt.launch("forward", "scatter_dense", rows,
                      (spikes.indptr, spikes.ids, *count_args(spikes.ids, spikes.counts), i64(r0), i64(rows),
                       i32(n_pre), X))
        return xp.matmul(X, W, out=I)
    if isinstance(spikes, SpikeGrid):
        _launch_rows(rt, "currents_grid", rows, n_post,
                     (spikes.grid, i32(spikes.grid.shape[1]), W, i64(r0), i64(rows), i32(n_post), I,
                      out_grid, i32(out_grid.shape[1])))
    else:
        _launch_rows(rt, "currents_csr", rows, n_post,
                     (spikes.indptr, spikes.ids, *count_args(spikes.ids, spikes.counts), W,
                      i64(r0), i64(rows), i32(n_post), I, out_grid, i32(out_grid.shape[1])))
    return I


def layer_forward(rt: KernelRuntime, W, spikes: SpikeTensor | PaddedSpikes | SpikeGrid, theta: float,
                  output_spikes: bool = True, mode: str = "event") -> LayerRecord:
    """Integrate-and-fire of the layer with weights W [n_pre, n_post] driven by spikes
    (B x T x n_pre on the device: a SpikeTensor or PaddedSpikes, entries with counts adding
    count * W[j], or the previous layer's SpikeGrid, read as it is); returns the LayerRecord with device
    arrays, its spikes the layer's SpikeGrid (never compacted here: no host read), or None
    with output_spikes=False. mode: "event" (bit for bit the reference), "dense" (GEMM) or
    "auto" (dense above DENSE_ABOVE)."""
    xp = rt.xp
    check_weights(rt, W, spikes.n_inputs)
    dense = use_dense(spikes, mode)
    B, T, n_pre, n_post = spikes.n_samples, spikes.n_steps, W.shape[0], W.shape[1]
    words = grid_words(n_post, GRID_BITS)
    # the output grid: zeroed row by row by kernel A on the event path (no memset launch)
    grid = xp.zeros((B * T, words), xp.uint32) if dense else rt.empty((B * T, words), xp.uint32)
    counts, t_first, t_last, t_prev = (rt.empty((B, n_post), xp.int32) for _ in range(4))
    u_final = rt.empty((B, n_post), xp.float32)
    chunks = current_chunks(B, T, 4 * (n_post + (n_pre if dense else 0)))
    buffer = rt.empty((chunks[0][1] * T, n_post), xp.float32) if chunks else None   # reused by every chunk
    for b0, n_b in chunks:
        I = input_currents(rt, W, spikes, b0, n_b, dense, buffer[:n_b * T], grid)
        rt.launch("forward", "if_scan", n_b * n_post,
                  (I, i64(b0), i64(n_b), i32(T), i32(n_post), f32(theta),
                   counts, t_first, t_last, t_prev, u_final, grid, i32(words)))
    return LayerRecord(counts, t_first, t_last, t_prev, u_final,
                       SpikeGrid(grid, B, T, n_post) if output_spikes else None)
