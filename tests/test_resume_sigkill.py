"""Crash safety: a training run SIGKILLed at random moments, also in the middle of a save,
always leaves a newest checkpoint that opens and resumes to the same weights as a run that
was never interrupted; a partial file is never taken for a checkpoint."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gpusnn.io import checkpoint
from gpusnn.errors import CheckpointError
from test_resume import RUN, assert_same_run, command, write_tiny_idx

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4
# Runs gpusnn in a child that SIGKILLs itself inside its n-th os.fsync call, i.e. at a chosen
# point of a save (temporary file written but not renamed, renamed but directory not synced, ...).
KILL_IN_FSYNC = """
import os, signal, sys
from gpusnn.cli import main
n, calls, real = int(sys.argv[1]), [0], os.fsync
def fsync(fd):
    calls[0] += 1
    if calls[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
    real(fd)
os.fsync = fsync
sys.exit(main(sys.argv[2:]))
"""


def start(argv: list, fsync_kill: int = 0) -> subprocess.Popen:
    code = KILL_IN_FSYNC if fsync_kill else "import sys; from gpusnn.cli import main; sys.exit(main(sys.argv[2:]))"
    return subprocess.Popen([sys.executable, "-c", code, str(fsync_kill), "-q", "train", *map(str, argv)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def latest_id(run: Path):
    try:
        st = (run / "checkpoint.h5").stat()
        return st.st_ino, st.st_mtime_ns
    except FileNotFoundError:
        return None


def kill_after_next_save(proc: subprocess.Popen, run: Path, rng: np.random.Generator) -> None:
    """Wait until the child publishes a new checkpoint, then SIGKILL it a random 0-20 ms later."""
    before = latest_id(run)
    deadline = time.monotonic() + 30
    while latest_id(run) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.02))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def assert_every_checkpoint_name_reads(run: Path) -> None:
    names = [p for p in run.iterdir() if p.name.endswith(".h5") and not p.name.startswith(".")]
    for p in names:
        if p.name != "spikes.h5":
            checkpoint.read(p)  # raises on any partial or corrupt file
    assert checkpoint.read(checkpoint.resolve(run)).step >= 1


def test_sigkill_at_random_moments_then_resume_is_exact(tmp_path):
    rng = np.random.default_rng(int(time.time()))
    data = write_tiny_idx(tmp_path / "data")
    ref = tmp_path / "straight"
    command("train", "--data", data, *RUN, "--epochs", EPOCHS, "--out", ref)
    run = tmp_path / "killed"
    first = ["--data", data, *RUN, "--epochs", EPOCHS, "--out", run, "--save-every", 1, "--keep", 2]
    resume = ["--resume", run, "--epochs", EPOCHS, "--save-every", 1, "--keep", 2]
    # killed at random moments after a save, and inside a save at each of its three fsyncs:
    # temporary file written (not renamed), renamed (directory not synced), linked as latest
    # (the first run is killed after its first save, so that there is a run to resume)
    later = [(0, "random"), (1, "fsync"), (2, "fsync"), (3, "fsync")]
    plans = [(0, "random")] + [later[i] for i in rng.permutation(len(later))]
    torn = 0
    for i, (n, how) in enumerate(plans):
        argv = first if i == 0 else resume
        proc = start(argv, fsync_kill=n)
        if how == "random":
            kill_after_next_save(proc, run, rng)
        else:
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        torn += any(p.name.startswith(".") for p in run.iterdir())
        assert_every_checkpoint_name_reads(run)
    assert torn >= 1, "no kill landed inside a save"
    assert checkpoint.read(checkpoint.resolve(run)).step < EPOCHS * 5
    command("train", *resume)
    assert not any(p.name.startswith(".") for p in run.iterdir()), "stale temporary files were not removed"
    assert_same_run(checkpoint.read(ref / "checkpoint.h5"), checkpoint.read(run / "checkpoint.h5"))


def test_kill_inside_the_very_first_save_leaves_no_checkpoint(tmp_path):
    data = write_tiny_idx(tmp_path / "data", n_train=40, n_test=8)
    run = tmp_path / "run"
    proc = start(["--data", data, *RUN, "--epochs", 1, "--out", run, "--save-every", 1], fsync_kill=1)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in run.iterdir()] == [".checkpoint-e0-s1.h5.tmp%d" % proc.pid]
    with pytest.raises(CheckpointError, match=r"no checkpoint in this run directory"):
        checkpoint.resolve(run)
