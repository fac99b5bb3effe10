"""The threshold follows the input drive above drive_ref (issue 12 item 5)."""
from __future__ import annotations

import numpy as np
import pytest

from data_tools.loader import spikes_per_step
from data_tools.spikes import from_coo
from gpusnn.config import RunConfig
from gpusnn.errors import ConfigError
from gpusnn.training import with_input_drive


def _tensor(per_step: int, B: int = 3, T: int = 4, n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = B * T * per_step
    rows = np.repeat(np.arange(B * T), per_step)
    return from_coo(rows // T, rows % T + 1, rng.integers(0, n, k), B, T, n)


def test_spikes_per_step_is_the_mean_over_samples_and_steps():
    assert spikes_per_step(_tensor(7)) == 7.0
    assert spikes_per_step(_tensor(0)) == 0.0


def test_threshold_scales_with_the_square_root_of_the_drive_above_drive_ref():
    cfg = RunConfig().replace(network={"theta": 2.0, "drive_ref": 4.0})
    assert with_input_drive(cfg, _tensor(4)) == cfg                  # at the reference: unchanged
    hi = with_input_drive(cfg, _tensor(36))
    assert hi.network.theta == pytest.approx(2.0 * 3.0) and hi.network.drive_ref is None
    assert with_input_drive(hi, _tensor(3600)) == hi                  # applied once: the saved config is final
    off = cfg.replace(network={"drive_ref": None})
    assert with_input_drive(off, _tensor(3600)) == off
    assert RunConfig.from_dict({"network": {"drive_ref": "none"}}).network.drive_ref is None
    with pytest.raises(ConfigError, match="drive_ref"):
        RunConfig().replace(network={"drive_ref": -1.0}).validate()


def test_default_leaves_mnist_like_drive_unchanged():
    cfg = RunConfig()
    assert cfg.network.drive_ref == 512.0
    assert with_input_drive(cfg, _tensor(380)) == cfg                 # the bundled gestures' rate
