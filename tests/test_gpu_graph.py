"""GraphStep (gpusnn.backends.gpu.graph): a training step captured as a CUDA graph. On a GPU
its batches give what training.train_batch gives on the same grid input, batch for batch
(same kernels, same order: equal results); elsewhere it is a clear error."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.backends.gpu import GpuBackend
from gpusnn.backends.gpu.compact import SpikeGrid
from gpusnn.config import RunConfig
from gpusnn.errors import ConfigError
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


@pytest.mark.gpu
def test_graph_step_equals_eager_steps():
    from gpusnn.backends.gpu.graph import GraphStep
    widths, B, T = (64, 24, 5), 4, 6
    cfg = config(widths, B, T)
    rng = np.random.default_rng(21)
    batches = [(random_spikes(B, T, widths[0], d, s), rng.integers(0, widths[-1], B))
               for s, d in enumerate((0.2, 0.4, 0.1, 0.3, 0.25))]
    eager_backend, graph_backend = GpuBackend("cuda"), GpuBackend("cuda")
    eager, graphed = training.new_state(cfg, eager_backend), training.new_state(cfg, graph_backend)
    step = GraphStep(graph_backend, graphed, cfg)
    for spikes, labels in batches:
        grid = SpikeGrid.from_tensor(spikes)
        want = training.train_batch(eager_backend, eager, cfg, replace(grid, grid=eager_backend.asarray(grid.grid)),
                                    labels)
        got = step(spikes, labels)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2] == want[2] and min(got[2]) > 0
    assert step.captures == 1 and graphed.optim.step == eager.optim.step == len(batches)
    for a, b in zip(graphed.weights, eager.weights):
        np.testing.assert_array_equal(a.get(), b.get())
