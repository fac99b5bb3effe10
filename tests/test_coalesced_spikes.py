"""Coalesced spike tensors (repeated ids of a step as one entry with a count) give the
results of the uncoalesced tensor on the reference and the numpy backend.

With dyadic weights (multiples of 2^-6, small sums) every float32 sum is exact, so a count
c times W[j] equals c repeated additions of W[j] bit for bit and the results must be equal;
with arbitrary weights they differ by float32 rounding only (checked with a tolerance of a
few ulps of the largest current).
"""
import numpy as np
import pytest

from data_tools.spikes import from_dense
from gpusnn import reference as ref
from gpusnn.backends.numpy import fastpaths as ck
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import MethodConfig


def count_workload(seed, B=4, T=9, widths=(30, 20, 5), rate=1.5, dyadic=True):
    rng = np.random.default_rng(seed)
    dense = rng.poisson(rate, (B, T, widths[0])) * (rng.random((B, T, widths[0])) < 0.5)
    if dyadic:
        weights = [(rng.integers(-16, 40, (a, b)) / 64).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    else:
        weights = [rng.uniform(-0.25, 0.6, (a, b)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    return from_dense(dense), from_dense(dense, coalesced=True), weights, rng


def assert_records_equal(a, b):
    for f in ("counts", "t_first", "t_last", "t_prev", "u_final"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_array_equal(a.spikes.indptr, b.spikes.indptr)
    np.testing.assert_array_equal(a.spikes.ids, b.spikes.ids)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_forward_and_gradients_equal_uncoalesced(seed):
    plain, coal, weights, rng = count_workload(seed)
    assert coal.nnz < plain.nnz and coal.n_spikes() == plain.nnz
    ra, rb = ref.forward(weights, plain, 1.0), ref.forward(weights, coal, 1.0)
    for a, b in zip(ra, rb):
        assert_records_equal(a, b)
    np.testing.assert_array_equal(ref.suffix_counts(plain), ref.suffix_counts(coal))
    delta = (rng.integers(-8, 8, (plain.n_samples, weights[0].shape[1])) / 32).astype(np.float32)
    for g in ("timing", "rate"):
        np.testing.assert_array_equal(ref.weight_gradient(plain, ra[0], delta, 1.0, g),
                                      ref.weight_gradient(coal, rb[0], delta, 1.0, g), err_msg=g)


@pytest.mark.parametrize("mode", ["event", "dense"])
@pytest.mark.parametrize("chunk", [1 << 20, 64])
def test_fastpaths_equal_uncoalesced_and_reference(mode, chunk, monkeypatch):
    monkeypatch.setattr(ck, "CHUNK_ELEMENTS", chunk)
    plain, coal, weights, rng = count_workload(3, T=11)
    want = ref.forward(weights, plain, 1.0)
    for spikes in (plain, coal):
        for a, b in zip(want, ck.forward(weights, spikes, 1.0, mode)):
            assert_records_equal(a, b)
    delta = (rng.integers(-8, 8, (plain.n_samples, weights[0].shape[1])) / 32).astype(np.float32)
    G = ref.weight_gradient(plain, want[0], delta, 1.0)
    np.testing.assert_array_equal(ck.weight_gradient(coal, want[0], delta, 1.0), G)
    np.testing.assert_array_equal(ck.weight_gradient(plain, want[0], delta, 1.0), G)


def test_arbitrary_weights_agree_to_float32_rounding():
    plain, coal, weights, rng = count_workload(4, dyadic=False, rate=3.0)
    I_plain, I_coal = ref.input_currents(weights[0], plain), ref.input_currents(weights[0], coal)
    # c * w (one rounding) vs w + w + ... (c roundings): a few ulps of the largest sum
    np.testing.assert_allclose(I_coal, I_plain, rtol=0, atol=16 * np.finfo(np.float32).eps * np.abs(I_plain).max())


def test_backend_coalesces_its_input_before_choosing_the_mode():
    plain, coal, weights, rng = count_workload(5, B=3, T=6, rate=4.0)
    assert ck.coalesced(plain).nnz == coal.nnz
    assert ck.density(ck.coalesced(plain)) <= 1.0 < ck.density(plain)
    be = NumpyBackend()
    labels = rng.integers(0, 5, plain.n_samples)
    recs = [be.forward(weights, s, 1.0) for s in (plain, coal)]
    for a, b in zip(*recs):
        assert_records_equal(a, b)
    out = [be.gradients(weights, s, r, labels, 6, 1.0, MethodConfig()) for s, r in zip((plain, coal), recs)]
    np.testing.assert_array_equal(out[0][0], out[1][0])
    for Ga, Gb in zip(out[0][2], out[1][2]):
        np.testing.assert_array_equal(Ga, Gb)
