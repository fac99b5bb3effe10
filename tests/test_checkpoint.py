"""Checkpoint files: round trip of every field, the run directory layout, bad files, full disk."""
from __future__ import annotations

import errno
import json
import os
import subprocess

import h5py
import numpy as np
import pytest

from gpusnn import training

from gpusnn.io import checkpoint
from gpusnn.backends import get_backend
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import RunConfig
from gpusnn.errors import CheckpointError
from data_tools.mnist import encode_images, rate_code
from gpusnn.optimizer import OptimState

NP = NumpyBackend()


def make_state(widths=(6, 5, 3), seed=0):
    """A config with every optional memory (G_prev) and a state in the middle of epoch 3."""
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": 7}, optim={"grad_at": "previous", "alpha": 1.3},
                              train={"seed": 11, "epochs": 4})
    rng = np.random.default_rng(seed)
    mats = [[rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
            for _ in range(3)]
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.1 * e, "test_loss": 2.0 / e,
                "test_accuracy": 0.2 * e, "seconds": 1.5 * e, "eval_seconds": 0.25,
                "spikes_per_sample": [10.0 * e, 2.5]} for e in (1, 2)]
    state = training.TrainState(mats[0], OptimState(mats[1], mats[2], 37), 2,
                                training.EpochProgress(3, 4.25, 17, 96, 0.75, [120, 33]), history)
    return cfg, state


def test_round_trip_of_every_field(tmp_path):
    cfg, state = make_state()
    path = checkpoint.save(tmp_path / "c.h5", cfg, state, NP, "abc123", "mnist-idx:/d", "/abs/d")
    ck = checkpoint.read(path)
    assert ck.config == cfg and ck.version == checkpoint.VERSION
    assert (ck.epoch, ck.step) == (2, 37)
    assert (ck.info.data_identity, ck.info.data_name, ck.info.data_path) == ("abc123", "mnist-idx:/d", "/abs/d")
    for got, want in ((ck.weights, state.weights), (ck.W_prev, state.optim.W_prev), (ck.G_prev, state.optim.G_prev)):
        for g, w in zip(got, want, strict=True):
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g, w)
    assert vars(ck.progress) == vars(state.current)
    assert ck.history == state.history
    m = ck.metrics()
    np.testing.assert_array_equal(m["epoch"], [1, 2])
    np.testing.assert_array_equal(m["spikes_per_sample"], [[10.0, 2.5], [20.0, 2.5]])
    assert ck.rng["shuffle"]["entropy"] == [11, 2, 2] and ck.rng["encoding"]["entropy"] == [11, 7919]
    with h5py.File(path, "r") as f:
        assert (f.attrs["format"], int(f.attrs["version"])) == ("gpusnn-checkpoint", 1)
        assert json.loads(f.attrs["config"]) == cfg.to_dict()
        assert f["config/optim"].attrs["alpha"] == 1.3 and f["config/optim"].attrs["grad_at"] == "previous"
        assert list(f["config/network"].attrs["widths"]) == [6, 5, 3]
        assert f["history"].dtype["spikes_per_sample"].shape == (2,)
        assert int(f["layers/2"].attrs["step"]) == 37
    info, st = checkpoint.load(path, NP)
    assert info.config == cfg and st.optim.step == 37 and st.epoch == 2 and st.history == state.history


def test_stored_rng_states_reproduce_the_runs_random_streams():
    """The stored states are those the trainer and encoder really use (guards against drift)."""
    rec = checkpoint.rng_record(seed=5, epoch=3)

    def gen(name):
        g = np.random.Generator(getattr(np.random, rec[name]["bit_generator"])())
        g.bit_generator.state = rec[name]["state"]
        return g

    np.testing.assert_array_equal(gen("shuffle").permutation(50), training.epoch_order(5, 3, 50))
    W0 = training.init_weights((8, 4), 1.0, 5)[0]
    a = np.sqrt(3.0 / 8)
    np.testing.assert_array_equal(gen("weight_init").uniform(-a, a, (8, 4)).astype(np.float32), W0)
    imgs = np.random.default_rng(0).integers(0, 256, (4, 9), dtype=np.uint8)
    labels = np.zeros(4, np.int64)
    data = encode_images("x", (imgs, labels, imgs[:1], labels[:1]), 5, 5)
    again = rate_code(imgs, 5, gen("encoding"))
    np.testing.assert_array_equal(again.ids, data.train.ids)
    np.testing.assert_array_equal(again.indptr, data.train.indptr)


class Boxed:
    """An array type of a fake device: load must go through backend.asarray, save through asnumpy."""

    def __init__(self, a):
        self.a = np.array(a)


class BoxBackend:
    name, xp = "box", np
    asarray = staticmethod(Boxed)
    asnumpy = staticmethod(lambda b: b.a)


@pytest.mark.parametrize("backend", ["numpy", "emulated", pytest.param("cuda", marks=pytest.mark.gpu), "box"])
def test_load_onto_every_backend(tmp_path, backend):
    cfg, state = make_state()
    path = checkpoint.save(tmp_path / "c.h5", cfg, state, NP)
    be = BoxBackend() if backend == "box" else get_backend(backend)
    _, st = checkpoint.load(path, be)
    for arr, want in zip(st.weights + st.optim.W_prev + st.optim.G_prev,
                         state.weights + state.optim.W_prev + state.optim.G_prev):
        np.testing.assert_array_equal(np.asarray(be.asnumpy(arr)), want)
    again = checkpoint.save(tmp_path / "again.h5", cfg, st, be)
    np.testing.assert_array_equal(checkpoint.read(again).G_prev[1], state.optim.G_prev[1])


def test_run_directory_keeps_last_k_and_links_the_newest(tmp_path):
    cfg, state = make_state()
    for step in (5, 10, 15, 20):
        state.optim.step = step
        checkpoint.save_run(tmp_path, cfg, state, NP, keep=2)
    assert [p.name for p in checkpoint.numbered(tmp_path)] == ["checkpoint-e2-s15.h5", "checkpoint-e2-s20.h5"]
    assert os.path.samefile(tmp_path / "checkpoint.h5", tmp_path / "checkpoint-e2-s20.h5")
    assert checkpoint.resolve(tmp_path) == tmp_path / "checkpoint.h5"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resolve_never_picks_a_partial_or_temporary_file(tmp_path):
    cfg, state = make_state()
    state.optim.step = 4
    checkpoint.save_run(tmp_path, cfg, state, NP)
    good = (tmp_path / "checkpoint-e2-s4.h5").read_bytes()
    (tmp_path / ".checkpoint-e2-s9.h5.tmp1").write_bytes(good[: len(good) // 2])
    (tmp_path / "checkpoint.h5").unlink()
    (tmp_path / "checkpoint.h5").write_bytes(good[: len(good) // 2])  # as if torn by a crash
    (tmp_path / "checkpoint-e3-s8.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert checkpoint.resolve(tmp_path) == tmp_path / "checkpoint-e2-s4.h5"
    finished = subprocess.Popen(["true"])
    finished.wait()  # its pid no longer runs
    stale = tmp_path / f".checkpoint.h5.tmp{finished.pid}"
    stale.write_bytes(b"x")
    mine = tmp_path / f".checkpoint.h5.tmp{os.getpid()}"
    mine.write_bytes(b"x")
    assert checkpoint.remove_stale_temps(tmp_path) == [stale]
    assert mine.exists() and (tmp_path / ".checkpoint-e2-s9.h5.tmp1").exists()  # pid 1 runs


def _mutate(path, change):
    with h5py.File(path, "a") as f:
        change(f)


def _set_w(f, value):
    W = f["layers/1/W"][...]
    W[2, 3] = value
    f["layers/1/W"][...] = W


def _reshape_w(f):
    del f["layers/1/W"]
    f["layers/1/W"] = np.zeros((6, 4), np.float32)


BAD = {
    "not HDF5": (lambda p: p.write_text("hello"), r"not a checkpoint: not a readable HDF5 file"),
    "torn": (lambda p: p.write_bytes(p.read_bytes()[:3000]), r"not a readable HDF5 file"),
    "another format": (lambda p: _mutate(p, lambda f: f.attrs.__setitem__("format", "gpusnn-spikelog")),
                       r"not a gpusnn-checkpoint file \(root attribute format = 'gpusnn-spikelog'\)"),
    "newer version": (lambda p: _mutate(p, lambda f: f.attrs.__setitem__("version", 2)),
                      r"version 2 is newer than this gpusnn reads \(<= 1\); upgrade gpusnn"),
    "missing dataset": (lambda p: _mutate(p, lambda f: f.__delitem__("layers/2/G_prev")),
                        r"missing dataset /layers/2/G_prev"),
    "missing history": (lambda p: _mutate(p, lambda f: f.__delitem__("history")), r"missing dataset /history"),
    "wrong shape": (lambda p: _mutate(p, _reshape_w), r"/layers/1/W has shape \(6, 4\), the config's widths say \(6, 5\)"),
    "NaN": (lambda p: _mutate(p, lambda f: _set_w(f, np.nan)), r"/layers/1/W holds 1 NaN or inf"),
    "inf": (lambda p: _mutate(p, lambda f: _set_w(f, -np.inf)), r"/layers/1/W holds 1 NaN or inf"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_fail_with_a_clear_error(tmp_path, case):
    cfg, state = make_state()
    path = checkpoint.save(tmp_path / "bad.h5", cfg, state, NP)
    spoil, message = BAD[case]
    spoil(path)
    with pytest.raises(CheckpointError, match=r"bad\.h5: .*" + message):
        checkpoint.read(path)


def _full_disk(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where):
    cfg, state = make_state()
    checkpoint.save_run(tmp_path, cfg, state, NP)
    before = sorted(p.name for p in tmp_path.iterdir())
    state.optim.step, state.weights[0][0, 0] = 99, 123.0
    monkeypatch.setattr(checkpoint.os, where, _full_disk)
    with pytest.raises(CheckpointError, match=r"checkpoint-e2-s99\.h5: disk full .*previous file is untouched"):
        checkpoint.save_run(tmp_path, cfg, state, NP)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    ck = checkpoint.read(checkpoint.resolve(tmp_path))
    assert ck.step == 37 and ck.weights[0][0, 0] != 123.0


def test_full_tmpfs_keeps_the_previous_checkpoint(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        cfg, state = make_state(widths=(700, 40, 3))  # about 340 KB per file: the second does not fit
        checkpoint.save_run(mnt, cfg, state, NP)
        state.optim.step = 99
        with pytest.raises(CheckpointError, match=r"disk full"):
            checkpoint.save_run(mnt, cfg, state, NP)
        assert checkpoint.read(checkpoint.resolve(mnt)).step == 37
        assert sorted(p.name for p in mnt.iterdir()) == ["checkpoint-e2-s37.h5", "checkpoint.h5"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
