"""`gpusnn inspect` on checkpoints, spike logs and foreign files; `gpusnn evaluate --log-spikes`."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from gpusnn.io import spikelog
from gpusnn.cli import main
from gpusnn.commands.inspect import summary
from test_resume import RUN, command, write_tiny_idx


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    data = write_tiny_idx(root / "data")
    command("train", "--data", data, *RUN, "--epochs", 2, "--out", root / "run", "--log-spikes", 2)
    return root / "run"


def test_inspect_checkpoint_prints_and_writes_json(run_dir, tmp_path, capsys):
    out = tmp_path / "ck.json"
    assert main(["inspect", str(run_dir), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "gpusnn checkpoint v1" in text and "network 784-12-10, T=6" in text and "epoch 2 of 2, step 10" in text
    s = json.loads(out.read_text())
    assert s["kind"] == "checkpoint" and s["file"] == str(run_dir / "checkpoint.h5")
    assert [h["epoch"] for h in s["history"]] == [1, 2] and s["config"]["train"]["seed"] == 3
    assert [L["W"]["shape"] for L in s["layers"]] == [[784, 12], [12, 10]]
    assert s["rng"]["shuffle"] == [3, 2, 2]


def test_inspect_spike_log(run_dir, capsys):
    assert main(["inspect", str(run_dir / "spikes.h5")]) == 0
    assert "gpusnn spike log v1, 4 entries (2 samples" in capsys.readouterr().out
    s = summary(run_dir / "spikes.h5")
    with spikelog.open_log(run_dir / "spikes.h5") as lg:
        n_input = len(lg.events(0)[0])
    assert s["epochs"] == [1, 2] and s["samples"] == [0, 1] and s["splits"] == ["test"]
    assert s["groups"]["input"]["events"] == n_input > 0 and s["groups"]["input"]["per_entry"] == n_input / 4
    assert set(s["groups"]) == {"input", "layers/1", "layers/2"}


def test_inspect_recognises_event_files(tmp_path, capsys):
    aedat = tmp_path / "user01_led.aedat"
    aedat.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n")
    store = tmp_path / "events.h5"
    with h5py.File(store, "w") as f:
        f["events"] = np.zeros(3, [("x", "i2"), ("y", "i2"), ("p", "?"), ("t", "i8")])
    assert main(["inspect", str(aedat)]) == 0
    assert main(["inspect", str(store)]) == 0
    out = capsys.readouterr().out
    assert "is an AEDAT 3.1 event file; use `gpusnn data inspect" in out
    assert "is an HDF5 event store" in out and "gpusnn data inspect" in out


def test_inspect_rejects_unknown_files(tmp_path, capsys):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "someone-else"
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["inspect", str(other)]) == 2
    assert main(["inspect", str(text)]) == 2
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert "neither a gpusnn checkpoint nor a spike log (root attribute format = 'someone-else')" in err
    assert "notes.txt: not a gpusnn checkpoint or spike log (not HDF5, not AEDAT)" in err
    assert "missing.h5: no such file" in err


def test_evaluate_logs_chosen_test_samples(run_dir, tmp_path):
    log = tmp_path / "eval.h5"
    res = command("evaluate", run_dir, "--log-spikes", "1,0", "--log", log, "--backend", "numpy")
    assert res["spike_log"] == str(log) and res["epochs"] == 2
    with spikelog.open_log(log) as lg, spikelog.open_log(run_dir / "spikes.h5") as trained:
        assert lg.entries["sample_id"].tolist() == [1, 0] and lg.entries["epoch"].tolist() == [2, 2]
        last = trained.find(sample_id=1, epoch=2)[0]  # the same weights logged at the end of training
        for layer in range(3):
            for a, b in zip(lg.spikes(layer, 0), trained.spikes(layer, last)):
                np.testing.assert_array_equal(a, b)
        assert lg.entries["prediction"][0] == trained.entries["prediction"][last]
