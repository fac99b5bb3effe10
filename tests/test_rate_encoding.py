"""Encoding mode "rate" (count encoding normalised per sample, data_tools.encode.normalise_rates):
a hand-computed case, the reference rate it reaches on real samples, and the same training on
the numpy and the emulated backend when a store-backed split is encoded this way."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from data_tools.datasets import load_dataset
from data_tools.encode import RATE_REF, encode, normalise_rates
from data_tools.errors import ConfigError
from data_tools.loader import StoreSplit, take
from data_tools.spikes import SpikeTensor
from data_tools.synth import SynthConfig, generate
from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.config import OptionError, RunConfig


def test_normalise_rates_hand_computed():
    # 3 samples x T 2 x 4 lines; rate_ref 0.5 -> E = 4 events per sample
    # sample 0: N 8, factor 1/2: 3 -> 1.5 -> 2 (half up), 1 -> 0.5 -> 1, 4 -> 2
    # sample 1: N 16, factor 1/4: 1 -> 0.25 -> 0 (dropped), 1 -> dropped, 14 -> 3.5 -> 4
    # sample 2: no events, stays empty
    s = SpikeTensor(np.array([0, 2, 3, 4, 6, 6, 6]), np.array([0, 2, 1, 3, 0, 1], np.int32), 3, 2, 4,
                    np.array([3, 1, 4, 1, 1, 14], np.int32))
    out = normalise_rates(s, 0.5)
    np.testing.assert_array_equal(out.indptr, [0, 2, 3, 3, 4, 4, 4])
    np.testing.assert_array_equal(out.ids, [0, 2, 1, 1])
    np.testing.assert_array_equal(out.counts, [2, 1, 2, 4])
    assert out.counts.dtype == np.int32
    # a binary tensor (no counts) is scaled like counts of one: N 3 spikes, E 4 -> 4/3 -> 1 each
    b = SpikeTensor(np.array([0, 2, 3]), np.array([0, 1, 2], np.int32), 1, 2, 4)
    np.testing.assert_array_equal(normalise_rates(b, 0.5).counts, [1, 1, 1])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_normalise_rates_refuses_a_bad_reference(bad):
    s = SpikeTensor(np.array([0, 1]), np.array([0], np.int32), 1, 1, 4, np.array([2], np.int32))
    with pytest.raises(ConfigError, match="rate_ref"):
        normalise_rates(s, bad)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("g")
    generate(root, SynthConfig.small_config(seed=3), progress=False)
    return root


def test_rate_mode_is_normalised_count_and_reaches_the_reference(small_dir, tmp_path):
    data = load_dataset(str(small_dir), n_steps=8, downsample=8, mode="count", cache_dir=tmp_path, progress=False)
    rate = load_dataset(str(small_dir), n_steps=8, downsample=8, mode="rate", cache_dir=tmp_path, progress=False)
    assert rate.identity != data.identity                   # a different encoding is a different dataset
    want = normalise_rates(data.train, RATE_REF)
    for f in ("indptr", "ids", "counts"):
        np.testing.assert_array_equal(getattr(rate.train, f), getattr(want, f))
    # every sample's events are E = RATE_REF * T * n to within half an event per entry
    S, T, n = rate.train.n_samples, rate.train.n_steps, rate.train.n_inputs
    sample = np.repeat(np.arange(S * T), np.diff(rate.train.indptr)) // T
    totals = np.bincount(sample, weights=rate.train.counts, minlength=S)
    entries = np.bincount(np.repeat(np.arange(S * T), np.diff(data.train.indptr)) // T, minlength=S)
    E = round(RATE_REF * T * n)
    assert np.all(np.abs(totals - E) <= entries / 2 + 1e-9)
    assert np.std(totals) < 0.1 * np.std(np.bincount(
        np.repeat(np.arange(S * T), np.diff(data.train.indptr)) // T, weights=data.train.counts, minlength=S))


def test_encode_rate_mode_equals_normalised_count_in_groups(small_dir, tmp_path, monkeypatch):
    from data_tools import encode as enc
    from data_tools.datasets import load_samples
    samples = load_samples(str(small_dir), cache_dir=tmp_path, progress=False)
    whole = encode(samples, 6, downsample=8, mode="rate")
    monkeypatch.setattr(enc, "CHUNK_EVENTS", 5000)          # many groups of samples
    grouped = encode(samples, 6, downsample=8, mode="rate")
    for f in ("indptr", "ids", "counts"):
        np.testing.assert_array_equal(getattr(grouped, f), getattr(whole, f))
        np.testing.assert_array_equal(getattr(whole, f), getattr(
            normalise_rates(encode(samples, 6, downsample=8, mode="count")), f))


def test_rate_encoding_trains_the_same_on_numpy_and_emulated(small_dir, tmp_path):
    data = load_dataset(str(small_dir), n_steps=6, downsample=16, mode="rate", cache_dir=tmp_path, progress=False,
                        in_memory_events=0)
    assert isinstance(data.train, StoreSplit)
    tr, te = np.arange(18), np.arange(8)
    data = dataclasses.replace(data, train=take(data.train, tr), train_labels=data.train_labels[tr],
                               test=take(data.test, te), test_labels=data.test_labels[te])
    cfg = RunConfig().replace(network={"widths": (data.train.n_inputs, 12, data.n_classes), "n_steps": 6},
                              train={"batch_size": 6, "epochs": 2, "seed": 4, "encoding": "rate"})
    emulated = get_backend("emulated")
    assert not training.encodes_on_device(emulated, data.train)  # the device encoder has no rate mode: host
    got = {}
    for name in ("numpy", "emulated"):
        backend = get_backend(name)
        state = training.new_state(cfg, backend)
        training.fit(backend, state, cfg, data, progress=False)
        got[name] = ([backend.asnumpy(W) for W in state.weights], state.history)
    for a, b in zip(got["numpy"][0], got["emulated"][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [h["test_accuracy"] for h in got["numpy"][1]] == [h["test_accuracy"] for h in got["emulated"][1]]
    assert not np.array_equal(got["numpy"][0][0], training.init_weights(
        cfg.network.widths, cfg.network.init_scale, 4)[0])                       # it did train


def test_config_takes_rate_and_refuses_other_encodings():
    assert RunConfig().replace(train={"encoding": "rate"}).validate().train.encoding == "rate"
    with pytest.raises(OptionError, match="encoding"):
        RunConfig().replace(train={"encoding": "normalised"}).validate()
