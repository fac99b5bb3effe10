"""The synthetic DVS128 Gesture generator: layout, determinism, and that the data is neither
trivial (count or mean position alone < 40 %) nor unlearnable (linear baseline > 80 %)."""
from __future__ import annotations

import numpy as np
import pytest

from data_tools.datasets import load_dataset, load_samples
from data_tools.gesture_layout import load_gesture_dir
from data_tools.synth import SynthConfig, generate


def test_small_layout_and_determinism(tmp_path):
    cfg = SynthConfig.small_config(seed=3)
    out = generate(tmp_path / "a", cfg, progress=False)
    generate(tmp_path / "b", cfg, progress=False)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    assert "trials_to_train.txt" in names and all(n.startswith("user") or n.startswith("trials") for n in names)
    s = load_gesture_dir(tmp_path / "a", progress=False)
    assert len(s) == out["samples"] and set(s.users[~s.train]) == {4} and set(s.users[s.train]) == {1, 2, 3}
    assert set(s.labels) == set(range(11))
    assert s.events["x"].max() < 128 and s.events["y"].max() < 128 and 0.3 < s.events["p"].mean() < 0.7
    assert all(np.all(np.diff(s.sample(i)["t"]) >= 0) for i in range(len(s)))


def _features(s):
    n = np.diff(s.offsets)
    sid = np.repeat(np.arange(len(s)), n)
    mean_xy = np.stack([np.bincount(sid, s.events["x"], len(s)), np.bincount(sid, s.events["y"], len(s))], 1)
    return np.log(n)[:, None], mean_xy / n[:, None]


@pytest.mark.slow
def test_default_dataset_not_trivial_but_learnable(gesture_cache):
    """Uses the default dataset (generated once per session, ~35 s on 2 cores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    s = load_samples("synth-gestures", cache_dir=gesture_cache, progress=False)
    assert 650 <= s.train.sum() <= 900 and 150 <= (~s.train).sum() <= 250
    assert set(s.users[s.train]).isdisjoint(s.users[~s.train])
    tr, y = s.train, s.labels
    for X in _features(s):
        for clf in (make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), NearestCentroid()):
            assert clf.fit(X[tr], y[tr]).score(X[~tr], y[~tr]) < 0.40
    ds = load_dataset("synth-gestures", n_steps=20, cache_dir=gesture_cache, progress=False)
    assert ds.train.n_inputs == 2048
    Xtr, Xte = ds.train.to_dense().sum(1), ds.test.to_dense().sum(1)
    clf = LogisticRegression(max_iter=3000, C=0.01).fit(Xtr, ds.train_labels)
    assert clf.score(Xte, ds.test_labels) > 0.80
