"""`gpusnn plot training|sweep` and gpusnn.plots.curves: drawn values, names, formats, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gpusnn import cli, training

from gpusnn.io import checkpoint
from gpusnn.backends import get_backend
from gpusnn.config import NetworkConfig, RunConfig
from gpusnn.plots import PlotError, plot_sweep, plot_training

HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.2 / e, "train_accuracy": 0.5 + 0.1 * e,
            "test_accuracy": 0.45 + 0.1 * e, "seconds": 1.0, "eval_seconds": 0.1, "spikes_per_sample": [3.0, 1.0]}
           for e in (1, 2, 3)]


def cell(widths, alpha, seed, acc, status="done", epochs=1):
    return {"data": "mnist5k", "widths": widths, "alpha": alpha, "seed": seed, "epochs": epochs, "lr": 0.005,
            "gradient": "timing", "test_accuracy": acc, "status": status}


ONE, TWO = [784, 500, 10], [784, 500, 200, 10]
CELLS = ([cell(ONE, a, s, 0.8 + 0.05 * a + 0.01 * s) for a in (1.9, 1.0, 1.5) for s in (0, 1, 2)]
         + [cell(TWO, a, 0, 0.7 + 0.1 * a) for a in (1.0, 1.5)]
         + [cell(TWO, 1.9, 0, None, status="failed")])


def lines(ax) -> dict:
    return {l.get_label(): l for l in ax.get_lines() if not l.get_label().startswith("_")}


def test_training_panels_draw_every_epoch_of_train_and_test():
    fig = plot_training(HISTORY, title="run A")
    loss, acc = fig.axes
    assert (loss.get_title(), acc.get_title(), fig.get_suptitle()) == ("Loss", "Accuracy", "run A")
    assert (loss.get_xlabel(), loss.get_ylabel(), acc.get_xlabel(), acc.get_ylabel()) == \
        ("epoch", "loss", "epoch", "accuracy")
    for ax, metric in ((loss, "loss"), (acc, "accuracy")):
        drawn = lines(ax)
        assert sorted(drawn) == ["test (after the epoch)", "train (running mean over the epoch)"]
        for label, line in drawn.items():
            split = label.split()[0]
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
            np.testing.assert_allclose(line.get_ydata(), [h[f"{split}_{metric}"] for h in HISTORY])


@pytest.mark.parametrize("loss, name", [("ce", "softmax cross-entropy"), ("mse", "mean squared error of the rates")])
def test_training_loss_panel_names_the_loss(loss, name):
    assert plot_training(HISTORY, loss=loss).axes[0].get_title() == f"Loss ({name}, mean per sample)"


def test_training_skips_epochs_without_a_value():
    history = [dict(HISTORY[0], test_loss=None), HISTORY[1]]
    drawn = lines(plot_training(history).axes[0])
    np.testing.assert_array_equal(drawn["test (after the epoch)"].get_xdata(), [2])
    np.testing.assert_array_equal(drawn["train (running mean over the epoch)"].get_xdata(), [1, 2])


def test_sweep_one_line_per_structure_mean_and_std_over_seeds():
    ax = plot_sweep(CELLS).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("fractional order alpha", "test accuracy")
    assert ax.get_title() == "Test accuracy vs alpha (mnist5k, 1 epoch, timing gradient)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["784-500-10, mean of 3 seeds", "784-500-200-10, 1 seed"]
    assert ax.get_legend().get_title().get_text() == "error bars: std over seeds"
    one, two = ax.containers  # ErrorbarContainer per group, in legend order
    x, y = one.lines[0].get_data()
    np.testing.assert_allclose(np.asarray(x, float), [1.0, 1.5, 1.9])
    np.testing.assert_allclose(y, [0.8 + 0.05 * a + 0.01 for a in (1.0, 1.5, 1.9)])
    bars = one.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in bars], 2 * np.std([0, 0.01, 0.02], ddof=1))
    assert not two.has_yerr  # one seed: no error bars; the failed cell is left out
    np.testing.assert_allclose(np.asarray(two.lines[0].get_data()[0], float), [1.0, 1.5])


def test_sweep_labels_name_what_differs():
    cells = [cell(ONE, 1.0, 0, 0.8, epochs=1), cell(ONE, 1.0, 0, 0.9, epochs=5)]
    ax = plot_sweep(cells).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1 epoch, 1 seed", "5 epochs, 1 seed"]
    assert ax.get_title() == "Test accuracy vs alpha (mnist5k, 784-500-10, timing gradient)"
    assert ax.get_legend().get_title().get_text() == ""   # no error bars to explain


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with a checkpoint holding HISTORY, and the matching train --json."""
    d = tmp_path_factory.mktemp("run")
    cfg = RunConfig(network=NetworkConfig(widths=(6, 4, 3), n_steps=5))
    backend = get_backend("numpy")
    state = training.new_state(cfg, backend)
    state.history, state.epoch = [dict(h) for h in HISTORY], 3
    checkpoint.save(d / "checkpoint.h5", cfg, state, backend, data_name="toy")
    (d / "train.json").write_text(json.dumps({"data": "toy", "widths": [6, 4, 3], "alpha": 1.0, "lr": 0.005,
                                              "history": HISTORY}))
    return d


@pytest.mark.parametrize("source", ["", "checkpoint.h5", "train.json"])
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_training_cli_from_run_checkpoint_or_json(run_dir, tmp_path, source, fmt, magic):
    out = tmp_path / f"t.{fmt}"
    assert cli.main(["plot", "training", str(run_dir / source), "--out", str(out),
                     "--json", str(tmp_path / "r.json")]) == 0
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 1000
    assert json.loads((tmp_path / "r.json").read_text())["epochs"] == 3


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_sweep_cli_writes_each_format(tmp_path, fmt, magic):
    res = tmp_path / "sweep.json"
    res.write_text(json.dumps({"format": "gpusnn-sweep", "version": 1, "cells": CELLS}))
    out = tmp_path / f"s.{fmt}"
    assert cli.main(["plot", "sweep", str(res), "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 1000
    assert json.loads((tmp_path / "r.json").read_text())["cells_drawn"] == len(CELLS) - 1


@pytest.mark.parametrize("kind, doc, message", [
    ("sweep", {"format": "other"}, "not a gpusnn sweep results file \\(format 'other'"),
    ("sweep", {"format": "gpusnn-sweep", "cells": [cell(ONE, 1.0, 0, None, "failed")]},
     "no finished sweep cell with a test accuracy to plot"),
    ("training", {"test_accuracy": 0.9}, "no 'history' list; expected the JSON written by gpusnn train --json"),
    ("training", {"history": []}, "the run has no completed epoch to plot"),
])
def test_unusable_input_is_a_clear_error(tmp_path, capsys, kind, doc, message):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    args = cli.build_parser().parse_args(["plot", kind, str(src), "--out", str(tmp_path / "f.png")])
    with pytest.raises(PlotError, match=message):
        args.func(args)
    assert cli.main(["plot", kind, str(tmp_path / "none.json"), "--out", str(tmp_path / "f.png")]) == 2
    assert "none.json: not a readable JSON file" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


def test_plot_sweep_reads_a_sweep_directory_and_says_what_it_wrote(tmp_path, capsys):
    (tmp_path / "sweep.json").write_text(json.dumps({"format": "gpusnn-sweep", "version": 1, "cells": CELLS}))
    out = tmp_path / "s.png"
    assert cli.main(["plot", "sweep", str(tmp_path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes().startswith(b"\x89PNG")
    assert cli.main(["plot", "sweep", str(tmp_path / "s.png"), "--out", str(out)]) == 2
    assert cli.main(["plot", "sweep", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["plot", "sweep", str(empty), "--out", str(out)]) == 2
    assert f"{empty}: a directory without sweep.json" in capsys.readouterr().err
