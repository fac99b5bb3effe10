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


def test_spikes_per_step_is_the_mean_over_samples_and_steps(tmp_path):
    assert spikes_per_step(_tensor(7)) == 7.0
    assert spikes_per_step(_tensor(0)) == 0.0
    from data_tools.event_store import write_store
    from data_tools.events import make_events
    from data_tools.loader import StoreSplit
    from data_tools.samples import from_samples
    rng = np.random.default_rng(1)
    sizes = rng.integers(50, 400, 70)                 # 70 samples: the probe reads the first 64
    ev = [make_events(rng.integers(0, 128, k), rng.integers(0, 128, k), rng.random(k) < 0.5,
                      np.sort(rng.integers(0, 1000, k))) for k in sizes]
    s = from_samples(ev, labels=[0] * 70, durations=[1000] * 70, window_start=[0] * 70, users=[1] * 70,
                     lighting=["lab"] * 70, train=[True] * 70, trial=["t"] * 70, sensor_size=(128, 128, 2),
                     counting_rule="rows", source="x")
    write_store(tmp_path / "s.h5", s)
    split = StoreSplit(tmp_path / "s.h5", np.arange(70), n_steps=5)          # count mode: one spike per event
    assert spikes_per_step(split) == pytest.approx(sizes[:64].sum() / (64 * 5))


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
