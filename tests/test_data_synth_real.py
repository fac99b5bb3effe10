"""The real-size synthetic DVS128 Gesture set: the original release's plan (122 trials, 29
users, 98 / 24 trials, 12 label rows per trial), event rates per window, determinism."""
from __future__ import annotations

import numpy as np

from data_tools.aedat3 import read_aedat3
from data_tools.gesture_layout import load_gesture_dir, parse_labels, read_split
from data_tools.synth import LIGHTINGS
from data_tools.synth_real import RATE, RealSizeConfig, generate_real, trial_plan


def test_plan_matches_the_original_release():
    plan = trial_plan(RealSizeConfig())
    assert len(plan) == 122 and sum(tr for *_, tr in plan) == 98
    assert {u for u, _, tr in plan if tr} == set(range(1, 24)) and {u for u, _, tr in plan if not tr} == set(range(24, 30))
    assert {light for _, light, _ in plan} == set(LIGHTINGS) == set(RATE)
    assert len(set(plan)) == 122                                     # no trial twice
    assert trial_plan(RealSizeConfig(seed=1)) != plan


def test_two_trials_layout_rates_and_jobs_do_not_change_the_output(tmp_path):
    cfg = RealSizeConfig(seed=2, fraction=1 / 61, rate_lo=3_500, rate_hi=6_500)   # 2 trials, 1/10 of the rate
    a = generate_real(tmp_path / "a", cfg, progress=False)
    generate_real(tmp_path / "b", cfg, jobs=2, progress=False)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n
    assert a["trials"] == 2 and a["samples"] == 24
    trials = read_split(tmp_path / "a" / "trials_to_train.txt") + read_split(tmp_path / "a" / "trials_to_test.txt")
    for name in trials:
        rows = parse_labels(tmp_path / "a" / name.replace(".aedat", "_labels.csv"))
        assert rows.size == 12 and set(rows["cls"]) == set(range(1, 12))      # 11 classes + one repeat
        d = (rows["end"] - rows["start"]) * 1e-6
        assert np.all((d > 3.5) & (d < 9))                                     # ~6 s per gesture
        ev = read_aedat3(tmp_path / "a" / name)
        assert np.all(np.diff(ev["t"]) >= 0) and ev["x"].max() < 128 and ev["y"].max() < 128
        assert 0.3 < ev["p"].mean() < 0.7
        lo, hi = np.searchsorted(ev["t"], rows["start"]), np.searchsorted(ev["t"], rows["end"])
        rate = (hi - lo) / d
        light = name.split("_", 1)[1][:-len(".aedat")]
        # hand + body events at the drawn rate x lighting factor, plus the background activity
        # (up to 1.25 x its rate); an overlapping annotation also holds part of the next gesture
        factor, bg = RATE[light]
        assert np.all(rate > 0.9 * cfg.rate_lo * factor)
        assert np.median(rate) < 1.05 * cfg.rate_hi * factor + 1.25 * bg
        assert ev.size - (hi - lo).sum() > 0                                   # activity between gestures
    s = load_gesture_dir(tmp_path / "a", progress=False)
    assert len(s) == 24 and len(load_gesture_dir(tmp_path / "a", counting="first", progress=False)) == 22
