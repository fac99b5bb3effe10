"""The out-of-core data path: the store written trial by trial, conversions that are killed,
batches read from the store, the prefetch thread, and training on a store-backed split."""
from __future__ import annotations

import functools
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import stalled_conversion

import data_tools.datasets as dsets
import data_tools.gesture_layout as layout
from data_tools.convert import WORKERS, convert
from data_tools.datasets import load_dataset, store_path
from data_tools.encode import encode
from data_tools.errors import DataFormatError
from data_tools.event_store import (
    EventStore,
    StoreWriter,
    is_complete,
    load_store,
    write_store,
)
from data_tools.events import make_events
from data_tools.gesture_layout import load_gesture_dir
from data_tools.loader import StoreSplit, take
from data_tools.prefetch import prefetch
from data_tools.processes import alive
from data_tools.samples import from_samples
from data_tools.spikes import SpikeTensor
from data_tools.synth import SynthConfig, generate


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("g")
    generate(root, SynthConfig.small_config(seed=5), progress=False)
    return root


def _shm_blocks() -> set:
    """The conversion's shared-memory blocks that exist now (data_tools.trial_workers names them)."""
    return {p.name for p in Path("/dev/shm").glob("gpusnn-*")} if Path("/dev/shm").is_dir() else set()


def _datasets(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        out["attrs"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
    return out


def test_store_written_trial_by_trial_equals_one_written_at_once(small_dir, tmp_path):
    before = _shm_blocks()
    write_store(tmp_path / "once.h5", load_gesture_dir(small_dir, progress=False))
    once = _datasets(tmp_path / "once.h5")
    info = convert(small_dir, tmp_path / "default.h5", progress=False)          # WORKERS: worker processes
    stores = {"default": _datasets(tmp_path / "default.h5")}
    for workers in (0, 1, 2, 3):                                     # serial, thread, processes
        convert(small_dir, tmp_path / f"w{workers}.h5", workers=workers, progress=False)
        stores[workers] = _datasets(tmp_path / f"w{workers}.h5")
    for name, other in stores.items():
        assert other.keys() == once.keys(), name
        for k in once:
            if k == "attrs":
                assert other[k] == once[k], name
            else:
                np.testing.assert_array_equal(other[k], once[k], err_msg=f"{name}: {k}")
    n_trials = len(layout.trial_list(small_dir))
    assert info["samples"] == len(once["samples/labels"]) and n_trials > 1
    assert stores["default"]["attrs"]["complete"] is True
    assert not list(tmp_path.glob("*.partial-*")) and _shm_blocks() == before


def test_store_round_trips_samples_and_reads_by_random_access(small_dir, tmp_path):
    s = load_gesture_dir(small_dir, progress=False)
    convert(small_dir, tmp_path / "e.h5", progress=False)
    back = load_store(tmp_path / "e.h5")
    for name in ("offsets", "labels", "durations", "window_start", "users", "train"):
        np.testing.assert_array_equal(getattr(back, name), getattr(s, name))
    np.testing.assert_array_equal(back.events, s.events)
    assert back.lighting.tolist() == s.lighting.tolist() and back.trial.tolist() == s.trial.tolist()
    idx = np.random.default_rng(0).permutation(len(s))[:7]
    with EventStore(tmp_path / "e.h5") as st:
        sub = st.subset(idx)
    ref = s.subset(idx)
    np.testing.assert_array_equal(sub.events, ref.events)
    np.testing.assert_array_equal(sub.offsets, ref.offsets)
    np.testing.assert_array_equal(sub.labels, ref.labels)


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_exception_after_k_trials_leaves_no_store_and_the_next_run_recovers(small_dir, tmp_path, monkeypatch,
                                                                           workers):
    real = layout.read_trial
    third = layout.trial_list(small_dir)[2][0]

    def failing(root, name, *a, **k):                  # by name: also in forked worker processes
        if name == third:
            raise OSError("disk went away")
        return real(root, name, *a, **k)

    monkeypatch.setattr(layout, "read_trial", failing)
    monkeypatch.setattr(dsets, "convert", functools.partial(dsets.convert, workers=workers))
    cache = tmp_path / "cache"
    before = _shm_blocks()
    with pytest.raises(OSError, match="disk went away"):
        store_path(str(small_dir), cache_dir=cache, progress=False)
    assert not list(cache.glob("*.h5")) and not list(cache.glob("*.partial-*"))
    assert _shm_blocks() == before
    monkeypatch.setattr(layout, "read_trial", real)
    store = store_path(str(small_dir), cache_dir=cache, progress=False)
    assert is_complete(store) and len(load_store(store)) == len(load_gesture_dir(small_dir, progress=False))


def test_sigkilled_conversion_leaves_no_complete_looking_store_and_the_next_run_recovers(small_dir, tmp_path):
    cache = tmp_path / "cache"
    proc = stalled_conversion(f"""
        from data_tools.datasets import store_path
        store_path({str(small_dir)!r}, cache_dir={str(cache)!r}, progress=False)
    """, stderr=subprocess.DEVNULL)
    try:
        word, *workers = proc.stdout.readline().split()
        assert word == "appended" and len(workers) == WORKERS        # the default parses in processes
        blocks = {b for b in _shm_blocks() if b.startswith(f"gpusnn-{proc.pid}-")}
        assert blocks                                                # the trials in flight
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (any(alive(int(w)) for w in workers) or blocks & _shm_blocks()):
        time.sleep(0.2)
    assert not any(alive(int(w)) for w in workers), "orphaned workers still run"
    assert not blocks & _shm_blocks(), "shared-memory blocks outlived the killed conversion"
    partial = list(cache.glob("*.partial-*"))
    assert len(partial) == 1 and not list(cache.glob("*.h5"))
    assert not is_complete(partial[0])
    with pytest.raises(DataFormatError, match="incomplete|not an HDF5"):
        EventStore(partial[0])
    store = store_path(str(small_dir), cache_dir=cache, progress=False)
    assert is_complete(store) and not partial[0].exists()        # the dead process's partial is removed


def test_a_store_without_the_complete_attribute_is_refused(tmp_path):
    ev = make_events([1, 2], [3, 4], [True, False], [0, 5])
    s = from_samples([ev], labels=[0], durations=[10], window_start=[0], users=[1], lighting=["lab"], train=[True],
                     trial=["t"], sensor_size=(128, 128, 2), counting_rule="rows", source="x")
    w = StoreWriter(tmp_path / "a.h5", sensor_size=(128, 128, 2), counting_rule="rows", source="x")
    w.append(s)
    w._f.close()                                     # as if killed before finish()
    assert not (tmp_path / "a.h5").exists() and not is_complete(w.tmp)
    with pytest.raises(DataFormatError, match="incomplete"):
        EventStore(w.tmp)


@pytest.mark.parametrize("mode,binning", [("count", "duration"), ("binary", "duration"), ("count", "count")])
def test_per_batch_loading_equals_whole_set_encoding(small_dir, tmp_path, mode, binning):
    kw = dict(n_steps=7, mode=mode, binning=binning, cache_dir=tmp_path / "c", progress=False)
    whole = load_dataset(str(small_dir), **kw)
    lazy = load_dataset(str(small_dir), **kw, in_memory_events=0)
    assert isinstance(whole.train, SpikeTensor) and isinstance(lazy.train, StoreSplit)
    assert whole.identity == lazy.identity and lazy.meta["in_memory"] is False
    np.testing.assert_array_equal(whole.train_labels, lazy.train_labels)
    s = load_gesture_dir(small_dir, progress=False)
    independent = encode(s.subset(~s.train), 7, mode=mode, binning=binning)   # the old whole-set path
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        a, b = getattr(whole, split), getattr(lazy, split)
        assert (a.n_samples, a.n_steps, a.n_inputs) == (b.n_samples, b.n_steps, b.n_inputs)
        for idx in (rng.permutation(a.n_samples)[:5], np.arange(a.n_samples)):
            x, y = a.select(idx), b.select(idx)
            np.testing.assert_array_equal(x.indptr, y.indptr)
            np.testing.assert_array_equal(x.ids, y.ids)
    np.testing.assert_array_equal(independent.ids, lazy.test.select(np.arange(lazy.test.n_samples)).ids)
    v = take(lazy.train, np.arange(3, 9))
    assert isinstance(v, StoreSplit)
    np.testing.assert_array_equal(v.select([0, 5]).ids, whole.train.select([3, 8]).ids)


def test_loader_pass_keeps_memory_proportional_to_the_batch(tmp_path):
    rng = np.random.default_rng(2)
    S, per, batch = 1000, 2000, 4
    samples = [make_events(rng.integers(0, 128, per), rng.integers(0, 128, per), rng.random(per) < 0.5,
                           np.sort(rng.integers(0, 100_000, per))) for _ in range(S)]
    s = from_samples(samples, labels=rng.integers(0, 11, S), durations=[100_000] * S, window_start=[0] * S,
                     users=[1] * S, lighting=["lab"] * S, train=[True] * S, trial=["t"] * S,
                     sensor_size=(128, 128, 2), counting_rule="rows", source="x")
    write_store(tmp_path / "big.h5", s)
    del samples, s
    split = StoreSplit(tmp_path / "big.h5", np.arange(S), n_steps=20)
    batch_events = batch * per
    bound = 4 * 120 * batch_events                   # 4 batches alive (prefetch 2) x ~120 bytes per event
    dataset_bytes = S * per * 13
    assert dataset_bytes > 5 * bound                 # so a loader holding the dataset would fail
    order = np.random.default_rng(3).permutation(S)
    tracemalloc.start()
    n = 0
    for t in prefetch((split.select(order[i:i + batch]) for i in range(0, S, batch)), 2):
        n += t.n_spikes()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == S * per and peak < bound, (peak, bound)


def test_prefetch_gives_the_same_items_in_order_raises_in_place_and_stops():
    items = [np.full(3, i) for i in range(50)]
    for depth in (0, 1, 3):
        assert [int(x[0]) for x in prefetch(iter(items), depth)] == list(range(50))

    def broken():
        yield 1
        yield 2
        raise ValueError("bad sample")

    got = []
    with pytest.raises(ValueError, match="bad sample"):
        for x in prefetch(broken(), 2):
            got.append(x)
    assert got == [1, 2]
    before = threading.active_count()
    gen = prefetch(iter(range(10_000)), 2)
    assert next(gen) == 0
    gen.close()
    assert threading.active_count() == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have priorities of their own on Linux")
def test_prefetch_at_low_priority_lowers_its_own_thread_only():
    import os
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def made():          # in the prefetch thread: its own priority with each item
        for i in range(5):
            yield i, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert list(prefetch(made(), 2, low_priority=True)) == [(i, 19) for i in range(5)]
    assert [p for _, p in prefetch(made(), 2)] == [mine] * 5
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine                  # nor the process's


def test_training_on_a_store_split_equals_training_in_memory(small_dir, tmp_path):
    from gpusnn import training
    from gpusnn.backends import get_backend
    from gpusnn.config import RunConfig
    kw = dict(n_steps=6, cache_dir=tmp_path / "c", progress=False)
    mem, lazy = load_dataset(str(small_dir), **kw), load_dataset(str(small_dir), **kw, in_memory_events=0)
    cfg = RunConfig().replace(network={"widths": (2048, 16, 11), "n_steps": 6},
                              train={"batch_size": 8, "epochs": 2, "seed": 4, "backend": "numpy"})
    be = get_backend("numpy")
    a = training.fit(be, training.new_state(cfg, be), cfg, mem, progress=False)
    b = training.fit(be, training.new_state(cfg, be), cfg, lazy, progress=False)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    for ha, hb in zip(a.history, b.history, strict=True):
        for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "spikes_per_sample"):
            assert ha[k] == hb[k], k


def test_cli_resume_mid_epoch_is_exact_on_a_store_read_per_batch(small_dir, tmp_path, monkeypatch):
    from gpusnn.cli import main
    from gpusnn.io import checkpoint
    monkeypatch.setattr(dsets, "IN_MEMORY_EVENTS", 0)
    monkeypatch.setenv("GPUSNN_CACHE", str(tmp_path / "cache"))
    run = ["--data", small_dir, "--hidden", "10", "--steps", "5", "--batch-size", "8", "--seed", "2",
           "--backend", "numpy"]
    assert main(["-q", "train", *map(str, run), "--epochs", "2", "--out", str(tmp_path / "a"), "--log-spikes", "2"]) == 0
    assert main(["-q", "train", *map(str, run), "--epochs", "1", "--out", str(tmp_path / "b"),
                 "--save-every", "2", "--keep", "10"]) == 0
    assert main(["-q", "train", "--resume", str(tmp_path / "b" / "checkpoint-e0-s2.h5"), "--epochs", "2",
                 "--out", str(tmp_path / "c")]) == 0
    a, c = checkpoint.read(tmp_path / "a" / "checkpoint.h5"), checkpoint.read(tmp_path / "c" / "checkpoint.h5")
    for x, y in zip(a.weights + a.W_prev, c.weights + c.W_prev, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (a.epoch, a.step) == (c.epoch, c.step)
    # spike logs and evaluate read the same store-backed test split
    from gpusnn.io import spikelog
    with spikelog.open_log(tmp_path / "a" / "spikes.h5") as log:
        assert log.entries["sample_id"].tolist() == [0, 1, 0, 1] and len(log.events(0)[0]) > 0
    assert main(["-q", "evaluate", str(tmp_path / "a"), "--json", str(tmp_path / "ev.json")]) == 0
    import json
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["same_data_as_training"] and ev["test_accuracy"] == a.history[-1]["test_accuracy"]


def test_inspect_dir_counts_what_conversion_stores(small_dir, tmp_path):
    from data_tools.dataset_inspect import inspect_dataset
    out = inspect_dataset(small_dir)
    s = load_gesture_dir(small_dir, progress=False)
    n = np.diff(s.offsets)
    assert out["samples"] == len(s) and out["window_events"] == s.events.size
    assert out["splits"]["train"]["samples_rows"] == int(s.train.sum())
    first = load_gesture_dir(small_dir, counting="first", progress=False)
    assert out["splits"]["test"]["samples_first"] == int((~first.train).sum())
    assert out["events_per_sample"] == {"min": n.min(), "median": float(np.median(n)), "max": n.max()}
    assert out["trials"] == len(layout.trial_list(small_dir)) and out["splits"]["test"]["users"] == [4]
    info = convert(small_dir, tmp_path / "e.h5", progress=False)
    assert info["events"] == out["window_events"]
    # the estimate is the measured bytes per event; the real store adds only its sample index
    assert abs(out["conversion_estimate"]["store_bytes_none"] - info["bytes"]) < 0.1 * info["bytes"]
    with pytest.raises(DataFormatError, match="not a DVS128 Gesture directory"):
        inspect_dataset(tmp_path)


def test_data_cli_inspect_dir_convert_and_bad_dir(small_dir, tmp_path):
    from gpusnn.cli import main
    assert main(["-q", "data", "inspect", str(small_dir), "--json", str(tmp_path / "i.json")]) == 0
    assert main(["-q", "data", "convert", str(small_dir), str(tmp_path / "s.h5"), "--compression", "lzf",
                 "--workers", "0", "--json", str(tmp_path / "c.json")]) == 0
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["events/x"].compression == "lzf" and f.attrs["complete"]
    np.testing.assert_array_equal(load_store(tmp_path / "s.h5").events,
                                  load_gesture_dir(small_dir, progress=False).events)
    (tmp_path / "empty").mkdir()
    assert main(["-q", "data", "inspect", str(tmp_path / "empty")]) == 2


@pytest.mark.parametrize("mode,binning", [("count", "duration"), ("binary", "count")])
def test_encoding_in_groups_of_samples_equals_encoding_at_once(small_dir, monkeypatch, mode, binning):
    import data_tools.encode as enc
    s = load_gesture_dir(small_dir, progress=False)
    whole = encode(s, 9, mode=mode, binning=binning)
    monkeypatch.setattr(enc, "CHUNK_EVENTS", 7_000)              # ~1-2 samples per group
    grouped = encode(s, 9, mode=mode, binning=binning)
    assert s.events.size > 20 * 7_000
    np.testing.assert_array_equal(whole.indptr, grouped.indptr)
    np.testing.assert_array_equal(whole.ids, grouped.ids)
