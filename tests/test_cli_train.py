"""`gpusnn train` and `gpusnn evaluate` end to end on a small IDX directory of real digits."""
import json

import pytest

from gpusnn.cli import main
from helpers import write_idx_dir


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return write_idx_dir(tmp_path_factory.mktemp("mnist"), 400, 200)


def test_train_writes_json_and_evaluate_reads_the_checkpoint(idx_dir, tmp_path):
    out = tmp_path / "run"
    rc = main(["-q", "train", "--data", str(idx_dir), "--epochs", "2", "--hidden", "64", "--steps", "10",
               "--alpha", "1.3", "--lr", "0.01", "--out", str(out), "--json", str(tmp_path / "t.json")])
    assert rc == 0
    res = json.loads((tmp_path / "t.json").read_text())
    for key in ("test_accuracy", "train_accuracy", "test_loss", "train_loss", "epochs", "alpha", "backend", "seconds"):
        assert key in res
    assert res["epochs"] == 2 and res["alpha"] == 1.3 and res["backend"] == "numpy"
    assert res["widths"] == [784, 64, 10]
    assert len(res["history"]) == 2
    assert res["test_accuracy"] > 0.5          # 10 classes: chance is 0.1
    rc = main(["-q", "evaluate", str(out), "--json", str(tmp_path / "e.json")])
    assert rc == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["same_data_as_training"] is True
    assert ev["test_accuracy"] == pytest.approx(res["test_accuracy"])
    assert ev["test_loss"] == pytest.approx(res["test_loss"])


def train_with_toml(tmp_path, toml: str, *flags) -> dict:
    """Run `gpusnn train --config FILE *flags` and return its JSON results."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    rc = main(["-q", "train", "--config", str(cfg), *flags, "--out", str(tmp_path / "r"),
               "--json", str(tmp_path / "t.json")])
    assert rc == 0
    return json.loads((tmp_path / "t.json").read_text())


def test_toml_config_and_flags_combine(idx_dir, tmp_path):
    res = train_with_toml(tmp_path, '[network]\nhidden = [16, 8]\nn_steps = 6\n[optim]\nalpha = 0.9\nlr = 0.02\n'
                          '[train]\nepochs = 1\n', "--data", str(idx_dir), "--lr", "0.03")
    assert res["widths"] == [784, 16, 8, 10]
    assert res["config"]["network"]["n_steps"] == 6
    assert res["alpha"] == 0.9 and res["lr"] == 0.03   # the flag wins over the file


@pytest.mark.parametrize("flags, message", [
    (["--alpha", "2.0"], "--alpha must lie in the open interval (0, 2), got 2.0"),
    (["--alpha", "0"], "--alpha must lie in the open interval (0, 2), got 0.0"),
    (["--steps", "-4"], "--steps must be a positive integer, got -4"),
    (["--lr", "-1"], "--lr must be > 0"),
])
def test_bad_options_fail_with_a_clear_message(idx_dir, tmp_path, capsys, flags, message):
    rc = main(["train", "--data", str(idx_dir), "--out", str(tmp_path / "r"), *flags])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()   # nothing was created


@pytest.mark.parametrize("flags, toml, message", [
    (["--cuda-graph", "--backend", "emulated"], "", ("--cuda-graph needs --backend cuda (CUDA graphs are captured "
                                                     "by the CUDA driver), not --backend emulated")),
    (["--cuda-graph", "--backend", "numpy"], "", "--cuda-graph needs --backend cuda"),
    (["--backend", "auto"], "[train]\ncuda_graph = true\n", "not --backend auto (auto: numpy here)"),
    (["--backend", "numpy"], "[train]\ncuda_graph = true\n", "--cuda-graph needs --backend cuda"),
    (["--backend", "numpy"], "[train]\ncuda_graph = 1\n", "[train] cuda_graph must be true or false, got 1"),
])
def test_cuda_graph_is_refused_off_cuda_before_any_work(idx_dir, tmp_path, capsys, monkeypatch, flags, toml, message):
    """--cuda-graph (or [train] cuda_graph) on a backend other than cuda (here auto means
    numpy: no GPU in the tests) is an option error, exit 2, before the data is loaded."""
    from gpusnn import backends, workflow
    if "auto" in flags:
        monkeypatch.setattr(backends, "gpu_usable", lambda: False)

    def no_load(*args, **kwargs):
        raise AssertionError("data loaded before the options were checked")
    monkeypatch.setattr(workflow, "load_for", no_load)
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    rc = main(["train", "--data", str(idx_dir), "--config", str(cfg), "--out", str(tmp_path / "r"), *flags])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_no_cuda_graph_flag_trains_as_without_it(idx_dir, tmp_path):
    """--no-cuda-graph overrides a config file's cuda_graph = true (so the file's run trains on numpy)."""
    res = train_with_toml(tmp_path, "[train]\ncuda_graph = true\nepochs = 1\n[network]\nhidden = [8]\nn_steps = 4\n",
                          "--data", str(idx_dir), "--backend", "numpy", "--no-cuda-graph")
    assert res["config"]["train"]["cuda_graph"] is False and res["backend"] == "numpy"


def test_unknown_config_option_is_named(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[optim]\nalpah = 1.5\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert (f"--config {cfg}: unknown key 'alpah' in [optim]; the keys of [optim] are alpha, lr, eps, "
            "eps_inside, grad_at, factor_clip, w_max") in capsys.readouterr().err


def test_missing_checkpoint_is_reported(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing.h5")]) == 2
    assert "nothing.h5: no such checkpoint" in capsys.readouterr().err


def test_bounds_can_be_switched_off_from_flags_and_toml(idx_dir, tmp_path):
    res = train_with_toml(tmp_path, '[optim]\nw_max = "none"\n[network]\nhidden = [8]\nn_steps = 4\n[train]\nepochs = 1\n',
                          "--data", str(idx_dir), "--factor-clip", "none")
    optim = res["config"]["optim"]
    assert optim["factor_clip"] is None and optim["w_max"] is None


@pytest.mark.parametrize("level, progress, details", [([], True, False), (["-v"], True, True),
                                                      (["-q"], False, False), (["-q", "-v"], False, True)])
def test_verbosity_flags(idx_dir, tmp_path, caplog, level, progress, details):
    """Default: progress and per-epoch lines; -v adds every module's INFO (the epoch line among
    them, as an INFO of gpusnn.training under -q -v); -q drops the progress."""
    caplog.set_level(0)  # let the CLI's own levels decide
    assert main([*level, "train", "--data", str(idx_dir), "--epochs", "1", "--hidden", "8", "--steps", "4",
                 "--out", str(tmp_path / "r")]) == 0
    names = {(r.name, r.levelname) for r in caplog.records}
    messages = [r.getMessage() for r in caplog.records]
    assert (("data_tools.progress", "INFO") in names) == progress
    assert any(m.startswith("epoch 1: train loss") for m in messages) == (progress or details)
    assert any(m.startswith("saved ") and m.endswith("checkpoint-e1-s13.h5") for m in messages) == details
