"""GraphStep (gpusnn.backends.gpu.graph): a training step captured as a CUDA graph. On a GPU
its batches give what training.train_batch gives on the same grid input, batch for batch
(same kernels, same order: equal results); elsewhere it is a clear error. Its staging
(StaticStep: batches copied into static buffers) runs on the emulated backend and gives
train_batch's results there (also through training.fit: tests/test_device_encoding.py)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.backends.gpu import GpuBackend
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.graph import array_fields
from gpusnn.config import RunConfig
from gpusnn.errors import ConfigError, ShapeError
from gpusnn.profiling import random_spikes


def config(widths, B, T):
    return RunConfig().replace(network={"widths": list(widths), "n_steps": T, "theta": 0.25},
                               train={"batch_size": B})


@pytest.mark.parametrize("name", ["emulated", "numpy"])
def test_graph_step_needs_cuda(name):
    from gpusnn.backends.gpu.graph import GraphStep
    backend = get_backend(name)
    cfg = config((20, 8, 3), 2, 4)
    with pytest.raises(ConfigError, match="--cuda-graph needs --backend cuda"):
        GraphStep(backend, training.new_state(cfg, backend), cfg)


def test_training_refuses_cuda_graph_off_cuda():
    """cfg.train.cuda_graph reaching training on a backend without CUDA graphs: a ConfigError
    naming the flag before any batch (the CLI refuses it earlier: test_cli_train.py)."""
    from types import SimpleNamespace
    backend = get_backend("emulated")
    cfg = config((20, 8, 3), 2, 4).replace(train={"cuda_graph": True})
    data = SimpleNamespace(train=random_spikes(6, 4, 20, 0.3, 1), train_labels=np.zeros(6, np.int64))
    state = training.new_state(cfg, backend)
    with pytest.raises(ConfigError, match="--cuda-graph needs --backend cuda"):
        training.train_epoch(backend, state, cfg, data, progress=False)
    assert state.optim.step == 0


def on_device(backend, form):
    return replace(form, **{k: backend.asarray(a) for k, a in array_fields(form).items()})


def test_static_step_reuses_its_buffers_and_equals_train_batch():
    """StaticStep on emulated, batch for batch against train_batch on the same spikes: host
    binary batches (grid), then count batches as host tensors and as device PaddedSpikes of
    their exact size (a smaller capacity fits the buffers: copied into their first entries,
    stale padding past indptr never read), then one of a capacity above the buffers' (new
    buffers with slack).
    Results and weights equal; the buffers stay the same arrays while batches fit."""
    from data_tools.spikes import from_dense
    from gpusnn.backends.gpu.graph import CAPACITY_ROUND, StaticStep, slack_capacity
    widths, B, T = (64, 24, 5), 4, 6
    cfg = config(widths, B, T)
    rng = np.random.default_rng(21)
    binary = [random_spikes(B, T, widths[0], d, s) for s, d in enumerate((0.2, 0.4, 0.1))]
    counted = [from_dense(rng.poisson(lam, (B, T, widths[0])), coalesced=True) for lam in (0.4, 0.2, 0.3)]
    assert CAPACITY_ROUND > max(c.nnz for c in counted)
    big = CAPACITY_ROUND + 100                     # a device batch whose capacity exceeds the buffers'
    plain_backend, static_backend = GpuBackend("emulated"), GpuBackend("emulated")
    plain, staged = training.new_state(cfg, plain_backend), training.new_state(cfg, static_backend)
    step = StaticStep(static_backend, staged, cfg)
    feeds = [(x, x, "grid") for x in binary] + [(counted[0], counted[0], "new")]
    feeds += [(c, on_device(static_backend, PaddedSpikes.from_tensor(c, c.nnz)), "same") for c in counted[1:]]
    feeds += [(counted[0], counted[0], "same"),
              (counted[2], on_device(static_backend, PaddedSpikes.from_tensor(counted[2], big)), "new")]
    buffers = None
    for spikes, given, expect in feeds:
        y = rng.integers(0, widths[-1], B)
        want = training.train_batch(plain_backend, plain, cfg, training.device_spikes(plain_backend, spikes), y)
        got = step(given, y)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2] == want[2] and min(got[2]) > 0
        if expect == "grid":
            assert isinstance(step.input, SpikeGrid)
        elif expect == "new":
            assert step.input is not buffers and isinstance(step.input, PaddedSpikes)
        else:
            assert step.input is buffers
        buffers = step.input
    assert step.input.capacity == slack_capacity(big) == 2 * CAPACITY_ROUND
    for a, b in zip(staged.weights, plain.weights):
        np.testing.assert_array_equal(a, b)


def test_static_input_forms():
    """Binary batches travel as their grid; counts or repeated ids as a padded CSR list whose
    capacity has slack, never shrinks, and fits() tells when a batch needs a new capture."""
    from data_tools.spikes import from_dense
    from gpusnn.backends.gpu.graph import CAPACITY_ROUND, fits, static_input
    rng = np.random.default_rng(5)
    binary = random_spikes(3, 4, 50, 0.3, 1)
    g = static_input(binary)
    assert isinstance(g, SpikeGrid) and fits(g, static_input(random_spikes(3, 4, 50, 0.6, 2)))
    assert not fits(g, static_input(random_spikes(2, 4, 50, 0.3, 1)))
    dense = rng.poisson(0.5, (3, 4, 50))
    for counted in (from_dense(dense, coalesced=True), from_dense(dense)):
        p = static_input(counted)
        assert isinstance(p, PaddedSpikes) and p.ids.shape == (CAPACITY_ROUND,) and counted.nnz <= CAPACITY_ROUND
        np.testing.assert_array_equal(p.ids[:counted.nnz], counted.ids)
        assert not p.ids[counted.nnz:].any() and (p.counts is None) == (counted.counts is None)
        assert not fits(p, g) and not fits(g, p)
    big = from_dense(rng.poisson(3.0, (3, 40, 50)), coalesced=True)
    assert big.nnz > CAPACITY_ROUND
    q = static_input(big)
    assert q.ids.shape[0] >= 1.25 * big.nnz and q.ids.shape[0] % CAPACITY_ROUND == 0
    assert static_input(from_dense(rng.poisson(0.1, (3, 40, 50)), coalesced=True), q.ids.shape[0]).ids.shape == \
        q.ids.shape
    with pytest.raises(ShapeError, match="do not fit a capacity"):
        PaddedSpikes.from_tensor(big, 10)


@pytest.mark.gpu
def test_graph_step_equals_eager_steps():
    """Binary batches (grid input), then count-encoded ones (padded CSR: a second capture):
    every graph step gives the eager step's loss, predictions and spike totals on the same
    static input, and the weights end equal."""
    from data_tools.spikes import from_dense
    from gpusnn.backends.gpu.graph import GraphStep, static_input
    widths, B, T = (64, 24, 5), 4, 6
    cfg = config(widths, B, T)
    rng = np.random.default_rng(21)
    batches = [random_spikes(B, T, widths[0], d, s) for s, d in enumerate((0.2, 0.4, 0.1, 0.3))]
    batches += [from_dense(rng.poisson(lam, (B, T, widths[0])), coalesced=True) for lam in (0.2, 0.3, 0.25)]
    labels = [rng.integers(0, widths[-1], B) for _ in batches]
    eager_backend, graph_backend = GpuBackend("cuda"), GpuBackend("cuda")
    eager, graphed = training.new_state(cfg, eager_backend), training.new_state(cfg, graph_backend)
    step = GraphStep(graph_backend, graphed, cfg)
    for spikes, y in zip(batches, labels):
        host = static_input(spikes)
        dev = replace(host, **{k: eager_backend.asarray(a) for k, a in array_fields(host).items()})
        want = training.train_batch(eager_backend, eager, cfg, dev, y)
        got = step(spikes, y)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2] == want[2] and min(got[2]) > 0
    assert step.captures == 2 and graphed.optim.step == eager.optim.step == len(batches)
    for a, b in zip(graphed.weights, eager.weights):
        np.testing.assert_array_equal(a.get(), b.get())
