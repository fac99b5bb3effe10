"""`gpusnn raster` and gpusnn.plots.raster: points per panel, names, formats, selection, errors.

The log is written two ways: with h5py straight from the documented schema (independent of
the writer) and with the real writer, gpusnn.io.spikelog.append.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from matplotlib.collections import PathCollection

from gpusnn import cli

from gpusnn.io import spikelog
from gpusnn.plots import PlotError, plot_raster
from gpusnn.plots.sources import read_sample

P, H, W = 2, 4, 4
WIDTHS = [P * H * W, 12, 3]
T = 25
CLASSES = ["clap", "wave", "roll"]
# rows of /entries: (sample_id, split 0 = train / 1 = test, epoch, label, prediction)
ENTRIES = [(5, 0, 1, 1, 1), (5, 1, 1, 1, 2), (5, 1, 2, 1, 2), (7, 1, 2, 0, 0)]


def make_events(rng) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(entry, step, neuron) int32 arrays for the input and each layer, sorted by entry, step."""
    out = []
    for width, n in zip(WIDTHS, (400, 120, 30)):
        entry = rng.integers(0, len(ENTRIES), n)
        step = rng.integers(1, T + 1, n)
        neuron = rng.integers(0, width, n)
        order = np.lexsort((step, entry))
        out.append(tuple(a[order].astype(np.int32) for a in (entry, step, neuron)))
    return out


def write_h5py(path, events) -> None:
    """A log in the documented schema, written without gpusnn.io.spikelog."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="gpusnn-spikelog", version=1, config=json.dumps({}), class_names=json.dumps(CLASSES),
                       n_steps=T, widths=np.array(WIDTHS), input_shape=np.array([P, H, W]))
        for i, name in enumerate(("sample_id", "split", "epoch", "label", "prediction")):
            f[f"entries/{name}"] = np.array([e[i] for e in ENTRIES], np.uint8 if name == "split" else np.int64)
        for group, ev in zip(["input", "layers/1", "layers/2"], events):
            for name, a in zip(("entry", "step", "neuron"), ev):
                f[f"{group}/{name}"] = a


def write_writer(path, events) -> None:
    """The same log through the real writer."""
    head = {"format": "gpusnn-spikelog", "version": 1, "config": "{}", "class_names": json.dumps(CLASSES),
            "n_steps": T, "widths": np.array(WIDTHS), "input_shape": np.array([P, H, W])}
    entries = {name: np.array([e[i] for e in ENTRIES])
               for i, name in enumerate(("sample_id", "split", "epoch", "label", "prediction"))}
    spikelog.append(path, head, entries, events)


def make_log(tmp_path, write=write_h5py):
    """(path, events) of a 4-entry DVS-shaped log."""
    events = make_events(np.random.default_rng(3))
    path = tmp_path / "spikes.h5"
    write(path, events)
    return path, events


@pytest.fixture
def log(tmp_path):
    return make_log(tmp_path)


@pytest.fixture(params=[write_h5py, write_writer], ids=["h5py", "writer"])
def any_log(request, tmp_path):
    return make_log(tmp_path, request.param)


def expected(events, layer: int, row: int, tr=(1, T)) -> tuple[np.ndarray, np.ndarray]:
    entry, step, neuron = events[layer]
    m = (entry == row) & (step >= tr[0]) & (step <= tr[1])
    return step[m], neuron[m]


def panels(fig) -> dict:
    """Panel axes by name ('input', 'hidden 1', 'output'), from their left titles."""
    return {ax.get_title(loc="left").split(":")[0]: ax for ax in fig.axes if ax.get_title(loc="left")}


def points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def raster(path, tr=None, **kw):
    s = read_sample(path, sample=kw.pop("sample", None), sample_id=kw.pop("sample_id", None))
    return plot_raster(s["spikes"], s["widths"], s["n_steps"], input_shape=s["input_shape"],
                       class_names=s["class_names"], label=s["label"], prediction=s["prediction"],
                       time_range=tr, **kw)


@pytest.mark.parametrize("tr", [None, (4, 17)])
@pytest.mark.parametrize("row", [1, 3])
def test_points_per_panel_equal_spikes_of_sample_and_range(any_log, row, tr):
    path, events = any_log
    ax = panels(raster(path, tr, sample=row))
    for layer, name in enumerate(("input", "hidden 1", "output")):
        step, neuron = expected(events, layer, row, tr or (1, T))
        assert points(ax[name]) == len(step) > 0
        drawn = np.concatenate([c.get_offsets() for c in ax[name].collections if isinstance(c, PathCollection)])
        assert sorted(map(tuple, drawn.astype(int))) == sorted(zip(step, neuron))
        assert ax[name].get_title(loc="left") == f"{name}: {len(step):,} spikes"
    assert ax["input"].get_xlim() == ((tr or (1, T))[0] - 0.5, (tr or (1, T))[1] + 0.5)


def test_input_polarity_in_two_colours(log):
    path, events = log
    ax = panels(raster(path, sample=2))["input"]
    _, ids = expected(events, 0, 2)
    by_label = {c.get_label(): c for c in ax.collections}
    assert len(by_label["ON"].get_offsets()) == int((ids // (H * W) == 1).sum())
    assert len(by_label["OFF"].get_offsets()) == int((ids // (H * W) == 0).sum())
    assert not np.allclose(by_label["ON"].get_edgecolor(), by_label["OFF"].get_edgecolor())


def test_axis_labels_titles_and_class_names(log):
    path, _ = log
    fig = raster(path, sample=1)
    ax = panels(fig)
    assert [ax[n].get_ylabel() for n in ("input", "hidden 1", "output")] == ["input id", "neuron", "class"]
    assert ax["output"].get_xlabel() == "time step"
    assert [t.get_text() for t in ax["output"].get_yticklabels()] == CLASSES
    assert fig.get_suptitle() == "label: wave    prediction: roll (wrong)"


def test_thinning_keeps_max_points_and_says_so(log):
    path, events = log
    ax = panels(raster(path, sample=0, max_points=10))
    n_input = len(expected(events, 0, 0)[0])
    assert points(ax["input"]) == 10
    assert [t.get_text() for t in ax["input"].texts] == [f"thinned: 10 of {n_input:,} spikes shown (--max-points)"]
    assert points(ax["output"]) == len(expected(events, 2, 0)[0]) <= 10 and not ax["output"].texts


def test_frames_sum_on_minus_off_per_pixel(log):
    path, events = log
    fig = raster(path, sample=3, n_frames=3)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 3
    _, ids = expected(events, 0, 3)
    want = np.zeros(H * W)
    np.add.at(want, ids % (H * W), np.where(ids // (H * W) == 1, 1, -1))
    np.testing.assert_array_equal(np.sum(images, axis=0).ravel(), want)


def test_frames_need_the_input_and_a_2d_sensor():
    spikes = {0: (np.array([1]), np.array([5])), 1: (np.array([2]), np.array([0]))}
    with pytest.raises(PlotError, match="frames need the input layer \\(0\\) and a 2-D input shape; got "
                                        "layers \\[0, 1\\] and input shape 1x1x32"):
        plot_raster(spikes, WIDTHS, T, input_shape=(1, 1, 32), n_frames=2)
    with pytest.raises(PlotError, match="got layers \\[1\\]"):
        plot_raster({1: spikes[1]}, WIDTHS, T, input_shape=(P, H, W), n_frames=2)


def run_cli(*argv):
    args = cli.build_parser().parse_args(["raster", *map(str, argv)])
    return args.func(args)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_cli_writes_each_format(log, tmp_path, fmt, magic):
    path, events = log
    out = tmp_path / f"fig.{fmt}"
    assert cli.main(["raster", str(path), "--sample", "2", "--frames", "2", "--out", str(out),
                     "--json", str(tmp_path / "r.json")]) == 0
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 1000
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["spikes"] == {n: len(expected(events, l, 2)[0]) for l, n in enumerate(("input", "hidden 1", "output"))}
    assert (res["entry"], res["sample_id"], res["split"], res["epoch"]) == (2, 5, "test", 2)


def test_cli_selects_by_sample_id_epoch_and_split(any_log, tmp_path):
    path, _ = any_log
    out = tmp_path / "f.png"
    assert run_cli(path, "--sample-id", "5", "--out", out)["entry"] == 2  # the last epoch
    assert run_cli(path, "--sample-id", "5", "--split", "train", "--out", out)["entry"] == 0
    res = run_cli(path, "--sample-id", "7", "--layers", "2", "--time-range", "3", "9", "--out", out)
    assert (res["entry"], list(res["spikes"]), res["time_range"]) == (3, ["output"], [3, 9])
    with pytest.raises(PlotError, match="logged 2 times at epoch 1 .*choose one with --split"):
        run_cli(path, "--sample-id", "5", "--epoch", "1", "--out", out)


@pytest.mark.parametrize("argv, message", [
    (["--layers", "0", "3"], "no layer 3 in the log; it holds layers 0 \\(input\\) to 2 \\(output\\)"),
    (["--sample", "4"], "no entry 4; the log holds entries 0..3"),
    (["--sample-id", "6"], "sample id 6 is not in the log"),
    (["--sample-id", "7", "--epoch", "1"], "sample id 7 is not logged at epoch 1"),
    (["--sample-id", "7", "--split", "train"], "sample id 7 is not logged in split 'train'"),
])
def test_missing_layer_or_sample_is_a_clear_error(log, tmp_path, argv, message):
    path, _ = log
    with pytest.raises(PlotError, match=f"^{path}: {message}"):
        run_cli(path, *argv, "--out", tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_missing_file_bad_range_and_bad_format_exit_2(log, tmp_path, capsys):
    path, _ = log
    assert cli.main(["raster", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "f.png")]) == 2
    assert "nope.h5: no such spike log" in capsys.readouterr().err
    assert cli.main(["raster", str(path), "--time-range", "9", "30", "--out", str(tmp_path / "f.png")]) == 2
    assert "time range 9..30 is not inside the window 1..25" in capsys.readouterr().err
    assert cli.main(["raster", str(path), "--out", str(tmp_path / "f.jpg")]) == 2
    assert "--out " + str(tmp_path / "f.jpg") + ": unknown format '.jpg'" in capsys.readouterr().err


def test_cli_reads_a_run_directory_and_says_what_it_wrote(log, tmp_path, capsys):
    path, events = log                       # tmp_path/spikes.h5, as gpusnn train --log-spikes names it
    out = tmp_path / "figs" / "f.png"
    assert cli.main(["raster", str(path.parent), "--sample", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes().startswith(b"\x89PNG")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert cli.main(["raster", str(empty), "--out", str(tmp_path / "g.png")]) == 2
    assert f"{empty}: a run directory without a spike log (spikes.h5 or spikes-eval.h5)" in capsys.readouterr().err


def test_frames_carry_a_colour_scale(log):
    path, _ = log
    fig = raster(path, sample=3, n_frames=3)
    bars = [ax for ax in fig.axes if ax.get_ylabel().startswith("ON - OFF events")]
    assert len(bars) == 1
    lo, hi = bars[0].get_ylim()
    frames = [ax.images[0] for ax in fig.axes if ax.images]
    assert (lo, hi) == frames[0].get_clim() == (-hi, hi) and hi >= 1
