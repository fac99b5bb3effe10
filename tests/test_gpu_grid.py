"""SpikeGrid, a hidden layer's spikes kept as its occupancy grid (gpusnn.backends.gpu.compact):
the next layer's forward reads the grid (forward.cu currents_grid) bit for bit as it reads
the compacted CSR list and as the reference computes it, and SpikeGrid.to compacts on demand."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import bit_grid

from data_tools.spikes import from_dense
from gpusnn import reference as ref
from gpusnn.backends.gpu.compact import GRID_BITS, SpikeGrid, compact
from gpusnn.backends.gpu.forward import layer_forward
from gpusnn.errors import ShapeError

FIELDS = ("counts", "t_first", "t_last", "t_prev", "u_final")


@pytest.mark.parametrize("B, T, n_pre, n_post, density", [
    (4, 9, 70, 33, 0.15), (2, 3, 32, 5, 0.5), (3, 5, 1, 40, 0.9), (0, 4, 10, 6, 0.5), (2, 6, 40, 8, 0.0)])
def test_forward_from_grid_is_forward_from_csr(gpu_kernel_rt, gpu_kernel_rng, B, T, n_pre, n_post, density):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    dense = (rng.random((B, T, n_pre)) < density).astype(np.int32)
    S = from_dense(dense)
    W = rng.uniform(-0.4, 0.8, (n_pre, n_post)).astype(np.float32)
    Wd = rt.xp.asarray(W)
    from_grid = layer_forward(rt, Wd, SpikeGrid(rt.xp.asarray(bit_grid(dense)), B, T, n_pre), 0.9)
    from_csr = layer_forward(rt, Wd, S.to(rt.xp), 0.9)
    want = ref.integrate_and_fire(ref.input_currents(W, S), 0.9)
    for f in FIELDS:
        np.testing.assert_array_equal(rt.asnumpy(getattr(from_grid, f)), rt.asnumpy(getattr(from_csr, f)), err_msg=f)
        if rt.kind == "emulated":   # the reference's float order: equal (a GPU may differ at ties)
            np.testing.assert_array_equal(rt.asnumpy(getattr(from_grid, f)), getattr(want, f), err_msg=f)
    np.testing.assert_array_equal(rt.asnumpy(from_grid.spikes.grid), rt.asnumpy(from_csr.spikes.grid))
    assert isinstance(from_grid.spikes, SpikeGrid) and from_grid.spikes.n_inputs == n_post


def test_grid_to_tensor_is_the_compaction(gpu_kernel_rt, gpu_kernel_rng):
    """SpikeGrid.to (host) = compact.cu's CSR = the dense spikes, ids sorted per row."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    dense = (rng.random((3, 7, 45)) < 0.3).astype(np.int32)
    g = SpikeGrid(rt.xp.asarray(bit_grid(dense)), 3, 7, 45)
    host = g.to(np)
    want = from_dense(dense)
    np.testing.assert_array_equal(host.indptr, want.indptr)
    np.testing.assert_array_equal(host.ids, want.ids)
    assert host.counts is None and (host.n_samples, host.n_steps, host.n_inputs) == (3, 7, 45)
    indptr, ids, _ = compact(rt, g.grid, GRID_BITS)
    np.testing.assert_array_equal(rt.asnumpy(indptr), want.indptr)
    np.testing.assert_array_equal(rt.asnumpy(ids), want.ids)
    assert isinstance(g.to(rt.xp).ids, rt.array_module.ndarray)


@pytest.mark.parametrize("shape, dtype", [((21, 2), np.uint32), ((20, 3), np.uint32), ((21, 1), np.uint32),
                                          ((21, 2), np.int32)])
def test_grid_shape_is_checked(shape, dtype):
    with pytest.raises(ShapeError, match="spike grid must be uint32"):
        SpikeGrid(np.zeros(shape, dtype), 4, 5, 40)


def test_grid_from_tensor_round_trip_and_refusals():
    rng = np.random.default_rng(12)
    dense = (rng.random((2, 5, 70)) < 0.3).astype(np.int32)
    g = SpikeGrid.from_tensor(from_dense(dense))
    np.testing.assert_array_equal(g.grid, bit_grid(dense))
    assert (g.n_samples, g.n_steps, g.n_inputs) == (2, 5, 70)
    np.testing.assert_array_equal(g.to(np).to_dense(), dense)
    twice = dense * 2
    with pytest.raises(ShapeError, match="counts"):
        SpikeGrid.from_tensor(from_dense(twice, coalesced=True))
    with pytest.raises(ShapeError, match="repeats ids"):
        SpikeGrid.from_tensor(from_dense(twice))
