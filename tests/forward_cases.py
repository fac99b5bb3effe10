"""Builders and checks shared by the forward-kernel tests (test_gpu_forward, test_gpu_dense,
test_gpu_large_batch): random inputs, their occupancy grids (helpers.bit_grid), and the comparison of a device LayerRecord with the reference's."""
from __future__ import annotations

import numpy as np

from data_tools.spikes import from_dense
from gpusnn.backends.gpu.compact import SpikeGrid
from helpers import bit_grid


def random_input(rng, B, T, N, density, repeats=False, coalesced=False):
    """Random spikes; with repeats, some (step, id) fire more than once (count encoding):
    as repeated ids, or with coalesced as one entry with a count."""
    counts = rng.random((B, T, N)) < density
    if repeats:
        counts = counts * rng.integers(1, 4, (B, T, N))
    return from_dense(counts.astype(np.int32), coalesced=coalesced)


def on_device(rt, s):
    return s.to(rt.xp)


def currents_case(rt, rng, B, T, n_pre, n_post, density, repeats, dense):
    """(S, W, want, got) of one input-currents case: random input (repeats False, True or
    "coalesced"), uniform weights, reference.input_currents [B*T, n_post] and the device's
    gpu.forward.input_currents of the same (dense or event-driven), on the host."""
    from gpusnn import reference as ref
    from gpusnn.backends.gpu.forward import input_currents
    S = random_input(rng, B, T, n_pre, density, bool(repeats), coalesced=repeats == "coalesced")
    W = rng.uniform(-0.4, 0.8, (n_pre, n_post)).astype(np.float32)
    want = ref.input_currents(W, S).reshape(B * T, n_post)
    got = rt.asnumpy(input_currents(rt, rt.xp.asarray(W), on_device(rt, S), 0, B, dense=dense))
    return S, W, want, got


def grid_input(rt, S) -> SpikeGrid:
    """A binary SpikeTensor S as the SpikeGrid of the same spikes, on the device."""
    return SpikeGrid(rt.xp.asarray(bit_grid(S.to_dense())), S.n_samples, S.n_steps, S.n_inputs)


def assert_record_equals(rt, got, want, exact=True):
    """Every field of LayerRecord got (device) equal to the reference record want (on a
    GPU: at most 1 in 1,000 differing, float32 rounding of the hardware)."""
    for f in ("counts", "t_first", "t_last", "t_prev"):
        g, w = rt.asnumpy(getattr(got, f)), getattr(want, f)
        assert g.shape == w.shape and g.dtype == w.dtype
        assert (g != w).sum() <= (0 if exact else max(1, w.size // 1000)), f
    np.testing.assert_allclose(rt.asnumpy(got.u_final), want.u_final, rtol=0 if exact else 1e-5,
                               atol=0 if exact else 1e-5)
    if got.spikes is not None:
        B, T, n = want.spikes.n_samples, want.spikes.n_steps, want.spikes.n_inputs
        host = got.spikes.to(np)
        assert (host.to_dense() != want.spikes.to_dense()).sum() <= (0 if exact else max(1, B * T * n // 1000))
