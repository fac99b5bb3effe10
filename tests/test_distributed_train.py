"""`mpiexec -n P gpusnn train --distributed` end to end on a tiny IDX directory: the same
weights as one process, files written by rank 0 only, resume (also at another P)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from gpusnn.backends import get_backend
from gpusnn.cli import main
from gpusnn.io import checkpoint
from helpers import write_idx_dir
from test_distributed import rel_err, run_ranks

RUN = ["--epochs", "1", "--hidden", "16", "--steps", "10", "--batch-size", "8", "--alpha", "1.3",
       "--lr", "0.01", "--backend", "numpy"]


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return write_idx_dir(tmp_path_factory.mktemp("mnist"), 44, 20)  # 6 batches, the last one of 4


def gpusnn(*args) -> list[str]:
    return [sys.executable, "-m", "gpusnn", "-q", *args]


def weights(path) -> list[np.ndarray]:
    return checkpoint.read(path).train_state(get_backend("numpy")).weights


def files(d) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))


@pytest.fixture(scope="module")
def single(idx_dir, tmp_path_factory):
    """One process, two epochs, checkpoints every 2 steps (the reference of the tests below)."""
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["-q", "train", "--data", str(idx_dir), *RUN, "--epochs", "2", "--save-every", "2", "--keep", "20",
                 "--out", str(out), "--json", str(out.parent / "r.json")]) == 0
    return out


def test_two_ranks_train_like_one_process_and_only_rank_0_writes(idx_dir, single, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cmd = gpusnn("train", "--distributed", "--data", str(idx_dir), *RUN, "--save-every", "2", "--keep", "20",
                 "--out", "run", "--json", "r.json")
    # MPMD: rank 0 runs in a/, rank 1 in b/, so anything rank 1 wrote would show up in b/
    res = run_ranks(1, "-wdir", str(a), *cmd, ":", "-n", "1", "-wdir", str(b), *cmd, timeout=300)
    assert res.returncode == 0, res.stderr
    assert files(b) == []
    assert files(a / "run") == [f"checkpoint-e{e}-s{s}.h5" for e, s in ((0, 2), (0, 4), (0, 6), (1, 6))] + ["checkpoint.h5"]
    got = json.loads((a / "r.json").read_text())
    want = checkpoint.read(single / "checkpoint-e1-s6.h5")
    assert got["epochs"] == 1 and got["history"][0]["test_accuracy"] == want.history[0]["test_accuracy"]
    for W, V in zip(weights(a / "run" / "checkpoint.h5"), weights(single / "checkpoint-e1-s6.h5")):
        assert rel_err(W, V) < 1e-6


@pytest.mark.parametrize("P", [2, 3])
def test_resume_mid_epoch_on_P_ranks_continues_the_run(idx_dir, single, tmp_path, P):
    """Resume the one-process run's step-4 checkpoint on P ranks: the state does not depend on P."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.h5").write_bytes((single / "checkpoint-e0-s4.h5").read_bytes())
    res = run_ranks(P, *gpusnn("train", "--distributed", "--resume", str(run), "--epochs", "2"), timeout=300)
    assert res.returncode == 0, res.stderr
    final = checkpoint.read(run / "checkpoint.h5")
    assert final.train_state(get_backend("numpy")).optim.step == 12
    for W, V in zip(weights(run / "checkpoint.h5"), weights(single / "checkpoint.h5")):
        assert rel_err(W, V) < 1e-6
    ref = json.loads((single.parent / "r.json").read_text())
    assert [h["test_accuracy"] for h in final.history] == [h["test_accuracy"] for h in ref["history"]]


def test_a_bad_option_on_every_rank_exits_2_with_the_message(idx_dir, tmp_path):
    res = run_ranks(2, *gpusnn("train", "--distributed", "--data", str(idx_dir), *RUN, "--comm-timeout", "0",
                               "--out", str(tmp_path / "run")), timeout=120)
    assert res.returncode == 2 and "--comm-timeout must be > 0" in res.stderr
