"""Every bad input and output path of every command: exit status 2, a message naming the flag
or file and the problem, no traceback, and no work done (no run directory left behind).
Runs never mix; commands say what they did. (Issue 13's cases, one by one.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpusnn.backends import gpu_problem, gpu_usable
from gpusnn.cli import main
from gpusnn.io import checkpoint
from test_resume import RUN, write_tiny_idx

ROOT = Path(__file__).resolve().parents[1]


def fails(capsys, *argv, expect=()) -> str:
    """Run gpusnn in-process; assert exit status 2, each expected text in stderr and no
    traceback anywhere. Returns stderr."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    out = capsys.readouterr()
    assert rc == 2, out
    assert "Traceback" not in out.out + out.err
    for text in expect:
        assert text in out.err, (text, out.err)
    return out.err


def ok(capsys, *argv) -> str:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_idx(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    """A finished 2-epoch run with a spike log (read only by the tests)."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["-q", "train", "--data", str(tiny), *RUN, "--epochs", "2", "--out", str(out),
                 "--log-spikes", "2"]) == 0
    return out


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "plain.txt"
    f.write_text("not a directory")
    return f


def truncated_copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.unlink(missing_ok=True)      # checkpoint.h5 is a hard link: never write through it
    dst.write_bytes(data[:len(data) // 2])
    return dst


# --------------------------------------------------------------------------- output paths

@pytest.mark.parametrize("where", ["file", "/sys", "/proc"])
def test_train_out_that_cannot_be_created(tiny, a_file, capsys, where):
    out = a_file / "run" if where == "file" else Path(where) / "gpusnn-run"
    err = fails(capsys, "train", "--data", tiny, *RUN, "--epochs", 1, "--out", out, expect=[f"--out {out}: "])
    assert ("is a file" in err) if where == "file" else ("cannot write in" in err)


def test_json_under_a_file_fails_before_training(tiny, a_file, tmp_path, capsys):
    out = tmp_path / "run"
    fails(capsys, "train", "--data", tiny, *RUN, "--out", out, "--json", a_file / "r.json",
          expect=[f"--json {a_file / 'r.json'}: cannot be created, {a_file} is a file"])
    assert not out.exists()


@pytest.mark.parametrize("argv, flag", [
    (["raster", "RUN/spikes.h5", "--out", "F/r.png"], "--out"),
    (["plot", "training", "RUN", "--out", "F/c.png"], "--out"),
    (["evaluate", "RUN", "--log-spikes", "2", "--log", "F/e.h5"], "--log"),
    (["inspect", "RUN", "--json", "F/i.json"], "--json"),
    (["sweep", "--data", "TINY", "--alphas", "1.0", "--out", "F/sweep"], "--out"),
    (["sweep", "--data", "TINY", "--alphas", "1.0", "--out", "OUT", "--figure", "F/s.png"], "--figure"),
    (["data", "synth", "F/gestures", "--small"], "DIR"),
    (["data", "convert", "TINY", "F/store.h5"], "DST"),
])
def test_every_output_path_is_checked_before_work(run, tiny, a_file, tmp_path, capsys, argv, flag):
    sub = {"RUN": str(run), "F": str(a_file), "TINY": str(tiny), "OUT": str(tmp_path / "out")}
    argv = [a.replace(a.split("/")[0], sub[a.split("/")[0]], 1) if a.split("/")[0] in sub else a for a in argv]
    fails(capsys, *argv, expect=[f"{flag} {a_file}/", f"cannot be created, {a_file} is a file"])
    assert not (tmp_path / "out").exists()


def test_image_formats_are_checked_before_reading(run, tmp_path, capsys):
    fails(capsys, "plot", "training", run, "--out", tmp_path / "c.jpg",
          expect=[f"--out {tmp_path / 'c.jpg'}: unknown format '.jpg'; use one of .png, .svg, .pdf"])


# --------------------------------------------------------------------------- input files

def test_data_inspect_of_a_missing_file_a_directory_an_empty_file_and_random_bytes(tmp_path, capsys):
    fails(capsys, "data", "inspect", tmp_path / "none.aedat", expect=[f"FILE {tmp_path / 'none.aedat'}: no such file"])
    fails(capsys, "data", "inspect", tmp_path, expect=[f"FILE {tmp_path}: a directory, but not a dataset"])
    empty = tmp_path / "empty.aedat"
    empty.write_bytes(b"")
    fails(capsys, "data", "inspect", empty, expect=[f"{empty}: byte offset 0: empty file"])
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(13).integers(0, 256, 4096, dtype=np.uint8).tobytes().replace(b"#", b"x"))
    fails(capsys, "data", "inspect", noise, expect=[f"{noise}: byte offset 0: no recognised header", "--format"])


def test_inspect_evaluate_and_resume_of_a_truncated_checkpoint(run, tmp_path, capsys):
    bad = truncated_copy(run / "checkpoint.h5", tmp_path / "cut.h5")
    for argv in (["inspect", bad], ["evaluate", bad], ["train", "--resume", bad, "--epochs", 3]):
        fails(capsys, *argv, expect=[f"{bad}: not a ", "not a readable HDF5 file"])


def test_missing_config_file(tmp_path, capsys):
    fails(capsys, "train", "--config", tmp_path / "none.toml",
          expect=[f"--config {tmp_path / 'none.toml'}: cannot read the config file: No such file or directory"])


@pytest.mark.parametrize("data, problem", [
    ("TMP/none", "does not exist"), ("mnist", "does not exist"), ("TMP", "a directory, but not a dataset"),
    ("TMP/notes.txt", "a file, but not an HDF5 event store")])
def test_data_that_is_no_dataset_says_why_and_lists_the_sources(tmp_path, capsys, data, problem):
    (tmp_path / "notes.txt").write_text("hello")
    data = data.replace("TMP", str(tmp_path))
    for command in (["train", "--out", tmp_path / "run"], ["profile"], ["sweep", "--out", tmp_path / "sweep"]):
        fails(capsys, *command, "--data", data,
              expect=[f"--data {data}: {problem}", "'mnist5k'", "an MNIST IDX directory", "'synth-gestures'",
                      "a DVS128 Gesture directory", "an HDF5 event store"])
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


# --------------------------------------------------------------------------- options

@pytest.mark.parametrize("flags, message", [
    (["--hidden", "0"], "argument --hidden: must be a positive integer, got 0"),
    (["--hidden"], "argument --hidden: expected at least one argument"),
    (["--batch-size", "0"], "--batch-size must be > 0, got 0"),
    (["--epochs", "-1"], "--epochs must be >= 0, got -1"),
    (["--downsample", "0"], "--downsample must be a positive integer, got 0"),
    (["--factor-clip", "-1"], '--factor-clip must be > 0 or "none", got -1.0'),
    (["--keep", "0"], "argument --keep: must be a positive integer, got 0"),
    (["--save-every", "-2"], "argument --save-every: must be >= 0, got -2"),
    (["--log-spikes", "x"], "--log-spikes takes a count N or comma-separated sample ids, got 'x'"),
])
def test_bad_flags_are_named_in_flag_spelling(tiny, tmp_path, capsys, flags, message):
    fails(capsys, "train", "--data", tiny, "--out", tmp_path / "run", *flags, expect=[message])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("toml, message", [
    ('[optim]\nalpha = "fast"\n', "[optim] alpha must be a number, got 'fast' (the flag --alpha)"),
    ("[network]\nhidden = 200\n", "[network] hidden must be a list of integers, got 200 (the flag --hidden)"),
    ("[network]\nhidden = [0]\n", "[network] hidden takes positive integers, got [0] (the flag --hidden)"),
    ('[train]\nepochs = "3"\n', "[train] epochs must be an integer, got '3' (the flag --epochs)"),
    ("[optim]\neps_inside = 1\n", "[optim] eps_inside must be true or false, got 1 (the flag --eps-inside)"),
    ("[train]\nbatch_size = 0\n", "--batch-size must be > 0, got 0"),
    ("[network]\nhiden = [10]\n", "unknown key 'hiden' in [network]; the keys of [network] are hidden, theta, "
                                  "n_steps, init_scale"),
    ("[network]\nwidths = [784, 10]\n", "unknown key 'widths' in [network]; the network's input and output "
                                        "widths come from the data, give the hidden widths as hidden = [500]"),
    ("[trian]\nepochs = 1\n", "unknown section [trian]; the sections are [network], [method], [optim], [train]"),
])
def test_toml_values_are_typed_and_named_with_file_key_and_flag(tiny, tmp_path, capsys, toml, message):
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    fails(capsys, "train", "--config", cfg, "--data", tiny, "--out", tmp_path / "run", expect=[message])
    assert not (tmp_path / "run").exists()   # the config fails before the data is loaded


def test_toml_keys_of_the_hint_all_work(tiny, tmp_path, capsys):
    """The hint's keys are exactly what a config file may hold: each of them trains."""
    cfg = tmp_path / "run.toml"
    cfg.write_text("[network]\nhidden = [8, 6]\ntheta = 1.0\nn_steps = 5\ninit_scale = 0.9\n"
                   "[train]\nepochs = 1\nbatch_size = 40\nseed = 2\n")
    ok(capsys, "-q", "train", "--config", cfg, "--data", tiny, "--out", tmp_path / "run", "--json", tmp_path / "r.json")
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["widths"] == [784, 8, 6, 10]
    assert res["config"]["network"]["init_scale"] == 0.9 and res["config"]["train"]["batch_size"] == 40


@pytest.mark.skipif(gpu_usable(), reason="a GPU is usable here")
def test_cuda_backend_without_a_gpu(tiny, tmp_path, run, capsys):
    for argv in (["train", "--data", tiny, *RUN, "--out", tmp_path / "run"], ["evaluate", run],
                 ["profile", "--hidden", "4"]):
        fails(capsys, *argv, "--backend", "cuda", expect=["--backend cuda cannot run here: ", gpu_problem() or ""])
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- runs never mix

def test_training_into_an_existing_run_is_refused_and_overwrite_clears_it(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    ok(capsys, "-q", "train", "--data", tiny, *RUN, "--epochs", 3, "--out", out, "--log-spikes", 2, "--keep", 5)
    before = sorted(p.name for p in out.iterdir())
    err = fails(capsys, "train", "--data", tiny, *RUN, "--epochs", 1, "--out", out,
                expect=[f"--out {out} already holds a run", f"--resume {out}", "a new --out", "--overwrite"])
    assert "checkpoint.h5" in err
    assert sorted(p.name for p in out.iterdir()) == before and checkpoint.read(out / "checkpoint.h5").epoch == 3
    (out / "results.json").write_text("{}")  # the --json file of the old run, as scripts/main_job.sh writes it
    ok(capsys, "-q", "train", "--data", tiny, *RUN, "--epochs", 1, "--out", out, "--overwrite",
       "--json", out / "results.json")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-e1-s5.h5", "checkpoint.h5", "results.json"]
    assert checkpoint.read(out / "checkpoint.h5").epoch == 1
    assert json.loads((out / "results.json").read_text())["epochs"] == 1


def test_resume_to_fewer_epochs_says_so(run, capsys):
    fails(capsys, "train", "--resume", run, "--epochs", 1,
          expect=["--epochs 1 is fewer than the 2 epochs", "give --epochs > 2 to continue it"])


def test_resume_into_a_directory_of_another_run_is_refused(run, tiny, tmp_path, capsys):
    other = tmp_path / "other"
    ok(capsys, "-q", "train", "--data", tiny, *RUN, "--epochs", 1, "--out", other)
    fails(capsys, "train", "--resume", run, "--epochs", 3, "--out", other, expect=[f"--out {other} already holds a run"])


def test_fallback_to_an_older_checkpoint_warns(tiny, tmp_path, capsys, caplog):
    out = tmp_path / "run"
    ok(capsys, "-q", "train", "--data", tiny, *RUN, "--epochs", 2, "--out", out)
    truncated_copy(out / "checkpoint-e2-s10.h5", out / "checkpoint-e2-s10.h5")
    truncated_copy(out / "checkpoint-e2-s10.h5", out / "checkpoint.h5")
    ok(capsys, "evaluate", out)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2 and all("using checkpoint-e1-s5.h5 instead" in w for w in warned)
    assert {"checkpoint.h5", "checkpoint-e2-s10.h5"} == {w.split(": ")[1].rsplit("/", 1)[-1] for w in warned}


# --------------------------------------------------------------------------- commands say what they did

def test_evaluate_prints_accuracy_and_loss(run, capsys):
    last = checkpoint.read(run / "checkpoint.h5").history[-1]
    text = ok(capsys, "evaluate", run)
    assert f"test accuracy {100 * last['test_accuracy']:.1f} % ({round(40 * last['test_accuracy'])}/40)" in text
    assert f"test loss {last['test_loss']:.4f} (ce)" in text


def test_train_reports_training_and_data_seconds_apart(tiny, tmp_path, capsys):
    ok(capsys, "-q", "train", "--data", tiny, *RUN, "--epochs", 1, "--out", tmp_path / "run", "--json", tmp_path / "r.json")
    res = json.loads((tmp_path / "r.json").read_text())
    h = res["history"][0]
    assert res["seconds"] >= h["seconds"] + h["eval_seconds"] and res["data_seconds"] > 0


# --------------------------------------------------------------------------- a real process

@pytest.mark.parametrize("argv", [["inspect", "CUT"], ["train", "--data", "TINY", "--out", "/proc/gpusnn-run"],
                                  ["data", "inspect", "TMP"]])
def test_real_process_exits_2_without_a_traceback(run, tiny, tmp_path, argv):
    cut = truncated_copy(run / "checkpoint.h5", tmp_path / "cut.h5")
    argv = [{"CUT": str(cut), "TINY": str(tiny), "TMP": str(tmp_path)}.get(a, a) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "gpusnn", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout
    assert p.stderr.startswith("gpusnn: error: ") and p.stderr.count("\n") == 1
