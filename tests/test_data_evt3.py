"""Prophesee EVT 3.0: streams built word by word from Prophesee's "EVT 3.0 Format" document,
checked by hand and against expelliarmus (an independent reader, a dependency of tonic);
bad input; fuzzing."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_tools.events import EVENT_DTYPE
from data_tools.evt3 import read_evt3
from data_tools.inspect import inspect_file
from gpusnn.errors import DataFormatError

HEADER = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"


def words(*ws) -> bytes:
    return struct.pack(f"<{len(ws)}H", *ws)


def addr_y(y): return (0x0 << 12) | y
def addr_x(x, p): return (0x2 << 12) | (p << 11) | x
def base_x(x, p): return (0x3 << 12) | (p << 11) | x
def vect12(mask): return (0x4 << 12) | mask
def vect8(mask): return (0x5 << 12) | mask
def t_low(v): return (0x6 << 12) | v
def t_high(v): return (0x8 << 12) | v


def test_hand_built_stream(tmp_path):
    body = words(t_high(1), t_low(5), addr_y(10), addr_x(100, 1),
                 base_x(200, 0), vect12(0b1000_0000_0101), vect8(0b1000_0001),
                 0xA000 | (3 << 8) | 1, 0xE000 | 7, 0xF000 | 0xABC, 0x7000 | 5,   # trigger, others, continued: skipped
                 t_low(4095), addr_x(0, 0),
                 t_high(4095), t_low(0), addr_y(719), addr_x(1279, 1),
                 t_high(0), t_low(3), addr_x(5, 1))                               # 12-bit time-high rollover
    p = tmp_path / "a.raw"
    p.write_bytes(HEADER + body)
    ev, fields = read_evt3(p)
    t1 = (1 << 12) | 5
    assert ev["x"].tolist() == [100, 200, 202, 211, 212, 219, 0, 1279, 5]
    assert ev["y"].tolist() == [10] * 7 + [719, 719]
    assert ev["p"].tolist() == [True] + [False] * 6 + [True, True]
    assert ev["t"].tolist() == [t1] * 6 + [(1 << 12) | 4095, 4095 << 12, (1 << 24) | 3]
    info = inspect_file(p)
    assert info["format"] == "Prophesee RAW EVT 3.0" and info["sensor_size"] == [1280, 720, 2]
    assert info["events"] == 9 and info["warnings"] == []


def random_stream(rng, n_rows=60, width=1280, height=720) -> bytes:
    """Rows of events at increasing times (one TIME_HIGH, rising TIME_LOW: the part of the
    format every reader decodes alike), each row a mix of single events and vectors."""
    out = [t_high(int(rng.integers(0, 4096)))]
    low = 0
    for _ in range(n_rows):
        low = min(4095, low + int(rng.integers(0, 60)))
        out += [t_low(low), addr_y(int(rng.integers(0, height)))]
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                out.append(addr_x(int(rng.integers(0, width)), int(rng.integers(0, 2))))
            else:
                out.append(base_x(int(rng.integers(0, width - 40)), int(rng.integers(0, 2))))
                out += [vect12(int(rng.integers(0, 4096))), vect8(int(rng.integers(0, 256)))]
    return words(*out)


def test_random_streams_match_expelliarmus(tmp_path):
    from expelliarmus import Wizard
    rng = np.random.default_rng(3)
    for k in range(5):
        p = tmp_path / f"r{k}.raw"
        p.write_bytes(HEADER + random_stream(rng))
        ev, _ = read_evt3(p)
        peer = Wizard(encoding="evt3").read(str(p))
        assert ev.size == peer.size > 0
        for f in "txy":
            np.testing.assert_array_equal(ev[f], peer[f])
        np.testing.assert_array_equal(ev["p"], peer["p"].astype(bool))
@pytest.mark.parametrize("data, message", [
    (b"", "byte offset 0: empty file"),
    (words(addr_y(1), addr_x(2, 1)), r"no '% evt 3.0'.*--format evt3"),
    (b"% evt 2.0\n" + words(0), "header says EVT 2.0; this reader decodes EVT 3.0"),
    (HEADER + words(addr_y(1)) + b"\x01", f"byte offset {len(HEADER) + 2}: truncated word"),
    (HEADER + words(addr_y(1), 0x1000), f"byte offset {len(HEADER) + 2}: unknown EVT 3.0 word type 0x1"),
])
def test_bad_files_name_the_problem(tmp_path, data, message):
    p = tmp_path / "bad.raw"
    p.write_bytes(data)
    with pytest.raises(DataFormatError, match=message):
        read_evt3(p)


def test_named_encoding_reads_a_bare_stream(tmp_path):
    p = tmp_path / "bare.raw"
    p.write_bytes(b"% geometry 320x320\n" + words(t_low(9), addr_y(3), addr_x(4, 1)))
    ev, _ = read_evt3(p, encoding="evt3")
    assert ev.tolist() == [(4, 3, True, 9)]
    assert inspect_file(p, format="evt3")["sensor_size"] == [320, 320, 2]


@settings(max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_returns_events_or_data_format_error(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("fuzz3")
    good = bytearray(HEADER + random_stream(np.random.default_rng(data.draw(st.integers(0, 9))), n_rows=5))
    mode = data.draw(st.sampled_from(["random", "mutate", "cut"]))
    if mode == "random":
        blob = HEADER + data.draw(st.binary(max_size=300))
    elif mode == "mutate":
        for _ in range(data.draw(st.integers(1, 6))):
            good[data.draw(st.integers(0, len(good) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(good)
    else:
        blob = bytes(good[:data.draw(st.integers(0, len(good)))])
    p = base / "f.raw"
    p.write_bytes(blob)
    for call in (lambda: read_evt3(p)[0], lambda: read_evt3(p, encoding="evt3")[0], lambda: inspect_file(p)):
        try:
            out = call()
        except DataFormatError:
            continue
        if isinstance(out, np.ndarray):
            assert out.dtype == EVENT_DTYPE and (out.size == 0 or out["t"].min() >= 0)
