"""forward.cu and compact.cu against their NumPy twins (reference.input_currents +
integrate_and_fire; a dense occupancy grid), on random inputs, emulated and on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.backends.gpu.compact import GRID_BITS, GRID_COUNTS, compact
from gpusnn.backends.gpu.forward import layer_forward
from data_tools.spikes import from_dense


def random_input(rng, B, T, N, density, repeats=False, coalesced=False):
    """Random spikes; with repeats, some (step, id) fire more than once (count encoding):
    as repeated ids, or with coalesced as one entry with a count."""
    counts = rng.random((B, T, N)) < density
    if repeats:
        counts = counts * rng.integers(1, 4, (B, T, N))
    return from_dense(counts.astype(np.int32), coalesced=coalesced)


def on_device(rt, s):
    return s.to(rt.xp)


@pytest.mark.parametrize("B, T, n_pre, n_post, density, repeats, theta", [
    (4, 16, 200, 70, 0.08, False, 1.0),
    (3, 5, 33, 32, 0.3, True, 0.5),
    (3, 7, 40, 45, 0.6, "coalesced", 1.0),   # counts: each entry adds count * W[j]
    (2, 1, 64, 1, 0.5, False, 1.0),
    (5, 12, 50, 97, 0.0, False, 1.0),        # no input at all
    (0, 4, 10, 10, 0.5, False, 1.0),         # empty batch
])
def test_layer_forward_matches_reference(gpu_kernel_rt, gpu_kernel_rng, B, T, n_pre, n_post, density, repeats, theta):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    S = random_input(rng, B, T, n_pre, density, bool(repeats), coalesced=repeats == "coalesced")
    W = rng.uniform(-0.4, 0.8, (n_pre, n_post)).astype(np.float32)
    want = ref.integrate_and_fire(ref.input_currents(W, S), theta)
    got = layer_forward(rt, rt.xp.asarray(W), on_device(rt, S), theta)
    exact = rt.kind == "emulated"   # same float order as the reference: spike for spike
    for f in ("counts", "t_first", "t_last", "t_prev"):
        g, w = rt.asnumpy(getattr(got, f)), getattr(want, f)
        assert g.shape == w.shape and g.dtype == w.dtype
        assert (g != w).sum() <= (0 if exact else max(1, w.size // 1000)), f
    np.testing.assert_allclose(rt.asnumpy(got.u_final), want.u_final, rtol=0 if exact else 1e-5,
                               atol=0 if exact else 1e-5)
    gs = got.spikes
    host = gs.to(np)
    assert (host.to_dense() != want.spikes.to_dense()).sum() <= (0 if exact else max(1, B * T * n_post // 1000))
    rows = host.rows()
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(host.ids)[same_row] > 0), "ids must be sorted and unique within a row"


@pytest.mark.parametrize("mode", [GRID_BITS, GRID_COUNTS])
@pytest.mark.parametrize("rows, n_ids", [(7, 45), (1, 1), (30, 64), (0, 5)])
def test_compact_matches_dense_grid(gpu_kernel_rt, gpu_kernel_rng, mode, rows, n_ids):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    dense = (rng.random((rows, n_ids)) < 0.3) * (rng.integers(1, 4, (rows, n_ids)) if mode == GRID_COUNTS else 1)
    if mode == GRID_BITS:
        words = (n_ids + 31) // 32
        padded = np.zeros((rows, words * 32), np.uint64)
        padded[:, :n_ids] = dense
        grid = (padded.reshape(rows, words, 32) << np.arange(32, dtype=np.uint64)).sum(axis=2).astype(np.uint32)
    else:
        grid = dense.astype(np.uint32)
    indptr, ids, counts = compact(rt, rt.xp.asarray(grid), mode)
    assert (counts is None) == (mode == GRID_BITS)
    # count mode gives the coalesced tensor: each id once per row, its counter in counts
    want = from_dense(dense.reshape(rows, 1, n_ids).astype(np.int32), coalesced=True) if rows else None
    if rows:
        np.testing.assert_array_equal(rt.asnumpy(indptr), want.indptr)
        np.testing.assert_array_equal(rt.asnumpy(ids), want.ids)
        if mode == GRID_COUNTS:
            np.testing.assert_array_equal(rt.asnumpy(counts), want.counts)
    else:
        assert rt.asnumpy(indptr).tolist() == [0] and rt.asnumpy(ids).size == 0
