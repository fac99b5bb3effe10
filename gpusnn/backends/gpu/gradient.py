"""Wrappers of kernels/gradient.cu: readout + loss + output error, backward deltas and the
event-driven weight gradient (docs/method.md sections 2-3)."""
from __future__ import annotations

import numpy as np

from data_tools.spikes import LayerRecord, SpikeTensor
from gpusnn.backends.gpu.forward import count_args
from gpusnn.backends.gpu.runtime import KernelRuntime, f32, f64, i32, i64
from gpusnn.config import MethodConfig
from gpusnn.errors import ShapeError

LOSS_KINDS = {"ce": 0, "mse": 1}


def readout_loss(rt: KernelRuntime, out: LayerRecord, labels, T: int, theta: float, method: MethodConfig,
                 batch_norm: int | None = None):
    """(rho float32 [B, C], loss float64 [B], delta float32 [B, C]) on the device.

    labels: int class indices [B] (host or device), checked to lie in 0..C-1. delta carries
    1 / batch_norm (default B), as in gpusnn.reference.loss_and_delta.
    """
    xp = rt.xp
    B, C = out.counts.shape
    host = labels if isinstance(labels, np.ndarray) else rt.to_host(labels, "labels")
    if host.shape != (B,) or (B and (host.min() < 0 or host.max() >= C)):
        raise ShapeError(f"labels must be {B} class indices in 0..{C - 1}, got shape {host.shape}")
    y = rt.to_device(host, np.int64)
    rho = rt.empty((B, C), xp.float32)
    loss = rt.empty(B, xp.float64)
    delta = rt.empty((B, C), xp.float32)
    n_norm = B if batch_norm is None else batch_norm
    rt.launch("gradient", "readout_loss", B,
              (out.counts, out.u_final, y, i32(B), i32(n_norm), i32(C), i32(T), f32(theta),
               i32(LOSS_KINDS[method.loss]), f64(method.temperature), f64(method.r_target), rho, loss, delta))
    return rho, loss, delta


def backward_delta(rt: KernelRuntime, delta_next, W_next, rec: LayerRecord, T: int, theta: float):
    """delta of a hidden layer, float32 [B, n_cur], from the next layer's delta [B, n_next]."""
    xp = rt.xp
    B, n_cur = rec.counts.shape
    n_next = W_next.shape[1]
    delta = rt.empty((B, n_cur), xp.float32)
    rt.launch("gradient", "backward_delta", B * n_cur,
              (delta_next, W_next, rec.counts, rec.u_final, i32(B), i32(n_cur), i32(n_next), i32(T),
               f32(theta), delta))
    return delta


def transpose_spikes(rt: KernelRuntime, spikes: SpikeTensor):
    """The entries grouped by input: (colptr int64 [n_inputs + 1], sample int32 [nnz],
    step int32 [nnz], 1..T, counts int32 [nnz] or None), rows b * T + t - 1 increasing
    within each input (a device sort of (id, row) keys, or an argsort when counts must
    follow their entries; colptr by a search of the sorted keys, no host synchronisation)."""
    xp = rt.xp
    T = spikes.n_steps
    BT = spikes.n_samples * T
    if BT == 0:  # no samples (a data-parallel rank's empty share of a short batch)
        none = xp.zeros(0, dtype=xp.int32)
        return xp.zeros(spikes.n_inputs + 1, dtype=xp.int64), none, none, None if spikes.counts is None else none
    rows = xp.searchsorted(spikes.indptr[1:], xp.arange(spikes.nnz, dtype=xp.int64), side="right")
    keys = xp.add(xp.multiply(spikes.ids, BT, dtype=xp.int64), rows)
    counts = None
    if spikes.counts is None:
        keys = xp.sort(keys)
    else:
        order = xp.argsort(keys)                 # keys are unique in a coalesced tensor
        keys = xp.take(keys, order)
        counts = xp.take(spikes.counts, order).astype(xp.int32, copy=False)
    colptr = xp.searchsorted(keys, xp.arange(0, (spikes.n_inputs + 1) * BT, BT, dtype=xp.int64), side="left")
    rows = xp.remainder(keys, BT)
    return (colptr, xp.floor_divide(rows, T, dtype=xp.int32), xp.add(xp.remainder(rows, T, dtype=xp.int32), 1),
            counts)


def weight_gradient(rt: KernelRuntime, spikes_in: SpikeTensor, rec: LayerRecord, delta, theta: float,
                    gradient: str = "timing"):
    """G float32 [n_pre, n_post] of one layer, summed over the batch (timing or rate)."""
    xp = rt.xp
    B, T, n_pre = spikes_in.n_samples, spikes_in.n_steps, spikes_in.n_inputs
    n_post = delta.shape[1]
    a = rt.empty((B, n_post), xp.float32)
    w = rt.empty((B, n_post), xp.int32)
    rt.launch("gradient", "gradient_coeffs", B * n_post,
              (delta, rec.t_last, rec.t_prev, i64(B * n_post), i32(T), f32(theta), f32(theta * T),
               i32(gradient == "timing"), a, w))
    colptr, sample, step, counts = transpose_spikes(rt, spikes_in)
    G = rt.empty((n_pre, n_post), xp.float32)
    rt.launch("gradient", "weight_gradient", n_pre * n_post,
              (colptr, sample, step, *count_args(sample, counts), a, w, i32(n_pre), i32(n_post), G))
    return G
