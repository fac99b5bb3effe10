"""The sweep machinery on a tiny grid: 2 alphas x 1 structure x 1 seed, 64 / 32 digits."""
import json

import numpy as np
import pytest

from gpusnn import cli, sweep

TINY = ["--data", "mnist5k", "--hidden-sets", "16", "--seeds", "0", "--epochs", "1",
        "--limit-train", "64", "--limit-test", "32", "--batch-size", "16"]


def run_cli(tmp_path, *extra):
    out = tmp_path / "sweep"
    rc = cli.main(["-q", "sweep", *TINY, "--out", str(out), "--json", str(tmp_path / "summary.json"), *extra])
    assert rc == 0
    return json.loads((out / "sweep.json").read_text()), json.loads((tmp_path / "summary.json").read_text())


def test_results_file_is_complete_and_figure_written(tmp_path):
    doc, summary = run_cli(tmp_path, "--alphas", "1.0", "1.7")
    assert doc["format"] == "gpusnn-sweep" and doc["version"] == 1
    assert doc["grid"]["alphas"] == [1.0, 1.7] and doc["grid"]["hidden_sets"] == [[16]]
    cells = sorted(doc["cells"], key=lambda c: c["alpha"])
    assert [c["alpha"] for c in cells] == [1.0, 1.7]
    for c in cells:
        assert c["status"] == "done" and c["data"] == "mnist5k" and c["widths"] == [784, 16, 10]
        assert (c["seed"], c["epochs"], c["lr"], c["gradient"]) == (0, 1, 0.005, "timing")
        assert (c["n_train"], c["n_test"], c["evaluated_on"]) == (64, 32, "test")
        assert c["weights_finite"] and len(c["history"]) == 1
        assert c["code"] == sweep.code_digest() and len(c["code"]) == 12
        assert c["test_accuracy"] == c["history"][0]["test_accuracy"]
        assert 0 <= c["test_accuracy"] <= 1 and c["test_accuracy"] * 32 == round(c["test_accuracy"] * 32)
    # alpha reached the optimiser: the two orders train to different losses
    assert cells[0]["test_loss"] != cells[1]["test_loss"]
    assert len({c["key"] for c in cells}) == 2
    png = (tmp_path / "sweep" / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(r["alpha"], r["n"]) for r in summary["summary"]] == [(1.0, 1), (1.7, 1)]
    assert summary["summary"][1]["mean"] == cells[1]["test_accuracy"]


def test_resume_skips_finished_cells(tmp_path, monkeypatch):
    first, _ = run_cli(tmp_path, "--alphas", "1.0", "1.7")
    calls = []
    real = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", lambda job: calls.append(job["alpha"]) or real(job))
    again, _ = run_cli(tmp_path, "--alphas", "1.0", "1.7", "0.5")
    assert calls == [0.5]
    old = {c["key"]: c for c in first["cells"]}
    kept = [c for c in again["cells"] if c["key"] in old]
    assert len(kept) == 2 and all(c == old[c["key"]] for c in kept)
    # another learning rate is another cell, even in the same file
    calls.clear()
    run_cli(tmp_path, "--alphas", "1.0", "--lr", "0.01")
    assert calls == [1.0]


def test_killed_sweep_keeps_finished_cells(tmp_path, monkeypatch):
    real = sweep.run_cell

    def dies_on_second(job):
        if job["alpha"] == 1.7:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(sweep, "run_cell", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_cli(tmp_path, "--alphas", "1.0", "1.7")
    doc = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [c["alpha"] for c in doc["cells"]] == [1.0]
    assert not list((tmp_path / "sweep").glob(".*.tmp"))


def test_parallel_cells_equal_serial(tmp_path):
    serial, _ = run_cli(tmp_path / "a", "--alphas", "0.7", "1.3")
    parallel, _ = run_cli(tmp_path / "b", "--alphas", "0.7", "1.3", "--jobs", "2")
    acc = lambda doc: {c["alpha"]: (c["test_accuracy"], c["test_loss"]) for c in doc["cells"]}
    assert acc(parallel) == acc(serial)


def test_validation_cut_holds_out_the_last_training_samples():
    data = sweep.cached_data("mnist5k", 20, 0, sweep.DataOptions())
    cut = sweep.cut_dataset(data, sweep.DataOptions(validation=500, limit_test=100))
    assert (cut.train.n_samples, cut.test.n_samples) == (3500, 100)
    assert np.array_equal(cut.test_labels, data.train_labels[3500:3600])
    assert np.array_equal(cut.test.to_dense(), data.train.select(np.arange(3500, 3600)).to_dense())
    assert sweep.cut_dataset(data, sweep.DataOptions()) is data


def test_summary_table_mean_and_std_over_seeds():
    cell = {"data": "d", "widths": [4, 3, 2], "epochs": 1, "gradient": "timing", "lr": 0.005, "eps": 1e-2,
            "factor_clip": 5.0, "evaluated_on": "test", "status": "done"}
    cells = [dict(cell, alpha=1.0, test_accuracy=a) for a in (0.5, 0.7)] + [dict(cell, alpha=1.9, test_accuracy=0.9)]
    rows = sweep.summarize(cells)
    assert [(r["alpha"], r["n"]) for r in rows] == [(1.0, 2), (1.9, 1)]
    assert rows[0]["mean"] == pytest.approx(0.6) and rows[0]["std"] == pytest.approx(0.1 * 2 ** 0.5)
    table = sweep.markdown_table(rows)
    assert table.splitlines()[2] == "| d 4-3-2, 1 epoch(s), timing | 60.0 ± 14.1 | 90.0 ± 0.0 |"
