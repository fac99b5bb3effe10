"""The dense path of forward.cu's wrapper (scatter_dense + the array module's matmul, then the
IF scan) against the reference, and the mode choice (event / dense / auto by DENSE_ABOVE).

Tolerance (stated, and why): a GEMM sums each I[r, i] in its own order (blocked, maybe
split), not the reference's CSR order. Float32 summation of n terms in any order is within
(n - 1) * eps32 * sum |terms| of the exact sum, so the currents are compared with that bound.
Spikes can then differ only where u + I is within that bound of theta (threshold ties); the
spike tests use dyadic weights (multiples of 1/64, small), whose sums are exact in every
order, so there they must be equal field for field.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from forward_cases import assert_record_equals, currents_case, grid_input, on_device, random_input

from gpusnn import reference as ref
from gpusnn.backends.gpu import GpuBackend, forward
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.forward import (
    input_currents,
    layer_forward,
    use_dense,
)
from gpusnn.errors import ConfigError

EPS32 = float(np.finfo(np.float32).eps)


def dyadic_weights(rng, n_pre, n_post):
    """Weights k / 64, |k| <= 40: every partial sum of a layer's input is exact in float32."""
    return (rng.integers(-40, 41, (n_pre, n_post)) / 64).astype(np.float32)


@pytest.mark.parametrize("B, T, n_pre, n_post, density, repeats", [
    (3, 6, 120, 40, 0.4, False),
    (2, 5, 90, 33, 0.5, True),            # repeated ids add up in X
    (3, 4, 70, 21, 0.6, "coalesced"),     # counts are X's values
    (2, 3, 50, 10, 0.0, False),
])
def test_dense_currents_within_summation_bound(gpu_kernel_rt, gpu_kernel_rng, B, T, n_pre, n_post, density, repeats):
    rt = gpu_kernel_rt
    S, W, want, got = currents_case(rt, gpu_kernel_rng, B, T, n_pre, n_post, density, repeats, dense=True)
    X = S.to_dense().reshape(B * T, n_pre).astype(np.float64)
    terms = X @ np.abs(W.astype(np.float64))                       # sum |count * W[j, i]|
    n_terms = np.maximum((X > 0).sum(axis=1, keepdims=True) - 1, 0)
    bound = 2 * n_terms * EPS32 * terms                            # both results' rounding
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= bound)


@pytest.mark.parametrize("B, T, n_pre, n_post, density, repeats", [
    (4, 8, 100, 50, 0.5, False),
    (3, 6, 60, 30, 0.4, "coalesced"),
])
def test_dense_layer_equals_reference_on_exact_sums(gpu_kernel_rt, gpu_kernel_rng, B, T, n_pre, n_post, density, repeats):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    S = random_input(rng, B, T, n_pre, density, bool(repeats), coalesced=repeats == "coalesced")
    W = dyadic_weights(rng, n_pre, n_post)
    want = ref.integrate_and_fire(ref.input_currents(W, S), 1.0)
    got = layer_forward(rt, rt.xp.asarray(W), on_device(rt, S), 1.0, mode="dense")
    assert int(want.counts.sum()) > 0
    assert_record_equals(rt, got, want)


def test_dense_from_padded_list_equals_reference(gpu_kernel_rt, gpu_kernel_rng):
    """scatter_dense reads a PaddedSpikes list up to indptr[-1] (the padding is never read)."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    S = random_input(rng, 3, 5, 40, 0.5, True, coalesced=True)
    W = dyadic_weights(rng, 40, 20)
    p = PaddedSpikes.from_tensor(S, S.nnz + 64)
    p = PaddedSpikes(*(rt.xp.asarray(a) for a in (p.indptr, p.ids, p.counts)), 3, 5, 40)
    got = layer_forward(rt, rt.xp.asarray(W), p, 1.0, mode="dense")
    assert_record_equals(rt, got, ref.integrate_and_fire(ref.input_currents(W, S), 1.0))


def test_dense_chunks_change_nothing(gpu_kernel_rt, gpu_kernel_rng, monkeypatch):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    monkeypatch.setattr(forward, "CURRENT_BYTES", 2 * 5 * 4 * (40 + 30))   # two samples per chunk
    S = random_input(rng, 5, 5, 40, 0.5)
    W = dyadic_weights(rng, 40, 30)
    want = ref.integrate_and_fire(ref.input_currents(W, S), 1.0)
    t = rt.reset_counts()
    assert_record_equals(rt, layer_forward(rt, rt.xp.asarray(W), on_device(rt, S), 1.0, mode="dense"), want)
    assert t.library["matmul"] == 3 and t.kernels["forward.scatter_dense"] == 3


def test_auto_mode_follows_the_crossover():
    rng = np.random.default_rng(11)
    B, T, n = 4, 5, 200
    sparse = random_input(rng, B, T, n, forward.DENSE_ABOVE / 3)
    dense = random_input(rng, B, T, n, min(1.0, forward.DENSE_ABOVE * 3))
    assert not use_dense(sparse, "auto") and use_dense(dense, "auto")
    assert use_dense(sparse, "dense") and not use_dense(dense, "event")
    grid = SpikeGrid(np.zeros((B * T, 7), np.uint32), B, T, n)
    assert not use_dense(grid, "auto") and use_dense(grid, "dense")   # a grid's density is not known
    padded = PaddedSpikes.from_tensor(dense, dense.nnz + 10)            # nor a padded list's (static shapes)
    assert not use_dense(padded, "auto") and use_dense(padded, "dense")
    with pytest.raises(ConfigError, match="unknown forward mode"):
        use_dense(sparse, "gemm")
    with pytest.raises(ConfigError, match="unknown forward mode"):
        GpuBackend("emulated", mode="gemm")


def test_dense_from_grid_equals_reference(gpu_kernel_rt, gpu_kernel_rng):
    """scatter_grid: a hidden layer's SpikeGrid as dense input (n_pre not a multiple of 32)."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    S = random_input(rng, 3, 6, 70, 0.4)
    W = dyadic_weights(rng, 70, 25)
    I = input_currents(rt, rt.xp.asarray(W), grid_input(rt, S), 0, 3, dense=True)
    np.testing.assert_array_equal(rt.asnumpy(I), ref.input_currents(W, S).reshape(18, 25))   # exact sums
    got = layer_forward(rt, rt.xp.asarray(W), grid_input(rt, S), 1.0, mode="dense")
    assert_record_equals(rt, got, ref.integrate_and_fire(ref.input_currents(W, S), 1.0))


@pytest.mark.parametrize("mode", ["dense", "auto"])
def test_backend_dense_launches(mode):
    """Per layer on the dense path: zeros (X), a scatter, matmul, if_scan; in auto the dense
    input layer goes dense and the hidden layer (a SpikeGrid) event-driven."""
    rng = np.random.default_rng(12)
    backend = GpuBackend("emulated", mode=mode)
    B, T = 3, 5
    weights = [backend.asarray(dyadic_weights(rng, 40, 200) / 8), backend.asarray(dyadic_weights(rng, 200, 6))]
    spikes = random_input(rng, B, T, 40, 0.5)
    t = backend.rt.reset_counts()
    records = backend.forward(weights, spikes, 1.0, output_spikes=False)
    assert 0 < int(records[0].counts.sum()) and int(records[1].counts.sum()) > 0
    kernels = Counter({k.split(".", 1)[1]: v for k, v in t.kernels.items()})
    layer2 = "scatter_grid" if mode == "dense" else "currents_grid"
    assert kernels == Counter({"scatter_dense": 1, layer2: 1, "if_scan": 2})
    assert t.library["matmul"] == (2 if mode == "dense" else 1) and t.host_syncs == 0
    want = ref.forward([np.asarray(W) for W in weights], spikes, 1.0)
    for got, w in zip(records, want):
        assert_record_equals(backend.rt, got, w)


def test_crossover_script(tmp_path):
    """benchmarks/gpu_crossover.py on the CPU (emulated: CPU time, no GPU figure): every row
    timed, and its crossover rule on hand-made rows."""
    import importlib.util
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_crossover.py"
    spec = importlib.util.spec_from_file_location("gpu_crossover", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = [{"density": d, "event_ms": e, "dense_ms": g} for d, e, g in
            [(0.01, 1, 5), (0.05, 2, 5), (0.1, 6, 5), (0.2, 9, 5)]]
    assert mod.crossover(rows) == pytest.approx(0.075)
    assert mod.crossover(rows[:2]) is None                                   # event faster everywhere
    assert mod.crossover([{**r, "dense_ms": 0} for r in rows]) is None       # dense faster everywhere
    noisy = [{**r, "event_ms": e} for r, e in zip(rows, (1, 6, 2, 9))]    # dense wins at 5 %, not at 10 %
    assert mod.crossover(noisy) == pytest.approx(0.15)                      # dense from there on
    out = tmp_path / "x.json"
    assert mod.main(["--backend", "emulated", "--layer", "64,16", "--steps", "4", "--batch-sizes", "2",
                     "--densities", "0.05,0.5", "--repeats", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["density"] for r in res["batches"][0]["rows"]] == [0.05, 0.5]
    assert all(r["event_ms"] > 0 and r["dense_ms"] > 0 and r["input_entries"] > 0 for r in res["batches"][0]["rows"])
    assert res["modelled_dense_above"] == forward.DENSE_ABOVE and len(res["load_average"]) == 3
