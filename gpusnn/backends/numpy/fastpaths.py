"""Fast CPU paths of the numpy backend: the same results as gpusnn.reference, less time and memory.

Shapes: B samples, T steps, n_pre / n_post neurons; weights float32 [n_pre, n_post].

- The time window is processed in chunks of steps, so the working memory of a layer
  (currents, spike flags, prefix counts) is bounded by CHUNK_ELEMENTS float32 values,
  whatever T is; only the spike lists themselves grow with T.
- The synaptic input of a chunk is either event-driven (a scipy CSR product: work =
  spikes x fan-out) or dense (the chunk's spikes as a 0/1 matrix times W in BLAS: work =
  B x steps x n_pre x n_post). ``mode="auto"`` picks dense above DENSE_ABOVE, the
  crossover density measured by benchmarks/run.py (suite "density", BENCHMARKS.md).
- The timing gradient sums delta_bi c_bj(w_bi, T] / (theta (T - w_bi)) as the reference
  does, but forms the suffix counts c one chunk of steps at a time (no [B, T + 1, n_pre]
  array) and multiplies them by a sparse matrix of the window starts (scipy, no BLAS).

Event mode gives spike trains equal to the reference's bit for bit (same sums in the same
order); dense mode and the gradient differ only by float32 rounding.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from data_tools.spikes import SpikeTensor
from gpusnn import reference as ref
from gpusnn.config import OptimConfig
from gpusnn.errors import ConfigError, ShapeError

#: Input density (spikes / (B x T x n_pre)) above which auto runs the dense product: the
#: crossover of the benchmarks' "density" suite on the 2-core development machine with one
#: BLAS thread (15 % event-driven faster, 20 % dense faster). With 2 idle BLAS threads the
#: crossover is lower (10 %), but 2 threads on a busy machine made the dense product up to
#: 100x slower (measured), so auto keeps the one-thread crossover. Both modes give the same
#: spikes up to threshold ties.
DENSE_ABOVE = 0.2
#: Float32 values one chunk of steps may hold per layer (4 MiB).
CHUNK_ELEMENTS = 1 << 20
MODES = ("auto", "event", "dense")


def density(spikes: SpikeTensor) -> float:
    """Fraction of (sample, step, input) slots that hold an entry: of a coalesced tensor
    (SpikeTensor.coalesce, what count encoding emits) the coalesced density, whatever the
    counts; the backend coalesces its input before choosing (see NumpyBackend.forward)."""
    slots = spikes.n_samples * spikes.n_steps * spikes.n_inputs
    return spikes.nnz / slots if slots else 0.0


def coalesced(spikes: SpikeTensor) -> SpikeTensor:
    """spikes with repeated ids merged into counts (SpikeTensor.coalesce) when it has adjacent
    repeats; else spikes itself (O(nnz) check; tensors with counts are taken as they are).

    Every producer here sorts ids within rows, so repeats are adjacent; a tensor with
    unsorted repeats is still computed correctly, only on its uncoalesced entries.
    """
    if spikes.counts is not None or spikes.nnz < 2 or not np.any(spikes.ids[1:] == spikes.ids[:-1]):
        return spikes
    return spikes.coalesce()


def check_mode(mode: str) -> str:
    """mode itself, or ConfigError when it is not one of MODES."""
    if mode not in MODES:
        raise ConfigError(f"unknown product mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def use_dense(spikes: SpikeTensor, mode: str) -> bool:
    """True when the chunk products should run dense (BLAS) rather than event-driven."""
    check_mode(mode)
    return mode == "dense" or (mode == "auto" and density(spikes) > DENSE_ABOVE)


def chunk_steps(n_samples: int, width: int, n_steps: int) -> int:
    """Steps per chunk so that a [steps, B, width] float32 block stays within CHUNK_ELEMENTS."""
    return int(np.clip(CHUNK_ELEMENTS // max(n_samples * width, 1), 1, n_steps))


def time_major(spikes: SpikeTensor) -> sp.csr_matrix:
    """The spikes as a float32 CSR matrix [T * B, n_inputs] with row (t - 1) * B + b.

    Rows of a run of steps are then contiguous; ids keep their order within each row.
    """
    B, T = spikes.n_samples, spikes.n_steps
    perm = (np.arange(T)[:, None] + np.arange(B)[None, :] * T).ravel()
    return ref.spike_matrix(spikes)[perm]


def records_from_spikes(b: np.ndarray, t: np.ndarray, i: np.ndarray, B: int, T: int, N: int):
    """Per-neuron spike records and the SpikeTensor of a layer from its spikes.

    b, t, i: sample, step (1-based) and neuron of every spike, int arrays [n_spikes] in
    ascending step order. Returns counts, t_first, t_last, t_prev int32 [B, N] (0 = none)
    and the spikes as a SpikeTensor B x T x N.
    """
    q = b.astype(np.int64) * N + i
    by_neuron = np.argsort(q, kind="stable")                          # steps stay ascending
    t_sorted = t[by_neuron].astype(np.int32)
    counts = np.bincount(q, minlength=B * N).astype(np.int32)
    ends = np.cumsum(counts) - 1
    fired = counts > 0
    t_first, t_last, t_prev = (np.zeros(B * N, np.int32) for _ in range(3))
    t_last[fired] = t_sorted[ends[fired]]
    t_first[fired] = t_sorted[ends[fired] - counts[fired] + 1]
    twice = counts > 1
    t_prev[twice] = t_sorted[ends[twice] - 1]
    rows = b.astype(np.int64) * T + t - 1
    order = np.argsort(rows * N + i, kind="stable")
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=B * T)))).astype(np.int64)
    spikes = SpikeTensor(indptr, i[order].astype(np.int32), B, T, N)
    shape = (B, N)
    return counts.reshape(shape), t_first.reshape(shape), t_last.reshape(shape), t_prev.reshape(shape), spikes


def layer_forward(W: np.ndarray, spikes: SpikeTensor, theta: float, mode: str = "auto") -> ref.LayerRecord:
    """Nonleaky IF layer over the whole window (method.md section 1), chunked over steps.

    W float32 [n_pre, n_post]; spikes B x T x n_pre. Returns the reference's LayerRecord.
    """
    B, T, n_post = spikes.n_samples, spikes.n_steps, W.shape[1]
    if W.shape[0] != spikes.n_inputs:
        raise ShapeError(f"weights have {W.shape[0]} presynaptic rows but the input has "
                         f"{spikes.n_inputs} lines")
    dense = use_dense(spikes, mode)
    S = time_major(spikes)
    c = chunk_steps(B, n_post + (W.shape[0] if dense else 0), T)
    th = np.float32(theta)
    u = np.zeros((B, n_post), np.float32)
    parts = []
    for t0 in range(0, T, c):
        t1 = min(T, t0 + c)
        block = S[t0 * B:t1 * B]
        I = (block.toarray() @ W) if dense else np.asarray(block @ W)
        I = I.reshape(t1 - t0, B, n_post)
        fired = np.empty(I.shape, bool)
        for k in range(t1 - t0):
            np.add(u, I[k], out=u)
            np.greater_equal(u, th, out=fired[k])
            np.putmask(u, fired[k], np.float32(0))
        flat = np.flatnonzero(fired)                                   # cheaper than 3-d nonzero
        k, rest = np.divmod(flat, B * n_post)
        b, i = np.divmod(rest, n_post)
        parts.append((b, k + t0 + 1, i))
    b, t, i = (np.concatenate(p) for p in zip(*parts))
    counts, t_first, t_last, t_prev, out = records_from_spikes(b, t, i, B, T, n_post)
    return ref.LayerRecord(counts, t_first, t_last, t_prev, u, out)


def forward(weights: list[np.ndarray], spikes: SpikeTensor, theta: float, mode: str = "auto") -> list[ref.LayerRecord]:
    """Every layer in turn, like reference.forward; mode is chosen per layer from its input."""
    records = []
    for W in weights:
        rec = layer_forward(W, spikes, theta, mode)
        records.append(rec)
        spikes = rec.spikes
    return records


def sample_counts(spikes: SpikeTensor) -> np.ndarray:
    """n[b, j] = spikes of input j over the whole window of sample b. float32 [B, n_inputs]."""
    b = np.repeat(np.arange(spikes.n_samples), np.diff(spikes.indptr[::spikes.n_steps]))
    flat = np.bincount(b * spikes.n_inputs + spikes.ids, weights=None if spikes.counts is None else spikes.counts,
                       minlength=spikes.n_samples * spikes.n_inputs)
    return flat.reshape(spikes.n_samples, spikes.n_inputs).astype(np.float32)


def weight_gradient(spikes_in: SpikeTensor, rec_post: ref.LayerRecord, delta_post: np.ndarray,
                    theta: float, gradient: str = "timing") -> np.ndarray:
    """G float32 [n_pre, n_post], the reference's weight_gradient computed chunk by chunk.

    G^T = sum_chunks M_chunk @ c_chunk, where a = delta / (theta (T - w)) [B, n_post],
    M_chunk [n_post, c * B] holds a_bi at column (w_bi - t0) * B + b for the windows
    starting at a step w_bi in t0..t0+c-1, and c_chunk [c * B, n_pre] are the suffix
    counts n - prefix(w) there (prefix(0) = 0). Work: B x n_post x n_pre multiply-adds
    plus B x T x n_pre additions, whatever the density.
    """
    if gradient == "rate":
        return ref.weight_gradient(spikes_in, rec_post, delta_post, theta, gradient)
    B, T, n_pre = spikes_in.n_samples, spikes_in.n_steps, spikes_in.n_inputs
    n_post = delta_post.shape[1]
    w = ref.window_start(rec_post.t_last, rec_post.t_prev, T)
    a = delta_post / (np.float32(theta) * (T - w).astype(np.float32))
    n = sample_counts(spikes_in)
    if w.size == 0:
        return np.zeros((n_pre, n_post), np.float32)
    S = time_major(spikes_in)
    c = chunk_steps(B, n_pre, T)
    # pad the rows of G^T off a power-of-two stride: the final transpose is then cache friendly
    G_T = np.zeros((n_post, n_pre + 16), np.float32)[:, :n_pre]
    carry = np.zeros((B, n_pre), np.float32)                           # prefix(t0 - 1)
    for t0 in range(0, int(w.max()) + 1, c):
        t1 = min(T, t0 + c)
        block = np.zeros((t1 - t0, B, n_pre), np.float32)              # spikes at steps t0..t1-1
        first = max(t0, 1)
        if first < t1:
            S[(first - 1) * B:(t1 - 1) * B].toarray(out=block[first - t0:].reshape((t1 - first) * B, n_pre))
        block[0] += carry
        for k in range(1, t1 - t0):                                    # prefix(w) = c(0, w]
            block[k] += block[k - 1]
        carry = block[-1].copy()
        np.subtract(n, block, out=block)                               # suffix c(w, T]
        inside = ((w >= t0) & (w < t1)).T                              # [n_post, B]
        i, b = np.nonzero(inside)                                      # row-major: CSR order
        indptr = np.concatenate(([0], np.cumsum(inside.sum(axis=1))))
        M = sp.csr_matrix((a[b, i], (w[b, i] - t0) * B + b, indptr), shape=(n_post, (t1 - t0) * B))
        G_T += M @ block.reshape((t1 - t0) * B, n_pre)
    return np.ascontiguousarray(G_T.T)


def fractional_update(W: np.ndarray, W_prev: np.ndarray, G: np.ndarray, G_prev: np.ndarray | None,
                      step: int, optim: OptimConfig, scratch: tuple[np.ndarray, np.ndarray]) -> None:
    """reference.fractional_update in place: W <- W(k+1) and W_prev <- W(k), bit for bit.

    scratch: two float32 buffers shaped like W, so no temporaries of W's size are allocated
    (fresh multi-megabyte arrays cost page faults on every step). With alpha = 1 the factor
    (|dW| + eps)^0 / Gamma(1) is exactly 1 (then clipped), so it is applied as a scalar.
    """
    step_buf, factor = scratch
    g = G_prev if (step > 0 and optim.grad_at == "previous") else G
    np.multiply(g, np.float32(optim.lr), out=step_buf)                    # lr * g
    if step > 0 and optim.alpha == 1.0:
        one = np.float32(ref.gamma_factor(1.0))
        step_buf *= one if optim.factor_clip is None else min(one, np.float32(optim.factor_clip))
    elif step > 0:
        np.subtract(W, W_prev, out=factor)
        if optim.eps_inside:
            factor += np.float32(optim.eps)
            np.abs(factor, out=factor)
        else:
            np.abs(factor, out=factor)
            factor += np.float32(optim.eps)
        with np.errstate(divide="ignore", over="ignore"):
            np.power(factor, np.float32(1.0 - optim.alpha), out=factor)
            factor *= np.float32(ref.gamma_factor(optim.alpha))
        if optim.factor_clip is not None:
            np.minimum(factor, np.float32(optim.factor_clip), out=factor)
        step_buf *= factor
    W_prev[...] = W
    np.subtract(W, step_buf, out=W)
    if optim.w_max is not None:
        np.clip(W, -np.float32(optim.w_max), np.float32(optim.w_max), out=W)
