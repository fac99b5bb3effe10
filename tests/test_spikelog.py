"""Spike logs: what is written equals what the network did; schema, appends, truncation, errors."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from gpusnn import training

from gpusnn.io import checkpoint

from gpusnn.io import spikelog
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import RunConfig
from gpusnn.errors import CheckpointError, ConfigError
from data_tools.spikes import EncodedDataset, from_dense

NP = NumpyBackend()
T = 8


def make_data(meta=None, seed=0) -> EncodedDataset:
    """24 inputs (input_shape [2, 3, 4]), 3 classes, 6 train and 5 test samples of dense spikes."""
    rng = np.random.default_rng(seed)
    spikes = [from_dense((rng.random((n, T, 24)) < 0.3).astype(np.int32)) for n in (6, 5)]
    return EncodedDataset("toy", spikes[0], rng.integers(0, 3, 6), spikes[1], rng.integers(0, 3, 5), 3,
                          ("a", "b", "c"), "id0", {"input_shape": [2, 3, 4]} if meta is None else meta)


@pytest.fixture
def run():
    cfg = RunConfig().replace(network={"widths": (24, 10, 3), "n_steps": T, "theta": 1.0})
    rng = np.random.default_rng(1)
    weights = [rng.uniform(-0.2, 0.6, (24, 10)).astype(np.float32), rng.uniform(-0.2, 0.8, (10, 3)).astype(np.float32)]
    return cfg, weights, make_data()


def coo_of(tensor, sample):
    s, t, n = tensor.to_coo()
    return t[s == sample], n[s == sample]


def test_log_holds_the_networks_own_spikes(tmp_path, run):
    cfg, weights, data = run
    path = tmp_path / "spikes.h5"
    rows = spikelog.log_samples(path, NP, weights, cfg, data, [4, 1], "test", epoch=1)
    rows2 = spikelog.log_samples(path, NP, weights, cfg, data, [0], "train", epoch=2)
    np.testing.assert_array_equal(rows, [0, 1])
    np.testing.assert_array_equal(rows2, [2])
    records = NP.forward(weights, data.test.select([4, 1]), cfg.network.theta)
    pred = training.predict(NP, weights, data.test, cfg).argmax(axis=1)
    with spikelog.open_log(path) as lg:
        assert lg.n_layers == 2 and lg.n_entries == 3 and lg.n_steps == T
        assert lg.input_shape == (2, 3, 4) and lg.class_names == ["a", "b", "c"]
        assert lg.widths.tolist() == [24, 10, 3] and lg.config == cfg.to_dict()
        e = lg.entries
        assert e["sample_id"].tolist() == [4, 1, 0] and e["split"].tolist() == [1, 1, 0]
        assert e["epoch"].tolist() == [1, 1, 2]
        assert e["label"].tolist() == [data.test_labels[4], data.test_labels[1], data.train_labels[0]]
        assert e["prediction"][:2].tolist() == [pred[4], pred[1]]
        for entry, sample in ((0, 4), (1, 1)):
            for got, want in zip(lg.spikes(0, entry), coo_of(data.test, sample)):
                np.testing.assert_array_equal(got, want)
            for layer, rec in enumerate(records, start=1):
                got = lg.spikes(layer, entry)
                want = coo_of(rec.spikes, entry)
                assert len(want[0]) > 0
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(g, w)
        for got, want in zip(lg.spikes(0, 2), coo_of(data.train, 0)):
            np.testing.assert_array_equal(got, want)
        assert lg.find(sample_id=4).tolist() == [0] and lg.find(split="train").tolist() == [2]
        assert lg.find(split="test", epoch=1).tolist() == [0, 1]
        entry, step, neuron = lg.events(1)
        assert entry.dtype == step.dtype == neuron.dtype == np.int32
        assert np.all(np.diff(entry) >= 0) and step.min() >= 1 and step.max() <= T and neuron.max() < 10
        with pytest.raises(IndexError, match=r"layer must lie in 0..2"):
            lg.spikes(3, 0)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "gpusnn-spikelog" and int(f.attrs["version"]) == 1
        for name in ("entries/sample_id", "input/entry", "layers/1/step", "layers/2/neuron"):
            ds = f[name]
            assert ds.maxshape == (None,) and ds.chunks is not None and ds.compression == "gzip"
        assert f["entries/split"].dtype == np.uint8 and f["entries/epoch"].dtype == np.int32


def test_input_shape_defaults_to_one_row_of_inputs():
    assert spikelog.input_shape(make_data(meta={})) == (1, 1, 24)
    assert spikelog.input_shape(make_data()) == (2, 3, 4)


def test_truncate_drops_later_epochs_and_their_events(tmp_path, run):
    cfg, weights, data = run
    path = tmp_path / "spikes.h5"
    for epoch in (1, 2, 3):
        spikelog.log_samples(path, NP, weights, cfg, data, [epoch], "test", epoch=epoch)
    with spikelog.open_log(path) as lg:
        kept = [lg.events(layer) for layer in range(3)]
    assert spikelog.truncate(path, 1) == 2
    assert spikelog.truncate(path, 1) == 0
    with spikelog.open_log(path) as lg:
        assert lg.entries["epoch"].tolist() == [1] and lg.entries["sample_id"].tolist() == [1]
        for layer in range(3):
            entry, step, neuron = lg.events(layer)
            m = kept[layer][0] == 0
            np.testing.assert_array_equal(entry, kept[layer][0][m])
            np.testing.assert_array_equal(neuron, kept[layer][2][m])


def test_appending_a_different_network_is_refused(tmp_path, run):
    cfg, weights, data = run
    path = tmp_path / "spikes.h5"
    spikelog.log_samples(path, NP, weights, cfg, data, [0], "test")
    other = cfg.replace(network={"widths": (24, 7, 3)})
    w2 = [np.zeros((24, 7), np.float32), np.zeros((7, 3), np.float32)]
    with pytest.raises(CheckpointError, match=r"spikes.h5: cannot append, the log has widths = \[24, 10, 3\]"):
        spikelog.log_samples(path, NP, w2, other, data, [0], "test")
    with pytest.raises(CheckpointError, match=r"sample ids must lie in 0..4"):
        spikelog.log_samples(path, NP, weights, cfg, data, [5], "test")
    with spikelog.open_log(path) as lg:
        assert lg.n_entries == 1


def test_bad_logs_fail_clearly(tmp_path, run):
    cfg, weights, data = run
    ck = tmp_path / "c.h5"
    state = training.new_state(cfg, NP)
    checkpoint.save(ck, cfg, state, NP)
    with pytest.raises(CheckpointError, match=r"c.h5: not a gpusnn-spikelog file \(root attribute format = "
                                              r"'gpusnn-checkpoint'\)"):
        spikelog.open_log(ck)
    path = tmp_path / "spikes.h5"
    spikelog.log_samples(path, NP, weights, cfg, data, [0], "test")
    with h5py.File(path, "a") as f:
        del f["layers/2/step"]
    with pytest.raises(CheckpointError, match=r"spikes.h5: missing dataset /layers/2/step"):
        spikelog.open_log(path)
    with pytest.raises(CheckpointError, match=r"nope.h5: no such spike log"):
        spikelog.open_log(tmp_path / "nope.h5")


@pytest.mark.parametrize("text, want", [("3", [0, 1, 2]), ("5,2,", [5, 2]), ("7,", [7]), ("1000", list(range(10)))])
def test_parse_ids(text, want):
    assert spikelog.parse_ids(text, 10).tolist() == want


@pytest.mark.parametrize("text, message", [("x", r"a count N or comma-separated"), ("3,10", r"id\(s\) \[10\] outside 0..9")])
def test_parse_ids_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        spikelog.parse_ids(text, 10)
