"""Large batches (B = 512, 1,024) on the emulated backend: the forward and the weight
gradient's spike tables run in sample chunks whose buffers stay within forward.CURRENT_BYTES
(tracemalloc bounds); the forward equals the numpy backend's and the reference's, and a
chunked training batch is bit for bit the unchunked one."""
from __future__ import annotations

import itertools
import json
import tracemalloc

import numpy as np
import pytest
from forward_cases import assert_record_equals, random_input
from test_gpu_counting import on_device_grid
from test_gpu_gradient import random_record, to_device

from gpusnn import reference as ref
from gpusnn import training
from gpusnn.backends.gpu import GpuBackend, forward, gradient
from gpusnn.backends.gpu.compact import SpikeGrid
from gpusnn.backends.gpu.forward import layer_forward
from gpusnn.backends.gpu.gradient import table_chunks, weight_gradient
from gpusnn.backends.numpy import NumpyBackend
from gpusnn.config import RunConfig


def test_b512_forward_equals_numpy_backend():
    rng = np.random.default_rng(21)
    B, T, widths = 512, 20, (30, 16, 5)
    spikes = random_input(rng, B, T, widths[0], 0.08)
    weights = [rng.uniform(-0.2, 0.6, (a, b)).astype(np.float32) for a, b in itertools.pairwise(widths)]
    gpu = GpuBackend("emulated", mode="event")
    got = gpu.forward([gpu.asarray(W) for W in weights], spikes, 0.5)
    want = NumpyBackend(mode="event").forward(weights, spikes, 0.5)
    assert all(int(r.counts.sum()) > 0 for r in want)
    for g, w in zip(got, want):
        assert_record_equals(gpu.rt, g, w)


def test_b512_training_batch_equals_numpy_backend():
    B, T, widths = 512, 20, [30, 16, 5]
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": T, "theta": 0.5}, train={"batch_size": B})
    rng = np.random.default_rng(22)
    spikes = random_input(rng, B, T, widths[0], 0.08)
    labels = rng.integers(0, widths[-1], B)
    out = {}
    for name, backend in (("numpy", NumpyBackend(mode="event")), ("emulated", GpuBackend("emulated"))):
        state = training.new_state(cfg, backend)
        loss, pred, layer_spikes = training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes),
                                                        labels)
        out[name] = (np.asarray(loss), np.asarray(pred), layer_spikes,
                     [np.asarray(backend.asnumpy(W)) for W in state.weights])
    (l0, p0, s0, W0), (l1, p1, s1, W1) = out["numpy"], out["emulated"]
    assert s0 == s1 and min(s0) > 0                      # the forward is exact: same spikes
    np.testing.assert_array_equal(p0, p1)
    np.testing.assert_allclose(l1, l0, rtol=1e-6)
    for a, b in zip(W1, W0):                              # gradients: float32 summation order
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


@pytest.mark.parametrize("grid_input", [False, True], ids=["csr", "grid"])
def test_b512_buffers_stay_within_the_chunk_bound(monkeypatch, grid_input):
    """With CURRENT_BYTES = 64 KiB the peak allocation of a B = 512, T = 20, 40-64 layer is
    its outputs (5 arrays [B, n_post], the output grid) plus one chunk's currents; the whole
    I [B*T, n_post] (2.6 MB) would not fit the bound."""
    from forward_cases import grid_input as as_grid
    limit = 64 << 10
    monkeypatch.setattr(forward, "CURRENT_BYTES", limit)
    rng = np.random.default_rng(23)
    B, T, n_pre, n_post = 512, 20, 40, 64
    S = random_input(rng, B, T, n_pre, 0.1)
    W = rng.uniform(-0.2, 0.6, (n_pre, n_post)).astype(np.float32)
    rt = GpuBackend("emulated").rt
    x = as_grid(rt, S) if grid_input else S
    layer_forward(rt, W, x, 0.5, output_spikes=False)   # compiled, so the build is not counted
    outputs = 5 * B * n_post * 4 + B * T * ((n_post + 31) // 32) * 4
    bound = outputs + limit + (16 << 10)
    assert B * T * n_post * 4 > bound - outputs, "the unchunked I must exceed the bound"
    tracemalloc.start()
    try:
        got = layer_forward(rt, W, x, 0.5, output_spikes=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= bound, (peak, bound)
    assert_record_equals(rt, got, ref.integrate_and_fire(ref.input_currents(W, S), 0.5))


def train_once(cfg, spikes, labels):
    """(loss, predictions, layer spike totals, weights after the update) of one emulated
    training batch from a fresh state."""
    backend = GpuBackend("emulated", mode="event")
    state = training.new_state(cfg, backend)
    loss, pred, layer_spikes = training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes),
                                                    labels)
    return np.asarray(loss), np.asarray(pred), layer_spikes, [np.asarray(backend.asnumpy(W)) for W in state.weights]


@pytest.mark.parametrize("gradient", ["timing", "rate"])
def test_b1024_chunked_training_batch_is_the_unchunked_bit_for_bit(monkeypatch, gradient):
    """B = 1,024, count-encoded input (suffix tables of the CSR counts) and a hidden grid
    (step masks): with CURRENT_BYTES = 16 KiB the forward and both layers' gradient tables
    run in many chunks, and loss, predictions, spikes and updated weights are the unchunked ones,
    bit for bit."""
    B, T, widths = 1024, 20, [30, 16, 5]
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": T, "theta": 0.5}, train={"batch_size": B},
                              method={"gradient": gradient})
    rng = np.random.default_rng(24)
    spikes = random_input(rng, B, T, widths[0], 0.08, repeats=True, coalesced=True)
    labels = rng.integers(0, widths[-1], B)
    assert spikes.counts is not None and spikes.counts.max() > 1
    whole = train_once(cfg, spikes, labels)
    limit = 16 << 10
    monkeypatch.setattr(forward, "CURRENT_BYTES", limit)
    assert len(table_chunks(B, widths[0], T)) > 10 and len(table_chunks(B, widths[1], 1)) > 1   # both layers chunk
    chunked = train_once(cfg, spikes, labels)
    assert whole[2] == chunked[2] and min(whole[2]) > 0
    for a, b in zip(whole[:2] + tuple(whole[3]), chunked[:2] + tuple(chunked[3])):
        np.testing.assert_array_equal(a, b)
    backend = GpuBackend("emulated")
    initial = [np.asarray(backend.asnumpy(W)) for W in training.new_state(cfg, backend).weights]
    assert all(np.any(W != W0) for W, W0 in zip(chunked[3], initial))   # both gradients are non-zero


@pytest.mark.parametrize("B", [512, 1024])
@pytest.mark.parametrize("grid_input", [False, True], ids=["csr-counts", "grid"])
def test_gradient_tables_stay_within_the_chunk_bound(B, grid_input):
    """With a 32 KiB table bound, the peak allocation of weight_gradient (a 40-16 layer,
    T = 20) is its coefficients a, w [B, n_post], G and one chunk's table; the unchunked
    table (1.6-3.3 MB of suffix counts, 82-164 KB of masks at a 4 KiB bound) would not fit; G equals
    the reference's."""
    from forward_cases import grid_input as as_grid
    limit = 4 << 10 if grid_input else 32 << 10
    rng = np.random.default_rng(25 + B)
    T, n_pre, n_post = 20, 40, 16
    S = random_input(rng, B, T, n_pre, 0.1, repeats=not grid_input, coalesced=not grid_input)
    rec = random_record(rng, B, T, n_post)
    delta = rng.standard_normal((B, n_post)).astype(np.float32)
    rt = GpuBackend("emulated").rt
    x = as_grid(rt, S) if grid_input else S
    d_rec, d_delta = to_device(rt, rec), np.asarray(delta)
    weight_gradient(rt, x, d_rec, d_delta, 0.5, limit=limit)   # compiled, so the build is not counted
    per_sample = 4 * n_pre * (1 if grid_input else T)
    outputs = 2 * B * n_post * 4 + n_pre * n_post * 4
    bound = outputs + limit + (16 << 10)
    assert B * per_sample > bound - outputs, "the unchunked table must exceed the bound"
    tracemalloc.start()
    try:
        got = weight_gradient(rt, x, d_rec, d_delta, 0.5, limit=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= bound, (peak, bound)
    np.testing.assert_array_equal(got, ref.weight_gradient(S, rec, delta, 0.5))


def load_batch_memory():
    """benchmarks/batch_memory.py as a module."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "batch_memory.py"
    spec = importlib.util.spec_from_file_location("batch_memory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("grid", [False, True], ids=["csr", "grid"])
def test_memory_model_matches_the_allocated_buffers(monkeypatch, tmp_path, grid):
    """benchmarks/batch_memory.py's model of a B = 96, T = 40, 30-16-5 batch under a 12 KiB
    bound: its largest spike table and currents buffer are the largest ones an emulated
    training batch allocates, and its chunk counts are the launches the batch makes."""
    mod = load_batch_memory()
    B, T, widths, limit = 96, 40, [30, 16, 5], 12 << 10
    model = mod.batch_memory(widths, T, B, 0.1, limit, grid)
    monkeypatch.setattr(forward, "CURRENT_BYTES", limit)
    tables, buffers = [], []
    real_table = gradient.spike_table

    def spy_table(rt, spikes, *args):
        out = real_table(rt, spikes, *args)
        tables.append(out[0].nbytes)
        return out
    monkeypatch.setattr(gradient, "spike_table", spy_table)
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": T, "theta": 0.5}, train={"batch_size": B})
    rng = np.random.default_rng(26)
    spikes = random_input(rng, B, T, widths[0], 0.1)
    backend = GpuBackend("emulated", mode="event")
    real_empty = backend.rt.empty

    def spy_empty(shape, dtype):
        a = real_empty(shape, dtype)
        if a.ndim == 2 and a.dtype == np.float32 and a.shape[0] % T == 0 and a.shape[0] < B * T:
            buffers.append(a.nbytes)                   # a chunk's currents I [chunk * T, n_post]
        return a
    monkeypatch.setattr(backend.rt, "empty", spy_empty)
    state = training.new_state(cfg, backend)
    x = on_device_grid(backend, spikes) if grid else training.device_spikes(backend, spikes)
    assert isinstance(x, SpikeGrid) == grid
    traffic = backend.rt.reset_counts()
    training.train_batch(backend, state, cfg, x, labels=rng.integers(0, widths[-1], B))
    assert max(tables) == model["bytes"]["table"] <= limit
    assert max(t["unchunked_bytes"] for t in model["tables"]) > limit
    assert sum(t["chunks"] for t in model["tables"]) == traffic.kernels["gradient.weight_gradient"] == len(tables)
    assert max(buffers) == model["bytes"]["currents"] <= limit
    assert sum(c["chunks"] for c in model["currents"]) == traffic.kernels["forward.if_scan"]
    out = tmp_path / "m.json"
    assert mod.main(["--out", str(out), "--widths", "30,16,5", "--steps", "40", "--batch-sizes", "96",
                     "--density", "0.1", "--limit", str(limit)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["input"] for r in rows] == ["csr", "grid"] and rows[int(grid)] == dict(model, input=rows[int(grid)]["input"])
