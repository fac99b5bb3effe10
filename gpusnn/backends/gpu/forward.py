"""Wrapper of kernels/forward.cu: one IF layer over the whole window, for a batch."""
from __future__ import annotations

from data_tools.spikes import LayerRecord, SpikeTensor
from gpusnn.backends.gpu.compact import GRID_BITS, PaddedSpikes, SpikeGrid, grid_words
from gpusnn.backends.gpu.runtime import KernelRuntime, f32, i32
from gpusnn.errors import ShapeError


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


def layer_forward(rt: KernelRuntime, W, spikes: SpikeTensor | PaddedSpikes | SpikeGrid, theta: float,
                  output_spikes: bool = True) -> LayerRecord:
    """Integrate-and-fire of the layer with weights W [n_pre, n_post] driven by spikes
    (B x T x n_pre on the device: a SpikeTensor or PaddedSpikes, entries with counts adding
    count * W[j], or the previous layer's SpikeGrid, read as it is); returns the LayerRecord with device
    arrays, its spikes the layer's SpikeGrid (never compacted here: no host read), or None
    with output_spikes=False."""
    xp = rt.xp
    check_weights(rt, W, spikes.n_inputs)
    B, T, n_post = spikes.n_samples, spikes.n_steps, W.shape[1]
    words = grid_words(n_post, GRID_BITS)
    grid = xp.zeros((B * T, words), xp.uint32)
    counts, t_first, t_last, t_prev = (rt.empty((B, n_post), xp.int32) for _ in range(4))
    u_final = rt.empty((B, n_post), xp.float32)
    outputs = (W, i32(B), i32(T), i32(n_post), f32(theta), counts, t_first, t_last, t_prev, u_final, grid, i32(words))
    if isinstance(spikes, SpikeGrid):
        rt.launch("forward", "if_forward_grid", B * n_post, (spikes.grid, i32(spikes.grid.shape[1])) + outputs)
    else:
        rt.launch("forward", "if_forward", B * n_post,
                  (spikes.indptr, spikes.ids, *count_args(spikes.ids, spikes.counts)) + outputs)
    return LayerRecord(counts, t_first, t_last, t_prev, u_final,
                       SpikeGrid(grid, B, T, n_post) if output_spikes else None)
