"""forward.cu and compact.cu against their NumPy twins (reference.input_currents +
integrate_and_fire; a dense occupancy grid), on random inputs, emulated and on a GPU.
The event path (kernel A from a spike list or an occupancy grid, then the IF scan) must
equal the reference bit for bit on the emulator, in every sample chunking; the dense GEMM
path is tested in tests/test_gpu_dense.py."""
from __future__ import annotations

import numpy as np
import pytest
from forward_cases import (
    assert_record_equals,
    currents_case,
    bit_grid,
    grid_input,
    on_device,
    random_input,
)

from data_tools.spikes import from_dense
from gpusnn import reference as ref
from gpusnn.backends.gpu import forward
from gpusnn.backends.gpu.compact import GRID_BITS, GRID_COUNTS, compact
from gpusnn.backends.gpu.forward import current_chunks, input_currents, layer_forward


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
    assert_record_equals(rt, got, want, exact=rt.kind == "emulated")  # the reference's float order
    host = got.spikes.to(np)
    rows = host.rows()
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(host.ids)[same_row] > 0), "ids must be sorted and unique within a row"


@pytest.mark.parametrize("mode", [GRID_BITS, GRID_COUNTS])
@pytest.mark.parametrize("rows, n_ids", [(7, 45), (1, 1), (30, 64), (0, 5)])
def test_compact_matches_dense_grid(gpu_kernel_rt, gpu_kernel_rng, mode, rows, n_ids):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    dense = (rng.random((rows, n_ids)) < 0.3) * (rng.integers(1, 4, (rows, n_ids)) if mode == GRID_COUNTS else 1)
    grid = bit_grid(dense[:, None]) if mode == GRID_BITS else dense.astype(np.uint32)
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


@pytest.mark.parametrize("B, T, n_pre, n_post, density, repeats", [
    (2, 3, 1500, 40, 0.8, False),         # > 1024 entries per row: several shared-memory stages
    (2, 3, 700, 33, 0.9, True),           # repeated ids: rows longer than n_pre
    (3, 4, 1300, 37, 0.7, "coalesced"),   # counts over several stages
    (2, 5, 64, 300, 0.2, False),          # more post neurons than threads: several per thread
])
def test_currents_over_stages_equal_reference(gpu_kernel_rt, gpu_kernel_rng, B, T, n_pre, n_post, density, repeats):
    """Kernel A's I [B*T, n_post] equals reference.input_currents bit for bit (emulated)."""
    rt = gpu_kernel_rt
    _, _, want, got = currents_case(rt, gpu_kernel_rng, B, T, n_pre, n_post, density, repeats, dense=False)
    if rt.kind == "emulated":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B, T, n_pre, n_post, density", [
    (3, 6, 45, 50, 0.3),       # words not a multiple of 32 ids
    (2, 4, 2100, 20, 0.6),     # 66 words: three 32-word stages, ~1,260 ids per row
    (2, 3, 32, 1, 1.0),        # every bit of one word set
    (4, 5, 70, 9, 0.0),        # an empty grid
])
def test_grid_input_equals_reference(gpu_kernel_rt, gpu_kernel_rng, B, T, n_pre, n_post, density):
    """An occupancy-grid input (hidden layers' output, read without compaction) gives the
    same currents and record as the reference on the same spikes: set bits are summed in
    increasing id order, the CSR order."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    S = random_input(rng, B, T, n_pre, density)
    W = rng.uniform(-0.4, 0.8, (n_pre, n_post)).astype(np.float32)
    I_ref = ref.input_currents(W, S)
    G = grid_input(rt, S)
    I = rt.asnumpy(input_currents(rt, rt.xp.asarray(W), G, 0, B, dense=False))
    exact = rt.kind == "emulated"
    if exact:
        np.testing.assert_array_equal(I, I_ref.reshape(B * T, n_post))
    assert_record_equals(rt, layer_forward(rt, rt.xp.asarray(W), G, 0.7), ref.integrate_and_fire(I_ref, 0.7), exact)


@pytest.mark.parametrize("limit", [1, 3 * 4 * 20, 10 ** 9], ids=["one-sample", "three-samples", "one-chunk"])
@pytest.mark.parametrize("grid", [False, True], ids=["csr", "grid"])
def test_sample_chunks_change_nothing(gpu_kernel_rt, gpu_kernel_rng, monkeypatch, limit, grid):
    """However the batch is cut into sample chunks (CURRENT_BYTES), the record is the reference's."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    monkeypatch.setattr(forward, "CURRENT_BYTES", limit)
    B, T, n_pre, n_post = 7, 4, 50, 20
    S = random_input(rng, B, T, n_pre, 0.3)
    W = rng.uniform(-0.4, 0.8, (n_pre, n_post)).astype(np.float32)
    want = ref.integrate_and_fire(ref.input_currents(W, S), 0.6)
    got = layer_forward(rt, rt.xp.asarray(W), grid_input(rt, S) if grid else on_device(rt, S), 0.6)
    assert_record_equals(rt, got, want, exact=rt.kind == "emulated")


def test_current_chunks_cover_the_batch_within_the_bound():
    assert current_chunks(10, 4, 100, limit=1200) == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert current_chunks(5, 4, 100, limit=1) == [(b, 1) for b in range(5)]   # one sample at least
    assert current_chunks(0, 4, 100) == []
    # the large batches of the issue: B = 1,024, T = 64, 2048-500: I is 131 MB, one chunk on
    # the event path; the dense path (X too, 10 MB per sample) is cut to CURRENT_BYTES
    assert current_chunks(1024, 64, 4 * 500) == [(0, 1024)]
    dense = current_chunks(1024, 64, 4 * (500 + 2048))
    assert len(dense) > 1 and sum(n for _, n in dense) == 1024
    assert max(n for _, n in dense) * 64 * 4 * (500 + 2048) <= forward.CURRENT_BYTES
