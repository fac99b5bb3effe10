"""The same training step written densely with matrix products, for any array module xp
(numpy or cupy): the baseline the event-driven kernels are measured against.

Forward I = X @ W over all [B * T, n_pre] inputs, IF over T, then the same loss, deltas,
timing gradient (dense window mask A [B * T, n_post], G = X^T @ A) and fractional update
as gpusnn.reference. Work is B * T * n_pre * n_post per layer whatever the spike density.

dense_gemms is the floor of that formulation: only its matrix products (forward I = X @ W
and gradient G = X^T @ A per layer, plus the backward delta @ W^T), no per-step loop.
"""
from __future__ import annotations

import math

from gpusnn.config import RunConfig


def dense_step(xp, weights, W_prev, X, labels, step: int, cfg: RunConfig) -> None:
    """One step on dense float32 input X [B, T, n_in] and int labels [B] (device arrays);
    updates weights and W_prev in place."""
    B, T, _ = X.shape
    th, o = xp.float32(cfg.network.theta), cfg.optim
    inputs, recs = [X.reshape(B * T, -1)], []
    for W in weights:
        I = (inputs[-1] @ W).reshape(B, T, -1)
        u = xp.zeros((B, W.shape[1]), xp.float32)
        n = xp.zeros_like(u)
        last = xp.zeros(u.shape, xp.int32)
        prev = xp.zeros_like(last)
        out = xp.zeros_like(I)
        for t in range(T):
            v = u + I[:, t]
            s = v >= th
            out[:, t] = s
            n += s
            prev = xp.where(s, last, prev)
            last = xp.where(s, t + 1, last)
            u = xp.where(s, xp.float32(0), v)
        recs.append((n, u, xp.where(last == T, prev, last)))
        inputs.append(out.reshape(B * T, -1))
    n, u, _ = recs[-1]
    z = (n + u / th) / T * T / cfg.method.temperature
    p = xp.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[xp.arange(B), labels] -= 1
    deltas = [(p * T / cfg.method.temperature / B).astype(xp.float32)]
    for l in range(len(weights) - 2, -1, -1):
        n, u, _ = recs[l]
        gate = ((n > 0) | (u > 0)) & (n < T)
        deltas.insert(0, gate * (deltas[0] @ weights[l + 1].T) / th)
    steps = xp.arange(1, T + 1, dtype=xp.int32)[None, :, None]
    inv_gamma = xp.float32(1.0 / math.gamma(2.0 - o.alpha))
    for W, Wp, X_l, (_, _, w), d in zip(weights, W_prev, inputs, recs, deltas):
        a = d / (th * (T - w).astype(xp.float32))
        A = xp.where(w[:, None, :] < steps, a[:, None, :], xp.float32(0)).reshape(B * T, -1)
        G = X_l.T @ A
        factor = 1 if step == 0 else xp.minimum(
            (xp.abs(W - Wp) + xp.float32(o.eps)) ** xp.float32(1 - o.alpha) * inv_gamma, xp.float32(o.factor_clip))
        Wp[...] = W
        W -= xp.float32(o.lr) * G * factor
        xp.clip(W, -o.w_max, o.w_max, out=W)


def dense_gemms(weights, inputs, windows, deltas) -> list:
    """The matrix products of one dense step (float32 device arrays): per layer l the forward
    inputs[l] [B*T, n_pre] @ weights[l], the gradient inputs[l].T @ windows[l] [B*T, n_post],
    and for hidden layers deltas[l + 1] [B, n_next] @ weights[l + 1].T. Returns the results."""
    out = []
    for l, (W, X, A) in enumerate(zip(weights, inputs, windows)):
        out += [X @ W, X.T @ A]
        if l + 1 < len(weights):
            out.append(deltas[l + 1] @ weights[l + 1].T)
    return out
