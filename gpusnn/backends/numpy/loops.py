"""The numpy backend's compiled loops (numba, nopython, without the GIL): the passes that are
many small array operations or several memory passes in NumPy, each done in one pass here.

Every loop does the same float32 operations in the same order as the NumPy / scipy code it
stands for (no fused multiply-add, no reassociation: numba's default, fastmath off), so the
results are the same bit for bit; tests/test_numpy_fastpaths.py checks them against
gpusnn.reference. Scalars that enter float32 arithmetic must be passed as np.float32 (a
Python float would make numba compute in float64).

Compiled on first use and cached on disk beside this file (numba's cache; NUMBA_CACHE_DIR
moves it); where no cache directory is writable, compiled once per process instead. numba
comes with every install already (tonic -> librosa -> numba) and is named in setup.cfg.
"""
from __future__ import annotations

import numpy as np
from numba import njit


def _compiled(fn):
    """fn compiled without the GIL, cached on disk where numba finds a writable place (beside
    the source or in its user cache); else (numba raises RuntimeError "no locator available",
    e.g. a read-only installation and home) compiled anew in each process."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


@_compiled
def if_block(I, u, theta, t0, counts, t_first, t_last, t_prev, row_len, ids_out):
    """The nonleaky IF recursion of a block of samples over steps t0+1..t0+nt, in place.

    I float32 [nb, nt, N] currents; u float32 [nb, N] membrane potentials (updated); theta
    float32 > 0. Per step u += I_t; a neuron with u >= theta fires and u becomes u * 0 (+0),
    as does a NaN u (u < theta is false), others keep u. Records int32 [nb, N] of the block's
    samples, continued from earlier steps: counts (+= spikes), t_first (first spike step,
    1-based), t_last (last), t_prev (second to last; 0 = none). row_len int64 [nb * nt]: the
    spikes of CSR row b * nt + k. ids_out int32 [>= nb * nt * N]: the fired neurons' ids in
    CSR order (rows, then ids). Returns the number of ids written.
    """
    nb, nt, N = I.shape
    fired = np.empty(N, np.bool_)
    zero = np.float32(0.0)
    n = 0
    for b in range(nb):
        ub = u[b]
        for k in range(nt):
            Ik = I[b, k]
            some = False
            for i in range(N):                       # branch free: vectorised
                v = ub[i] + Ik[i]
                f = v >= theta
                fired[i] = f
                some |= f
                ub[i] = v if v < theta else v * zero
            start = n
            if some:
                step = np.int32(t0 + k + 1)
                for i in range(N):
                    if fired[i]:
                        ids_out[n] = i
                        n += 1
                        if counts[b, i] == 0:
                            t_first[b, i] = step
                        t_prev[b, i] = t_last[b, i]
                        t_last[b, i] = step
                        counts[b, i] += 1
            row_len[b * nt + k] = n - start
    return n


@_compiled
def csr_times_into(indptr, cols, vals, X, out, zero_first):
    """out += A X for A in CSR (indptr [R + 1], cols, vals float32 [nnz]), X float32 [C, k],
    out float32 [R, k]: row by row, entry by entry in CSR order, out[r] += a * X[c] (the
    order of scipy's csr_matvecs, so the same sums), four entries per pass over out[r]
    (a quarter of its loads and stores; measured 20-30 % faster); zero_first: each row of
    out is set to 0 first (out = A X, without a separate pass over out)."""
    k = X.shape[1]
    for r in range(indptr.size - 1):
        o = out[r]
        if zero_first:
            for j in range(k):
                o[j] = 0.0
        e, end = indptr[r], indptr[r + 1]
        while e + 4 <= end:             # four entries per pass over out[r]: the same additions in
            a1, a2, a3, a4 = vals[e], vals[e + 1], vals[e + 2], vals[e + 3]   # the same order
            x1, x2, x3, x4 = X[cols[e]], X[cols[e + 1]], X[cols[e + 2]], X[cols[e + 3]]
            for j in range(k):
                o[j] = (((o[j] + a1 * x1[j]) + a2 * x2[j]) + a3 * x3[j]) + a4 * x4[j]
            e += 4
        while e < end:
            a = vals[e]
            x = X[cols[e]]
            for j in range(k):
                o[j] += a * x[j]
            e += 1


@_compiled
def window_terms(row, a, R0, R1, indptr, cols, vals):
    """The window matrix M of suffix rows R0..R1-1 as CSR, one row per post neuron i: the
    terms a[b, i] != 0 whose row[b, i] lies in R0..R1-1, in ascending b, at column
    row[b, i] - R0. row int64 [B, N], a float32 [B, N]; indptr int32 [N + 1], cols int32
    and vals float32 [>= B * N] are filled. Returns the number of terms."""
    B, N = a.shape
    n = 0
    indptr[0] = 0
    for i in range(N):
        for b in range(B):
            r = row[b, i]
            if a[b, i] != 0 and R0 <= r < R1:
                cols[n] = r - R0
                vals[n] = a[b, i]
                n += 1
        indptr[i + 1] = n
    return n


@_compiled
def suffix_sums(P):
    """P float32 [nb, nt, width] in place: P[b, k] becomes the sum of P[b, k..nt-1], added
    from the last step backwards (P[b, k] += P[b, k + 1])."""
    nb, nt, width = P.shape
    for b in range(nb):
        for k in range(nt - 2, -1, -1):
            p, q = P[b, k], P[b, k + 1]
            for j in range(width):
                p[j] += q[j]


@_compiled
def descend(W, W_prev, g, lr, factor, scale, w_max):
    """One update step in place, element by element: s = (g * lr) * factor * scale, W_prev =
    W, W = W - s, then W clamped to [-w_max, w_max] (NaN stays NaN; w_max = inf: no clamp).
    W, W_prev, g float32 [rows, cols]; factor float32 [rows, cols], or [0, 0] for none; lr,
    scale, w_max float32 (scale 1 leaves s as it is)."""
    with_factor = factor.size > 0
    clamp = w_max < np.float32(np.inf)
    lo = -w_max
    for r in range(W.shape[0]):
        for c in range(W.shape[1]):
            s = g[r, c] * lr
            if with_factor:
                s = s * factor[r, c]
            s = s * scale
            x = W[r, c]
            W_prev[r, c] = x
            x = x - s
            if clamp:
                if x < lo:
                    x = lo
                elif x > w_max:
                    x = w_max
            W[r, c] = x
