"""The tta benchmark's pieces: an encoded dataset written for the trainers' workers reads back
identical, and the median time to target counts a run that never reached it as infinitely slow."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from data_tools.spikes import EncodedDataset, SpikeTensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import tta
import workloads


def dataset(counts_train, seed=0):
    rng = np.random.default_rng(seed)

    def tensor(S, counts):
        per_row = rng.integers(0, 4, S * 3)
        ids = np.concatenate([np.sort(rng.choice(8, k, replace=False)) for k in per_row]).astype(np.int32)
        c = None if not counts else rng.integers(1, 300, ids.size).astype(np.int32)
        return SpikeTensor(np.concatenate(([0], np.cumsum(per_row))), ids, S, 3, 8, c)
    return EncodedDataset("d", tensor(5, counts_train), rng.integers(0, 4, 5), tensor(4, False),
                          rng.integers(0, 4, 4), 4, ("a", "b", "c", "d"), "id", {})


@pytest.mark.parametrize("counts", [True, False])
def test_encoded_dataset_round_trip(tmp_path, counts):
    data = dataset(counts)
    workloads.save_dataset(tmp_path / "d.npz", data)
    train, train_labels, test, test_labels, n_classes = workloads.load_dataset(tmp_path / "d.npz")
    assert n_classes == 4
    for got, want in ((train, data.train), (test, data.test)):
        assert (got.n_samples, got.n_steps, got.n_inputs) == (want.n_samples, want.n_steps, want.n_inputs)
        np.testing.assert_array_equal(got.to_dense(), want.to_dense())
        assert (got.counts is None) == (want.counts is None)
    np.testing.assert_array_equal(train_labels, data.train_labels)
    np.testing.assert_array_equal(test_labels, data.test_labels)


def test_save_refuses_counts_beyond_uint16(tmp_path):
    data = dataset(True)
    data.train.counts[0] = 70000
    with pytest.raises(ValueError, match="uint16"):
        workloads.save_dataset(tmp_path / "d.npz", data)


def run(seconds, epochs):
    return {"seconds_to_target": {"0.8": seconds, "0.9": None}, "epochs_to_target": {"0.8": epochs, "0.9": None},
            "train_s": [1.0, 2.0], "eval_s": [0.5], "test_accuracy": [0.5, 0.7], "hidden_firing": [None],
            "theta": None}


def test_median_to_target_counts_unreached_runs_as_slowest():
    s = tta.summary([run(4.0, 2), run(None, None), run(1.0, 1)])
    assert s["targets"]["0.8"] == {"reached": "2/3", "median_seconds": 4.0, "median_epochs": 2}
    assert s["targets"]["0.9"] == {"reached": "0/3", "median_seconds": None, "median_epochs": None}
    s = tta.summary([run(4.0, 2), run(None, None), run(None, None)])
    assert s["targets"]["0.8"]["median_seconds"] is None and s["targets"]["0.8"]["reached"] == "1/3"
    assert s["median_epoch_s"] == 1.5 and s["best_test_accuracy"] == [0.7, 0.7, 0.7]
    table = tta.markdown({"rows": [{"dataset": "x", "threads": 1, "max_epochs": 5,
                                    **{t: tta.summary([run(4.0, 2)]) for t in tta.TRAINERS}}]})
    assert "80 %: 4.0 s, 2 ep (1/1)" in table and "90 %: not reached in 5 epochs (0/1)" in table
