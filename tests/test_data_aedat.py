"""AEDAT 3.1 / 2.0 readers and writers: round trips, a file built byte by byte from the format
description, bad input errors, tonic compatibility, and fuzzing."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_tools.aedat2 import CONVENTIONS, read_aedat2, write_aedat2
from data_tools.aedat3 import iter_aedat3, read_aedat3, write_aedat3
from data_tools.evt2 import read_evt2
from data_tools.evt3 import read_evt3
from data_tools.events import DVS128_SENSOR, EVENT_DTYPE, make_events
from data_tools.inspect import inspect_file
from gpusnn.errors import DataFormatError

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def random_events(n, seed=0, t_max=2**40):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                       np.sort(rng.integers(0, t_max, n)))


def packet(etype, size, ts_off, overflow, capacity, number, payload):
    """A packet header (28 bytes, little-endian) followed by payload, straight from the spec."""
    return struct.pack("<hhiiiiii", etype, 1, size, ts_off, overflow, capacity, number, number) + payload


def pol(x, y, p, ts, valid=1):
    return struct.pack("<Ii", valid | (p << 1) | (y << 2) | (x << 17), ts)


@pytest.mark.parametrize("packet_events,spare", [(1, 0), (7, 3), (4096, 0)])
def test_aedat3_round_trip_multi_packet_padding_overflow(tmp_path, packet_events, spare):
    ev = random_events(500, t_max=2**33)               # several 31-bit overflow epochs
    path = tmp_path / "a.aedat"
    write_aedat3(path, ev, packet_events=packet_events, spare_capacity=spare)
    out = read_aedat3(path)
    assert out.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(out, ev)
    np.testing.assert_array_equal(np.concatenate(list(iter_aedat3(path, chunk_events=50))), ev)
    info = inspect_file(path)
    assert info["events"] == 500 and info["packet_types"] == {"1": info["packets"]}
    assert info["packets"] >= int(np.ceil(500 / packet_events))


def test_aedat3_empty_and_header_fields(tmp_path):
    path = tmp_path / "e.aedat"
    write_aedat3(path, np.empty(0, EVENT_DTYPE), header_fields={"Start-Time": "now"})
    assert read_aedat3(path).size == 0
    assert inspect_file(path)["header"]["Start-Time"] == "now"


def test_aedat3_byte_by_byte_file(tmp_path):
    """Special packet, polarity packet with padding and an invalid event, a frame-like packet of
    another size, then a polarity packet after a timestamp overflow with eventSize 12."""
    data = HEADER
    data += packet(0, 8, 4, 0, 2, 2, struct.pack("<Ii", 0x5, 10) * 2)                 # special, skipped
    data += packet(1, 8, 4, 0, 4, 3, pol(5, 6, 1, 100) + pol(7, 8, 0, 150, valid=0) + pol(127, 0, 0, 200)
                   + pol(1, 1, 1, 999))                                              # 4th slot is padding
    data += packet(2, 13, 4, 0, 3, 3, bytes(39))                                     # unknown type, skipped
    data += packet(1, 12, 8, 1, 1, 1, struct.pack("<I", 1 | (1 << 1) | (3 << 2) | (9 << 17)) + bytes(4)
                   + struct.pack("<i", 7))                                           # ts at byte 8
    path = tmp_path / "b.aedat"
    path.write_bytes(data)
    out = read_aedat3(path)
    expected = make_events([5, 127, 9], [6, 0, 3], [1, 0, 1], [100, 200, (1 << 31) | 7])
    np.testing.assert_array_equal(out, expected)
    assert inspect_file(path)["packet_types"] == {"0": 1, "1": 2, "2": 1}


@pytest.mark.parametrize("data,needle", [
    (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "missing end-of-header"),
    (HEADER + packet(1, 8, 4, 0, 1, 1, pol(1, 1, 1, 1))[:20], "truncated packet header"),
    (HEADER + packet(1, 6, 4, 0, 1, 1, bytes(6)), "eventSize 6 is inconsistent with event type 1"),
    (HEADER + packet(1, 8, 4, 0, 100, 1, pol(1, 1, 1, 1)), "packet larger than the file"),
    (HEADER + packet(1, 8, 4, 0, 1, 2, pol(1, 1, 1, 1)), "eventNumber"),
    (b"#!AER-DAT2.0\r\n", "expected b'#!AER-DAT3'"),
])
def test_aedat3_bad_input_names_file_and_offset(tmp_path, data, needle):
    path = tmp_path / "bad.aedat"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=needle) as exc:
        read_aedat3(path)
    assert str(path) in str(exc.value) and "byte offset" in str(exc.value)


def test_aedat3_truncated_packet_offset(tmp_path):
    path = tmp_path / "t.aedat"
    path.write_bytes(HEADER + packet(1, 8, 4, 0, 2, 2, pol(1, 1, 1, 1) + pol(2, 2, 0, 2)) + bytes(10))
    with pytest.raises(DataFormatError, match=f"byte offset {len(HEADER) + 28 + 16}: truncated"):
        read_aedat3(path)


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_aedat2_round_trip(tmp_path, name):
    ev = random_events(300, seed=1, t_max=2**34)        # 32-bit wrap-arounds are unwrapped
    path = tmp_path / "a2.aedat"
    write_aedat2(path, ev, CONVENTIONS[name])
    np.testing.assert_array_equal(read_aedat2(path, CONVENTIONS[name]), ev)


def test_aedat2_byte_by_byte_conventions_and_special_events(tmp_path):
    raw = struct.pack(">ii", (3 << 8) | (5 << 1) | 1, 10)          # x 5, y 3, bit 1
    raw += struct.pack(">ii", 1 << 15, 11)                           # external event: skipped
    raw += struct.pack(">ii", -2**31 | 4, 12)                        # bit 31: skipped
    raw += struct.pack(">ii", (0 << 8) | (127 << 1) | 0, 13)
    path = tmp_path / "b2.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n#comment\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n" + raw)
    np.testing.assert_array_equal(read_aedat2(path), make_events([5, 127], [3, 0], [1, 0], [10, 13]))
    np.testing.assert_array_equal(read_aedat2(path, CONVENTIONS["jaer"]), make_events([122, 0], [3, 0], [0, 1], [10, 13]))
    np.testing.assert_array_equal(read_aedat2(path, "top-left"), make_events([5, 127], [124, 127], [1, 0], [10, 13]))
    path.write_bytes(b"#!AER-DAT2.0\r\n" + raw[:-3])
    with pytest.raises(DataFormatError, match="truncated event"):
        read_aedat2(path, sensor="dvs128")


def test_reader_output_passes_tonic_transforms(tmp_path):
    import tonic.transforms as T
    path = tmp_path / "c.aedat"
    write_aedat3(path, random_events(2000, seed=2, t_max=100_000))
    ev = read_aedat3(path)
    frames = T.ToFrame(sensor_size=DVS128_SENSOR, n_time_bins=5)(ev)
    assert frames.shape == (5, 2, 128, 128) and 0.99 * ev.size <= frames.sum() <= ev.size
    small = T.Downsample(spatial_factor=0.25)(ev)
    assert small["x"].max() < 32 and small.dtype.names == ("x", "y", "p", "t")


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_readers_return_events_or_data_format_error(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("fuzz")
    good = HEADER + packet(1, 8, 4, 0, 3, 2, pol(1, 2, 1, 5) + pol(3, 4, 0, 6) + bytes(8)) \
        + packet(0, 8, 4, 0, 1, 1, bytes(8))
    mode = data.draw(st.sampled_from(["random", "mutate", "cut"]))
    if mode == "random":
        blob = data.draw(st.binary(max_size=300))
        blob = data.draw(st.sampled_from([b"", b"#!AER-DAT3.1\r\n", HEADER, b"% evt 2.0\n", b"% evt 3.0\n",
                                          b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n"])) + blob
    else:
        blob = bytearray(good)
        if mode == "mutate":
            for _ in range(data.draw(st.integers(1, 6))):
                blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        else:
            blob = blob[:data.draw(st.integers(0, len(blob)))]
        blob = bytes(blob)
    path = base / "f.aedat"
    path.write_bytes(blob)
    for reader in (read_aedat3, read_aedat2, lambda p: read_aedat2(p, sensor="davis240", headerless=True),
                   lambda p: list(iter_aedat3(p, 1)), lambda p: read_evt2(p)[0], lambda p: read_evt3(p)[0],
                   lambda p: inspect_file(p), lambda p: inspect_file(p, sensor="davis346")):
        try:
            out = reader(path)
        except DataFormatError:
            continue
        if isinstance(out, dict):
            assert out["events"] >= 0 and isinstance(out["warnings"], list)
            continue
        assert all(np.asarray(o).dtype == EVENT_DTYPE for o in (out if isinstance(out, list) else [out]))


def test_aedat3_source_line_names_the_sensor_and_other_packets_are_counted(tmp_path):
    """DAVIS polarity packets share the DVS128 event layout; frame (type 2) and IMU6 (type 3)
    packets are skipped by their size and counted per type."""
    data = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS346B\r\n#!END-HEADER\r\n"
    data += packet(1, 8, 4, 0, 2, 2, pol(345, 259, 1, 10) + pol(346, 3, 0, 12))   # 2nd: x outside 346 x 260
    data += packet(2, 40, 4, 0, 1, 1, bytes(40))                                 # a frame
    data += packet(3, 36, 4, 0, 3, 3, bytes(108))                                # three IMU6 samples
    data += packet(1, 8, 4, 0, 1, 1, pol(0, 0, 0, 11))                           # time goes back 1 us
    path = tmp_path / "davis.aedat"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_aedat3(path), make_events([345, 346, 0], [259, 3, 0], [1, 0, 0], [10, 12, 11]))
    info = inspect_file(path)
    assert info["sensor"] == "davis346" and info["sensor_size"] == [346, 260, 2]
    assert info["skipped_records"] == {"frame": 1, "imu6": 3}
    assert info["outside_sensor"] == 1 and info["timestamps_backwards"] == 1 and len(info["warnings"]) == 2


@pytest.mark.parametrize("source, sensor", [("DVS128", "dvs128"), ("DAVIS240C", "davis240"), ("DAVIS240A", "davis240"),
                                            ("DAVIS346B", "davis346"), ("DAVIS346C", "davis346")])
def test_aedat3_known_sources(tmp_path, source, sensor):
    path = tmp_path / "s.aedat"
    path.write_bytes(f"#!AER-DAT3.1\r\n#Source 1: {source}\r\n#!END-HEADER\r\n".encode())
    assert inspect_file(path)["sensor"] == sensor


def test_aedat3_unknown_or_missing_source_is_an_error_unless_forced(tmp_path):
    path = tmp_path / "u.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Source 1: FooCam640\r\n#!END-HEADER\r\n" + packet(1, 8, 4, 0, 1, 1, pol(1, 1, 1, 1)))
    with pytest.raises(DataFormatError, match="'#Source 1: FooCam640'.*--sensor"):
        inspect_file(path)
    assert inspect_file(path, sensor="davis240")["sensor_size"] == [240, 180, 2]
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n")
    with pytest.raises(DataFormatError, match="no '#Source N: <chip>' line"):
        inspect_file(path)


def test_aedat3_writer_names_the_sensor(tmp_path):
    path = tmp_path / "w.aedat"
    ev = random_events(50, seed=4, t_max=10_000)
    write_aedat3(path, ev, sensor="davis240")
    assert b"#Source 1: DAVIS240C\r\n" in path.read_bytes()[:200]
    assert inspect_file(path)["sensor"] == "davis240"
    np.testing.assert_array_equal(read_aedat3(path), ev)
