"""The conversion path: the window cut from raw AEDAT 3.1 records (hand-built file), and trials
parsed in worker processes handed back through shared memory (same store for any workers,
bounded blocks, nothing left behind on success, on errors and when the parent is killed)."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import stalled_conversion

import data_tools.gesture_layout as layout
from data_tools import trial_workers
from data_tools.aedat3 import read_aedat3, read_records
from data_tools.convert import convert
from data_tools.errors import DataFormatError
from data_tools.event_store import EventStore
from data_tools.gesture_layout import LABEL_DTYPE, read_trial, window_columns
from data_tools.processes import alive
from data_tools.synth import SynthConfig, generate

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
OVF = 1 << 31


def _packet(etype, size, ts_off, overflow, capacity, records: bytes, number):
    return struct.pack("<hhiiiiii", etype, 1, size, ts_off, overflow, capacity, number, number) + records


def _word(x, y, p, valid=1):
    return valid | (p << 1) | (y << 2) | (x << 17)


def _file(tmp_path):
    """Unsorted times, an invalid event, padding, a 12-byte event layout, a special packet and
    a timestamp overflow; returns the path and the valid events by hand: (x, y, p, t) in file order."""
    a = [(5, 7, 1, 100), (127, 0, 0, 300), (9, 9, 1, 200, 0), (3, 4, 0, 250)]        # 3rd: valid bit 0
    b = [(1, 2, 1, 150), (100, 127, 0, 400)]                                           # 12 bytes: data, pad, ts
    c = [(64, 65, 1, 5)]                                                               # overflow 1
    rec_a = b"".join(struct.pack("<Ii", _word(*e[:3], *e[4:]), e[3]) for e in a) + bytes(16)
    rec_b = b"".join(struct.pack("<IIi", _word(*e[:3]), 0xDEADBEEF, e[3]) for e in b)
    rec_c = b"".join(struct.pack("<Ii", _word(*e[:3]), e[3]) for e in c)
    body = (_packet(1, 8, 4, 0, 6, rec_a, 4) + _packet(0, 8, 4, 0, 1, bytes(8), 1)
            + _packet(1, 12, 8, 0, 2, rec_b, 2) + _packet(1, 8, 4, 1, 1, rec_c, 1))
    path = tmp_path / "user03_lab.aedat"
    path.write_bytes(HEADER + body)
    valid = [e for e in a if len(e) == 4] + b + [(64, 65, 1, OVF + 5)]
    return path, valid


def test_records_and_window_cut_match_hand_decoded_events(tmp_path):
    path, valid = _file(tmp_path)
    ev = read_aedat3(path)
    assert [tuple(int(v) for v in e) for e in ev[["x", "y", "p", "t"]].tolist()] == valid
    r = read_records(path)
    assert r.t.dtype == np.int64 and r.t.tolist() == [e[3] for e in valid]
    by_time = sorted(valid, key=lambda e: e[3])                      # stable: ties keep file order
    for windows, n in (([(2, 120, 260), (5, 0, 301)], [2, 4]), ([(1, OVF - 50, OVF + 10), (4, 390, 401)], [1, 1])):
        rows = np.array(windows, LABEL_DTYPE)
        cols, lengths = window_columns(r.time_sorted(), rows, path)
        want = [[(x, y, p, t - s) for x, y, p, t in by_time if s <= t < e] for _, s, e in windows]
        assert lengths.tolist() == [len(w) for w in want] == n
        got = list(zip(*(cols[k].tolist() for k in ("x", "y", "p", "t"))))
        assert got == [e for w in want for e in w]
        assert {k: c.dtype for k, c in cols.items()} == {"x": np.int16, "y": np.int16, "p": np.uint8, "t": np.int32}


def test_read_trial_puts_columns_where_allocate_says(tmp_path):
    path, _ = _file(tmp_path)
    (tmp_path / "user03_lab_labels.csv").write_text("class,startTime_usec,endTime_usec\n2,120,260\n5,0,301\n")
    sizes, pool = [], {k: np.full(20, 99, dt) for k, dt in (("x", np.int16), ("y", np.int16), ("p", np.uint8),
                                                             ("t", np.int32))}

    def allocate(n):
        sizes.append(n)
        return {k: v[:n] for k, v in pool.items()}

    part = read_trial(tmp_path, path.name, True, allocate=allocate)
    ref = read_trial(tmp_path, path.name, True)
    assert sizes == [6] and part.lengths.tolist() == [4, 2]   # rows in time order
    for k, buf in pool.items():
        np.testing.assert_array_equal(buf[:6], ref.columns[k])
        assert np.shares_memory(part.columns[k], buf)
    assert part.fields["users"].tolist() == [3, 3] and part.fields["lighting"].tolist() == ["lab", "lab"]


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("g")
    generate(root, replace(SynthConfig.small_config(seed=3), n_users=5, lightings_per_user=2), progress=False)   # 10 trials
    return root


def _blocks(prefix="gpusnn-") -> set:
    return {p.name for p in Path("/dev/shm").glob(prefix + "*")}


needs_shm = pytest.mark.skipif("fork" not in mp.get_all_start_methods() or not trial_workers.SHM_DIR.is_dir(),
                               reason="fork and /dev/shm (Linux)")


@needs_shm
@pytest.mark.parametrize("workers,depth", [(2, None), (2, 2), (3, 5)])
def test_worker_processes_give_the_serial_trials_in_order_with_bounded_blocks(small_dir, workers, depth):
    serial = [read_trial(small_dir, n, tr) for n, tr in layout.trial_list(small_dir)]
    before, seen, live = _blocks(), [], []

    def consume(part):
        seen.append(part)
        live.append(len(_blocks() - before))
        for k, col in part.columns.items():                     # consume copies: the views go away
            part.columns[k] = col.copy()

    n = trial_workers.each_trial(small_dir, consume, workers=workers, depth=depth)
    assert n == len(serial) == len(seen) > (depth or workers + 1)
    for got, want in zip(seen, serial):
        assert got.fields["trial"].tolist() == want.fields["trial"].tolist()
        np.testing.assert_array_equal(got.lengths, want.lengths)
        for k in want.columns:
            np.testing.assert_array_equal(got.columns[k], want.columns[k])
    assert 0 < max(live) <= 2 * (depth or workers + 1)             # a block per slot (+ one growing it)
    assert live[-1] <= (depth or workers + 1)
    assert _blocks() == before


@needs_shm
def test_no_room_in_shared_memory_sends_the_columns_through_the_queue(small_dir, monkeypatch):
    monkeypatch.setattr(trial_workers, "_room", lambda size: False)
    before, seen = _blocks(), []
    trial_workers.each_trial(small_dir, seen.append, workers=2)
    assert _blocks() == before
    want = [read_trial(small_dir, n, tr) for n, tr in layout.trial_list(small_dir)]
    for got, ref in zip(seen, want, strict=True):
        np.testing.assert_array_equal(got.columns["t"], ref.columns["t"])


@needs_shm
def test_without_room_for_the_slots_convert_parses_in_a_thread(small_dir, tmp_path, monkeypatch):
    assert trial_workers.available(small_dir, 2)
    monkeypatch.setattr(trial_workers, "_room", lambda size: False)            # e.g. a 64 MB container tmpfs
    assert not trial_workers.available(small_dir, 2)

    def no_processes(*a, **k):
        raise AssertionError("worker processes used")

    monkeypatch.setattr(trial_workers, "each_trial", no_processes)
    convert(small_dir, tmp_path / "a.h5", workers=2, progress=False)
    convert(small_dir, tmp_path / "b.h5", workers=0, progress=False)
    with EventStore(tmp_path / "a.h5") as a, EventStore(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a.samples().events, b.samples().events)


@needs_shm
def test_a_worker_that_dies_is_an_error_and_leaves_no_blocks(small_dir, monkeypatch):
    real, victim = layout.read_trial, layout.trial_list(small_dir)[1][0]

    def dying(root, name, *a, **k):
        if name == victim:
            os._exit(7)
        return real(root, name, *a, **k)

    monkeypatch.setattr(layout, "read_trial", dying)
    before = _blocks()
    with pytest.raises(DataFormatError, match="worker .* died .*exit code 7"):
        trial_workers.each_trial(small_dir, lambda part: None, workers=2)
    assert _blocks() == before


@needs_shm
def test_an_error_in_consume_stops_the_workers_and_unlinks_every_block(small_dir):
    before = _blocks()
    calls = []

    def consume(part):
        calls.append(part.n_events)
        if len(calls) == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        trial_workers.each_trial(small_dir, consume, workers=2)
    assert _blocks() == before and not mp.active_children()


@needs_shm
def test_ctrl_c_stops_the_workers_and_removes_the_partial_store_and_blocks(small_dir, tmp_path):
    proc = stalled_conversion(f"""
        from data_tools.convert import convert
        convert({str(small_dir)!r}, {str(tmp_path / "s.h5")!r}, workers=2, progress=False)
    """, stderr=subprocess.PIPE, start_new_session=True)
    word, *workers = proc.stdout.readline().split()
    assert word == "appended" and len(workers) == 2
    blocks = {b for b in _blocks(f"gpusnn-{proc.pid}-")}
    os.killpg(proc.pid, signal.SIGINT)                                # what Ctrl-C sends: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and err.count("KeyboardInterrupt") == 1          # the parent's, not the workers'
    assert blocks and not blocks & _blocks() and not any(alive(int(w)) for w in workers)
    assert not list(tmp_path.glob("s.h5*"))
