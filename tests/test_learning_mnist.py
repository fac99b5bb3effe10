"""Learning on real digits: 784-500-10 with the default settings, at most 5 epochs."""
import numpy as np
import pytest

from data_tools.datasets import load
from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.config import RunConfig


@pytest.mark.slow
def test_default_settings_reach_85_percent_on_held_out_digits():
    base = RunConfig()
    data = load("mnist5k", base.network.n_steps, base.train.seed)
    cfg = base.replace(network={"widths": (784, 500, 10)}, train={"epochs": 5}).validate()
    backend = get_backend("numpy")
    state = training.fit(backend, training.new_state(cfg, backend), cfg, data, progress=False)
    acc = [h["test_accuracy"] for h in state.history]
    assert len(acc) == 5
    assert acc[-1] >= 0.85, acc
    assert all(np.isfinite(W).all() for W in state.weights)
    # the held-out set really is held out: training accuracy is measured on other samples
    assert data.test.n_samples == 1000 and data.train.n_samples == 4000
