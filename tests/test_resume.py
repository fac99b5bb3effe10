"""Resume exactness: stopping and resuming gives the same weights as training straight through."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from gpusnn.io import checkpoint

from gpusnn.io import spikelog
from gpusnn.cli import build_parser, main
from gpusnn.errors import CheckpointError, ConfigError

RUN = ["--hidden", "12", "--steps", "6", "--batch-size", "32", "--lr", "0.02", "--seed", "3"]


def write_tiny_idx(root, n_train: int = 160, n_test: int = 40, seed: int = 0):
    """An MNIST IDX directory of random sparse 28x28 'digits' whose class sets one bright row."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        X = (rng.random((n, 28, 28)) < 0.05).astype(np.uint8) * 200
        X[np.arange(n), 2 + 2 * y] = 255
        for kind, arr, magic in (("images-idx3", X, 0x803), ("labels-idx1", y, 0x801)):
            head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
            with gzip.open(root / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
                f.write(head + arr.tobytes())
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_idx(tmp_path_factory.mktemp("tiny"))


def train(*argv) -> None:
    assert main(["-q", "train", *map(str, argv)]) == 0


def command(*argv) -> dict:
    """Run a gpusnn command in-process, letting its errors propagate; returns its results."""
    args = build_parser().parse_args(list(map(str, argv)))
    args.progress = False
    return args.func(args)


def assert_same_run(a, b):
    """Weights, fractional memory, step and train/test metrics equal bit for bit."""
    for x, y in zip(a.weights + a.W_prev, b.weights + b.W_prev, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (a.epoch, a.step) == (b.epoch, b.step)
    for ha, hb in zip(a.history, b.history, strict=True):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "spikes_per_sample"):
            assert ha[key] == hb[key], key


@pytest.fixture(scope="module")
def straight(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train("--data", tiny, *RUN, "--epochs", 2, "--out", out, "--log-spikes", 3)
    return out


def test_stop_after_one_epoch_and_resume_equals_two_straight_epochs(tiny, straight, tmp_path):
    train("--data", tiny, *RUN, "--epochs", 1, "--out", tmp_path, "--log-spikes", 3)
    assert checkpoint.read(tmp_path / "checkpoint.h5").epoch == 1
    train("--resume", tmp_path, "--epochs", 2, "--log-spikes", 3)
    a, b = checkpoint.read(straight / "checkpoint.h5"), checkpoint.read(tmp_path / "checkpoint.h5")
    assert a.step == 10  # 160 samples / 32 per batch * 2 epochs
    assert_same_run(a, b)
    with spikelog.open_log(straight / "spikes.h5") as la, spikelog.open_log(tmp_path / "spikes.h5") as lb:
        assert lb.entries["epoch"].tolist() == [1, 1, 1, 2, 2, 2]
        for k in spikelog.ENTRY_FIELDS:
            np.testing.assert_array_equal(la.entries[k], lb.entries[k])
        for layer in range(la.n_layers + 1):
            for x, y in zip(la.events(layer), lb.events(layer)):
                np.testing.assert_array_equal(x, y)


def test_resume_from_a_mid_epoch_checkpoint(tiny, straight, tmp_path):
    run = tmp_path / "run"
    train("--data", tiny, *RUN, "--epochs", 1, "--out", run, "--save-every", 2, "--keep", 10)
    mid = run / "checkpoint-e0-s2.h5"
    ck = checkpoint.read(mid)
    assert (ck.epoch, ck.step, ck.progress.batches_done, ck.progress.seen) == (0, 2, 2, 64)
    assert [p.name for p in checkpoint.numbered(run)] == ["checkpoint-e0-s2.h5", "checkpoint-e0-s4.h5",
                                                        "checkpoint-e1-s5.h5"]
    out = tmp_path / "resumed"
    train("--resume", mid, "--epochs", 2, "--out", out)
    assert_same_run(checkpoint.read(straight / "checkpoint.h5"), checkpoint.read(out / "checkpoint.h5"))


def test_resume_refuses_run_options_and_changed_data(tiny, straight, tmp_path):
    with pytest.raises(ConfigError, match=r"--seed, --lr: these come from the checkpoint"):
        command("train", "--resume", straight, "--epochs", 3, "--seed", 1, "--lr", 0.1)
    changed = write_tiny_idx(tmp_path / "changed", seed=1)
    run = tmp_path / "run"
    train("--data", changed, *RUN, "--epochs", 1, "--out", run)
    write_tiny_idx(changed, seed=2)  # the files change under the run
    with pytest.raises(CheckpointError, match=r"identity .* cannot be found unchanged"):
        command("train", "--resume", run, "--epochs", 2)


def test_resume_at_the_target_epoch_changes_nothing(straight, tmp_path):
    before = checkpoint.read(straight / "checkpoint.h5")
    train("--resume", straight / "checkpoint.h5", "--epochs", 2, "--out", tmp_path)
    assert not list(tmp_path.glob("checkpoint*.h5"))
    assert checkpoint.read(straight / "checkpoint.h5").step == before.step


@pytest.mark.parametrize("backend", ["emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_resume_on_the_kernel_backends(tiny, tmp_path, backend):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train("--data", tiny, *RUN, "--backend", backend, "--epochs", 2, "--out", straight)
    train("--data", tiny, *RUN, "--backend", backend, "--epochs", 1, "--out", split, "--save-every", 3)
    train("--resume", split / "checkpoint-e0-s3.h5", "--epochs", 2, "--out", split)
    a, b = checkpoint.read(straight / "checkpoint.h5"), checkpoint.read(split / "checkpoint.h5")
    assert (a.epoch, a.step) == (b.epoch, b.step) == (2, 10)
    for x, y in zip(a.weights + a.W_prev, b.weights + b.W_prev, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert b.config.train.backend == backend


def test_a_run_resumes_with_or_without_cuda_graph(tiny, tmp_path, monkeypatch):
    """--cuda-graph gives train_batch's results, so it is a resume change like --backend: a run
    trained with it (here on emulated through the graph's staging, graph.StaticStep, standing in
    for the cuda graph: the option check is lifted for that part) resumes with --no-cuda-graph
    and ends equal to a straight run without it; resuming it on emulated without that flag is
    refused naming --cuda-graph, and --cuda-graph on a saved run without it is checked, not
    refused as a checkpoint option."""
    from gpusnn import training, workflow
    from gpusnn.backends.gpu.graph import StaticStep
    straight, split = tmp_path / "straight", tmp_path / "split"
    train("--data", tiny, *RUN, "--backend", "emulated", "--epochs", 2, "--out", straight)
    with monkeypatch.context() as m:
        m.setattr(workflow, "check_cuda_graph", lambda *args: None)
        m.setattr(training, "graph_step", StaticStep)
        train("--data", tiny, *RUN, "--backend", "emulated", "--cuda-graph", "--epochs", 1, "--out", split,
              "--save-every", 3)
    mid = split / "checkpoint-e0-s3.h5"
    assert checkpoint.read(mid).config.train.cuda_graph is True
    with pytest.raises(ConfigError, match=r"cuda_graph needs --backend cuda .* --no-cuda-graph"):
        command("train", "--resume", mid, "--epochs", 2, "--out", split)
    train("--resume", mid, "--epochs", 2, "--out", split, "--no-cuda-graph")
    a, b = checkpoint.read(straight / "checkpoint.h5"), checkpoint.read(split / "checkpoint.h5")
    assert b.config.train.cuda_graph is False and (a.epoch, a.step) == (b.epoch, b.step) == (2, 10)
    for x, y in zip(a.weights + a.W_prev, b.weights + b.W_prev, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ConfigError, match=r"cuda_graph needs --backend cuda"):
        command("train", "--resume", straight, "--epochs", 3, "--cuda-graph")
