"""The NumPy reference of FO-STDGD: the executable specification of docs/method.md.

Every function takes arrays and returns arrays; nothing here keeps state. Shapes use
B = samples in the batch, T = time steps, N / n_pre / n_post = neurons, C = classes.
Weights are float32 [n_pre, n_post] (one presynaptic spike reads one contiguous row).
Times are integer steps 1..T; 0 means "no spike".
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from data_tools.spikes import LayerRecord, SpikeTensor
from gpusnn.config import MethodConfig, OptimConfig
from gpusnn.errors import ShapeError


def spike_matrix(spikes: SpikeTensor) -> sp.csr_matrix:
    """The spikes as a float32 CSR matrix [B * T, n_inputs] (row b * T + t - 1) whose entries
    are the spike counts (1 per entry without counts; repeated entries are summed)."""
    data = spikes.entry_counts().astype(np.float32)
    return sp.csr_matrix((data, spikes.ids, spikes.indptr),
                         shape=(spikes.n_samples * spikes.n_steps, spikes.n_inputs))


def input_currents(W: np.ndarray, spikes: SpikeTensor) -> np.ndarray:
    """Event-driven synaptic input: each spike (b, t, j) adds row j of W. float32 [B, T, n_post].

    An entry with count c adds c * W[j] (one synapse read times a count). The sparse product
    touches only the rows of W named by entries (work = entries x fan-out).
    """
    if W.shape[0] != spikes.n_inputs:
        raise ShapeError(f"weights have {W.shape[0]} presynaptic rows but the input has "
                         f"{spikes.n_inputs} lines")
    I = spike_matrix(spikes) @ W
    return np.asarray(I, np.float32).reshape(spikes.n_samples, spikes.n_steps, W.shape[1])


def integrate_and_fire(I: np.ndarray, theta: float) -> LayerRecord:
    """Nonleaky IF over T steps with reset to 0 (method.md section 1).

    I: float32 [B, T, N] input per step. v = u + I_t; spike where v >= theta; u = 0 there.
    """
    B, T, N = I.shape
    th = np.float32(theta)
    u = np.zeros((B, N), np.float32)
    counts = np.zeros((B, N), np.int32)
    t_first = np.zeros((B, N), np.int32)
    t_last = np.zeros((B, N), np.int32)
    t_prev = np.zeros((B, N), np.int32)
    fired = np.zeros((B, T, N), bool)
    for t in range(1, T + 1):
        v = u + I[:, t - 1]
        s = v >= th
        fired[:, t - 1] = s
        counts += s
        t_first[s & (t_first == 0)] = t
        t_prev[s] = t_last[s]
        t_last[s] = t
        u = np.where(s, np.float32(0), v)
    b, t0, i = np.nonzero(fired)
    rows = b * T + t0
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=B * T)))).astype(np.int64)
    out = SpikeTensor(indptr, i.astype(np.int32), B, T, N)
    return LayerRecord(counts, t_first, t_last, t_prev, u, out)


def forward(weights: list[np.ndarray], spikes: SpikeTensor, theta: float) -> list[LayerRecord]:
    """Run every layer over the whole window; a layer's spikes at step t reach the next at t."""
    records = []
    for W in weights:
        rec = integrate_and_fire(input_currents(W, spikes), theta)
        records.append(rec)
        spikes = rec.spikes
    return records


def readout(counts: np.ndarray, u_final: np.ndarray, theta: float, T: int) -> np.ndarray:
    """Output rates rho = (n + u(T) / theta) / T, float32 [B, C]."""
    return ((counts + u_final / np.float32(theta)) / np.float32(T)).astype(np.float32)


def loss_and_delta(rho: np.ndarray, labels: np.ndarray, method: MethodConfig, T: int,
                   batch_norm: int | None = None):
    """Per-sample loss float64 [B] and output error delta = dL/drho float32 [B, C].

    The batch loss is the mean over samples, so delta carries the 1/B; batch_norm replaces
    that B (data-parallel training: the global batch of which these B samples are a part).
    """
    B, C = rho.shape
    y = np.zeros((B, C), np.float64)
    y[np.arange(B), labels] = 1.0
    r = rho.astype(np.float64)
    if method.loss == "ce":
        z = r * T / method.temperature
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -(logp * y).sum(axis=1)
        delta = (np.exp(logp) - y) * T / method.temperature
    else:
        diff = r - y * method.r_target
        loss = 0.5 * (diff ** 2).sum(axis=1)
        delta = diff
    return loss, (delta / (B if batch_norm is None else batch_norm)).astype(np.float32)


def window_start(t_last: np.ndarray, t_prev: np.ndarray, T: int) -> np.ndarray:
    """w_i: start of neuron i's current inter-spike window (w_i, T]; length T - w_i >= 1.

    w = t_last, or t_prev when the neuron fired on the last step (t_last = T).
    """
    return np.where(t_last == T, t_prev, t_last).astype(np.int32)


def hidden_gate(counts: np.ndarray, u_final: np.ndarray, T: int) -> np.ndarray:
    """g = 1 where a neuron is active (fired, or ends with u > 0) and not saturated (< T spikes)."""
    return (((counts > 0) | (u_final > 0)) & (counts < T)).astype(np.float32)


def backward_deltas(weights: list[np.ndarray], records: list[LayerRecord], delta_out: np.ndarray,
                    theta: float, T: int) -> list[np.ndarray]:
    """Deltas of every layer, float32 [B, N_l], from delta_l = g_l * (delta_{l+1} W_{l+1}^T) / theta."""
    deltas = [delta_out]
    for l in range(len(weights) - 2, -1, -1):
        rec = records[l]
        back = (deltas[0] @ weights[l + 1].T) / np.float32(theta)
        deltas.insert(0, (hidden_gate(rec.counts, rec.u_final, T) * back).astype(np.float32))
    return deltas


def suffix_counts(spikes: SpikeTensor) -> np.ndarray:
    """c[b, k, j] = spikes of input j in steps k+1..T of sample b, for k = 0..T. float32 [B, T+1, N]."""
    B, T, N = spikes.n_samples, spikes.n_steps, spikes.n_inputs
    dense = spike_matrix(spikes).toarray().reshape(B, T, N)
    c = np.zeros((B, T + 1, N), np.float32)
    c[:, :T] = np.cumsum(dense[:, ::-1], axis=1)[:, ::-1]
    return c


def weight_gradient(spikes_in: SpikeTensor, rec_post: LayerRecord, delta_post: np.ndarray,
                    theta: float, gradient: str = "timing") -> np.ndarray:
    """G float32 [n_pre, n_post] for one layer, summed over the batch.

    timing: G_ji = sum_b delta_bi * c_bj(w_bi, T] / (theta (T - w_bi)), where c_bj(w, T] is
    the number of spikes of input j after step w (suffix counts, every entry weighted by its
    count; the CUDA kernel computes the same sum entry by entry). rate: G_ji = sum_b delta_bi
    * n_bj / (theta T).
    """
    B, T = spikes_in.n_samples, spikes_in.n_steps
    if gradient == "rate":
        counts_pre = sp.csr_matrix(
            (spikes_in.entry_counts().astype(np.float32), spikes_in.ids,
             spikes_in.indptr[::T].astype(np.int64)), shape=(B, spikes_in.n_inputs), copy=True)
        counts_pre.sum_duplicates()              # n_bj exact first, so repeats and counts agree
        G = counts_pre.T @ (delta_post / np.float32(theta * T))
        return np.asarray(G, np.float32)
    w = window_start(rec_post.t_last, rec_post.t_prev, T)                      # [B, n_post]
    a = delta_post / (np.float32(theta) * (T - w).astype(np.float32))          # [B, n_post]
    n_post = w.shape[1]
    # M[i, b * (T + 1) + w_bi] = a_bi, so (M @ c)[i, j] = sum_b a_bi c_bj(w_bi, T]
    cols = (np.arange(B)[:, None] * (T + 1) + w).ravel()
    rows = np.tile(np.arange(n_post), B)
    M = sp.csr_matrix((a.ravel(), (rows, cols)), shape=(n_post, B * (T + 1)))
    G_T = M @ suffix_counts(spikes_in).reshape(B * (T + 1), -1)
    return np.ascontiguousarray(np.asarray(G_T, np.float32).T)


def gamma_factor(alpha: float) -> float:
    """1 / Gamma(2 - alpha), the host-side constant of the update."""
    return 1.0 / math.gamma(2.0 - alpha)


def fractional_factor(W: np.ndarray, W_prev: np.ndarray, optim: OptimConfig) -> np.ndarray:
    """The per-weight multiplier (|W - W_prev| + eps)^(1 - alpha) / Gamma(2 - alpha), clipped.

    float32 like W. With eps_inside the base is |W - W_prev + eps|.
    """
    diff = W - W_prev
    base = np.abs(diff + np.float32(optim.eps)) if optim.eps_inside else np.abs(diff) + np.float32(optim.eps)
    with np.errstate(divide="ignore", over="ignore"):
        factor = np.power(base, np.float32(1.0 - optim.alpha)) * np.float32(gamma_factor(optim.alpha))
    if optim.factor_clip is not None:
        factor = np.minimum(factor, np.float32(optim.factor_clip))
    return factor.astype(np.float32)


def fractional_update(W: np.ndarray, *, W_prev: np.ndarray, G: np.ndarray, G_prev: np.ndarray | None,
                      step: int, optim: OptimConfig) -> np.ndarray:
    """One optimisation step k = step; returns W(k+1) float32 (inputs unchanged).

    W = W(k), W_prev = W(k-1), G = G(k), G_prev = G(k-1) (None unless grad_at = "previous"):
    float32 arrays of one shape, keyword-only (the order every update of the project shares).

    step 0 is plain gradient descent W - lr G; from step 1 on the fractional factor applies,
    with G(k-1) instead of G(k) when grad_at = "previous". Then the clamp to +-w_max.
    """
    lr = np.float32(optim.lr)
    if step == 0:
        new = W - lr * G
    else:
        g = G_prev if optim.grad_at == "previous" else G
        new = W - lr * g * fractional_factor(W, W_prev, optim)
    if optim.w_max is not None:
        new = np.clip(new, -np.float32(optim.w_max), np.float32(optim.w_max))
    return new.astype(np.float32)
