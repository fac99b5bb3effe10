"""Wrappers of kernels/gradient.cu: readout + loss + output error, backward deltas and the
event-driven weight gradient (docs/method.md sections 2-3).

The weight gradient reads per-(sample, input) spike tables (spike_table). They are built and
consumed in sample chunks (table_chunks, by forward.current_chunks) whose table stays within
forward.CURRENT_BYTES, one table buffer reused by every chunk; each chunk's weight_gradient
launch adds its samples to G in increasing b, so any chunking is bit for bit the unchunked
sum (and the reference's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from data_tools.spikes import LayerRecord, SpikeTensor
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.forward import count_args, current_chunks
from gpusnn.backends.gpu.runtime import KernelRuntime, f32, f64, i32, i64
from gpusnn.config import MethodConfig
from gpusnn.errors import ShapeError

LOSS_KINDS = {"ce": 0, "mse": 1}


@dataclass(frozen=True)
class Coeffs:
    """The weight gradient's per-(b, i) inputs of one layer (device arrays [B, n_post]):
    a float32, the coefficient of every presynaptic spike in the window; w int32, the window
    start (0 for the rate gradient). readout_loss and backward_delta write them with delta."""

    a: Any
    w: Any


def _coeff_args(rt: KernelRuntime, B: int, n: int, T: int, theta: float, gradient: str) -> tuple:
    """(new Coeffs [B, n], kernel arguments rate_den, timing) of kernels/gradient.cu's gpusnn_coeff."""
    xp = rt.xp
    return Coeffs(rt.empty((B, n), xp.float32), rt.empty((B, n), xp.int32)), (f32(theta * T), i32(gradient == "timing"))


def readout_loss(rt: KernelRuntime, out: LayerRecord, labels, T: int, theta: float, method: MethodConfig,
                 batch_norm: int | None = None):
    """(rho float32 [B, C], loss float64 [B], delta float32 [B, C], the output layer's Coeffs
    for method.gradient) on the device, in one launch.

    labels: int class indices [B]: a host array, checked to lie in 0..C-1 and uploaded, or
    an int64 device array used as it is (the caller checked it on the host: no read-back, so
    the step can be captured in a CUDA graph). delta carries 1 / batch_norm (default B), as in
    gpusnn.reference.loss_and_delta.
    """
    xp = rt.xp
    B, C = out.counts.shape
    if isinstance(labels, np.ndarray):
        y = rt.to_device(check_labels(labels, B, C), np.int64)
    elif labels.shape != (B,) or labels.dtype != np.int64:
        raise ShapeError(f"device labels must be int64 [{B}], got {labels.dtype} {tuple(labels.shape)}")
    else:
        y = labels
    rho = rt.empty((B, C), xp.float32)
    loss = rt.empty(B, xp.float64)
    delta = rt.empty((B, C), xp.float32)
    n_norm = B if batch_norm is None else batch_norm
    coeffs, coeff_args = _coeff_args(rt, B, C, T, theta, method.gradient)
    rt.launch("gradient", "readout_loss", B,
              (out.counts, out.u_final, y, out.t_last, out.t_prev, i32(B), i32(n_norm), i32(C), i32(T), f32(theta),
               i32(LOSS_KINDS[method.loss]), f64(method.temperature), f64(method.r_target), *coeff_args,
               rho, loss, delta, coeffs.a, coeffs.w))
    return rho, loss, delta, coeffs


def check_labels(labels: np.ndarray, B: int, C: int) -> np.ndarray:
    """Host labels [B], each a class index in 0..C-1 (else ShapeError)."""
    if labels.shape != (B,) or (B and (labels.min() < 0 or labels.max() >= C)):
        raise ShapeError(f"labels must be {B} class indices in 0..{C - 1}, got shape {labels.shape}")
    return labels


def backward_delta(rt: KernelRuntime, delta_next, W_next, rec: LayerRecord, T: int, theta: float,
                   gradient: str = "timing"):
    """(delta float32 [B, n_cur] of a hidden layer from the next layer's delta [B, n_next],
    the layer's Coeffs for the gradient kind), in one launch."""
    xp = rt.xp
    B, n_cur = rec.counts.shape
    n_next = W_next.shape[1]
    delta = rt.empty((B, n_cur), xp.float32)
    coeffs, coeff_args = _coeff_args(rt, B, n_cur, T, theta, gradient)
    rt.launch("gradient", "backward_delta", B * n_cur,
              (delta_next, W_next, rec.counts, rec.u_final, rec.t_last, rec.t_prev, i32(B), i32(n_cur), i32(n_next),
               i32(T), f32(theta), *coeff_args, delta, coeffs.a, coeffs.w))
    return delta, coeffs


def coefficients(rt: KernelRuntime, rec: LayerRecord, delta, T: int, theta: float, gradient: str = "timing") -> Coeffs:
    """The layer's Coeffs from a given delta [B, n_post] (one gradient_coeffs launch; the
    training step gets them from readout_loss / backward_delta instead)."""
    B, n_post = delta.shape
    coeffs, coeff_args = _coeff_args(rt, B, n_post, T, theta, gradient)
    rt.launch("gradient", "gradient_coeffs", B * n_post,
              (delta, rec.t_last, rec.t_prev, i64(B * n_post), i32(T), f32(theta), *coeff_args, coeffs.a, coeffs.w))
    return coeffs


TABLE_MASKS = 0    # kernels/gradient.cu GPUSNN_TABLE_MASKS: step bits per (b, j)
TABLE_SUFFIX = 1   # GPUSNN_TABLE_SUFFIX: suffix counts per (b, j)


def table_width(spikes: SpikeTensor | PaddedSpikes | SpikeGrid) -> tuple[int, int]:
    """(kind, width): the table spike_table builds from spikes, uint32 [samples, n_pre, width]:
    step masks of a SpikeGrid (width ceil(T / 32)), suffix counts otherwise (width T)."""
    T = spikes.n_steps
    return (TABLE_MASKS, (T + 31) // 32) if isinstance(spikes, SpikeGrid) else (TABLE_SUFFIX, T)


def table_chunks(B: int, n_pre: int, width: int, limit: int | None = None) -> list[tuple[int, int]]:
    """(first sample, samples) chunks of a batch of B samples whose spike table (n_pre x width
    uint32 per sample) stays within limit bytes (default forward.CURRENT_BYTES), one sample at
    least; one empty chunk (0, 0) for B = 0, so G is still written (all zeros)."""
    return current_chunks(B, n_pre, 4 * width, limit) or [(0, 0)]


def spike_table(rt: KernelRuntime, spikes: SpikeTensor | PaddedSpikes | SpikeGrid, b0: int = 0,
                n_b: int | None = None, out=None):
    """(table uint32 [n_b, n_pre, width], kind, width): the presynaptic spikes per (sample,
    input) of samples b0 .. b0 + n_b - 1 (default the whole batch) for the weight gradient
    (kernels/gradient.cu), into out (a C-contiguous uint32 buffer of that shape) or a new
    array. A SpikeGrid gives step masks (one launch), a SpikeTensor or PaddedSpikes the
    suffix counts (a zeroing and one launch). Static shapes: the table's size depends only on
    n_b, T and n_pre."""
    xp = rt.xp
    T, n_pre = spikes.n_steps, spikes.n_inputs
    n_b = spikes.n_samples - b0 if n_b is None else n_b
    kind, width = table_width(spikes)
    shape = (n_b, n_pre, width)
    if kind == TABLE_MASKS:
        table = rt.empty(shape, xp.uint32) if out is None else out
        rt.launch("gradient", "grid_masks", n_b * n_pre,
                  (spikes.grid, i32(spikes.grid.shape[1]), i64(b0), i64(n_b), i32(T), i32(n_pre), table, i32(width)))
        return table, kind, width
    if out is None:
        table = xp.zeros(shape, xp.uint32)
    else:
        table = out
        xp.copyto(table, 0)
    rt.launch("gradient", "suffix_table", n_b * T,
              (spikes.indptr, spikes.ids, *count_args(spikes.ids, spikes.counts), i64(b0), i64(n_b), i32(T),
               i32(n_pre), table))
    return table, kind, width


def weight_gradient(rt: KernelRuntime, spikes_in: SpikeTensor | PaddedSpikes | SpikeGrid, rec: LayerRecord, delta,
                    theta: float, gradient: str = "timing", limit: int | None = None, coeffs: Coeffs | None = None):
    """G float32 [n_pre, n_post] of one layer, summed over the batch (timing or rate), in
    the reference's float order (kernels/gradient.cu weight_gradient). The spike tables are
    built per sample chunk (table_chunks, within limit bytes, default forward.CURRENT_BYTES)
    in one reused buffer; a batch that fits one chunk makes the same launches as unchunked.
    coeffs: the layer's Coeffs as readout_loss / backward_delta wrote them with delta (the
    training step); None computes them from delta first (one gradient_coeffs launch)."""
    xp = rt.xp
    B, T, n_pre = spikes_in.n_samples, spikes_in.n_steps, spikes_in.n_inputs
    n_post = delta.shape[1]
    if coeffs is None:
        coeffs = coefficients(rt, rec, delta, T, theta, gradient)
    a, w = coeffs.a, coeffs.w
    G = rt.empty((n_pre, n_post), xp.float32)   # B = 0 (an empty data-parallel share): all zeros
    chunks = table_chunks(B, n_pre, table_width(spikes_in)[1], limit)
    buffer = None
    for b0, n_b in chunks:
        table, kind, width = spike_table(rt, spikes_in, b0, n_b, None if buffer is None else buffer[:n_b])
        if buffer is None:
            buffer = table                          # the first chunk is the largest
        rt.launch("gradient", "weight_gradient", n_pre * n_post,
                  (table, i32(kind), i32(width), a, w, i64(b0), i64(n_b), i32(n_pre), i32(n_post), G))
    return G
