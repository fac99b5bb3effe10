"""AEDAT 2.0 by chip: files built byte by byte from jAER's documented address layouts (DVS128
extractor; DavisChip fields read by DavisBaseCamera.DavisEventExtractor), the header lines
that name the chip, APS / IMU / special records skipped and counted, orientation, and the
no-guessing rules (headerless, empty, random bytes)."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_tools.aedat2 import decode_aedat2, read_aedat2, write_aedat2
from data_tools.events import EVENT_DTYPE, make_events
from data_tools.inspect import inspect_file
from data_tools.sensors import DAVIS240, DAVIS346, DVS128
from gpusnn.errors import DataFormatError


def header(*lines: str) -> bytes:
    return b"".join(f"{ln}\r\n".encode() for ln in ("#!AER-DAT2.0", "# This is a raw AE data file", *lines))


def records(*pairs) -> bytes:
    """Big-endian (address, timestamp) records; addresses given as unsigned 32-bit values."""
    return b"".join(struct.pack(">Ii", a, t) for a, t in pairs)


def davis_dvs(x_raw, y_raw, on):
    """A DAVIS DVS address as jAER's DavisChip defines it: y bits 22-30, x bits 12-21, polarity bit 11."""
    return (y_raw << 22) | (x_raw << 12) | (on << 11)


APS = (1 << 31) | (17 << 22) | (33 << 12) | 0x155          # APS reset read of pixel (33, 17), ADC 0x155
IMU = 0x80000C00 | (2 << 28)                                 # bit 31 and bits 10, 11: an IMU sample word
EXTERNAL = 1 << 10 | 2                                       # bit 31 clear, bit 10: external input event


@pytest.mark.parametrize("chip_line, sensor", [
    ("# AEChip: eu.seebetter.ini.chips.davis.DAVIS240A", DAVIS240),
    ("# AEChip: eu.seebetter.ini.chips.davis.DAVIS240B", DAVIS240),
    ("# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C", DAVIS240),
    ("# AEChip: eu.seebetter.ini.chips.davis.Davis346B", DAVIS346),
    ("# AEChip: eu.seebetter.ini.chips.davis.Davis346red", DAVIS346),
    ("# AEChip: eu.seebetter.ini.chips.davis.Davis346blue", DAVIS346),
    ("# AEChip: eu.seebetter.ini.chips.davis.Davis346redColor", DAVIS346),
    ("# AEChip: eu.seebetter.ini.chips.davis.Davis346mini", DAVIS346),
    ("# HardwareInterface: CypressFX2DVS128HardwareInterface", DVS128),
    ("# AEChip: ch.unizh.ini.jaer.chip.retina.Tmpdiff128", DVS128),
])
def test_header_names_the_chip(tmp_path, chip_line, sensor):
    p = tmp_path / "a.aedat"
    p.write_bytes(header(chip_line) + records((5, 1)))
    assert decode_aedat2(p).sensor == sensor


@pytest.mark.parametrize("sensor, W, H", [(DAVIS240, 240, 180), (DAVIS346, 346, 260)])
def test_davis_layout_positions_polarity_and_skipped_records(tmp_path, sensor, W, H):
    chip = {DAVIS240: "eu.seebetter.ini.chips.davis.DAVIS240C", DAVIS346: "eu.seebetter.ini.chips.davis.Davis346red"}
    body = records((davis_dvs(0, 0, 1), 10),             # raw corner (0, 0), ON
                   (APS, 11), (IMU, 12), (IMU | 1, 12),    # frame and IMU samples: skipped
                   (davis_dvs(W - 1, H - 1, 0), 13),       # the opposite raw corner, OFF
                   (EXTERNAL, 14),                         # external input: skipped
                   (davis_dvs(W, 3, 1), 15),               # x one past the sensor: dropped
                   (davis_dvs(7, 9, 1) | 0x8, 16))         # bit 3 set: a bit no DAVIS DVS event sets
    p = tmp_path / "d.aedat"
    p.write_bytes(header(f"# AEChip: {chip[sensor]}", "# HardwareInterface: DAViSFX3HardwareInterface") + body)
    rec = decode_aedat2(p)
    assert rec.sensor == sensor and rec.sensor.size == (W, H, 2)
    assert rec.counts == {"dvs": 4, "special": 1, "aps": 1, "imu": 2}
    assert rec.outside_sensor == 1 and rec.unused_bits == 1
    # jAER's extractor: x = sizeX - 1 - raw x, y as stored, bit 11 set = ON
    np.testing.assert_array_equal(rec.events, make_events([W - 1, 0, W - 1 - 7], [0, H - 1, 9], [1, 0, 1], [10, 13, 16]))
    # top-left: both axes flipped (the camera's own pixel coordinates); doc: as stored
    tl = read_aedat2(p, "top-left")
    assert tl["x"].tolist() == [W - 1, 0, W - 8] and tl["y"].tolist() == [H - 1, 0, H - 10]
    doc = read_aedat2(p, "doc")
    assert doc["x"].tolist() == [0, W - 1, 7] and doc["y"].tolist() == [0, H - 1, 9]
    info = inspect_file(p)
    assert info["sensor"] == sensor.name and info["records"]["aps"] == 1 and info["unused_bits"] == 1
    assert any("never sets" in w for w in info["warnings"]) and any("dropped" in w for w in info["warnings"])


def test_dvs128_header_and_its_skipped_records(tmp_path):
    body = records(((3 << 8) | (5 << 1) | 1, 10), (1 << 15, 11), (1 << 31, 12), ((1 << 20) | (2 << 1), 13))
    p = tmp_path / "c.aedat"
    p.write_bytes(header("# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128") + body)
    rec = decode_aedat2(p)
    assert rec.sensor == DVS128 and rec.counts == {"dvs": 2, "special": 2, "aps": 0, "imu": 0}
    assert rec.unused_bits == 1                              # bit 20: a DVS128 never sets it
    np.testing.assert_array_equal(rec.events, make_events([5, 2], [3, 0], [1, 0], [10, 13]))


@pytest.mark.parametrize("sensor", ["dvs128", "davis240", "davis346"])
@pytest.mark.parametrize("convention", ["doc", "top-left", "jaer"])
def test_writer_round_trip_every_chip(tmp_path, sensor, convention):
    rng = np.random.default_rng(7)
    s = {"dvs128": DVS128, "davis240": DAVIS240, "davis346": DAVIS346}[sensor]
    ev = make_events(rng.integers(0, s.width, 400), rng.integers(0, s.height, 400), rng.integers(0, 2, 400),
                     np.sort(rng.integers(0, 2**34, 400)))
    p = tmp_path / "w.aedat"
    write_aedat2(p, ev, convention, sensor=sensor)
    assert b"# AEChip: " in p.read_bytes()[:200]
    rec = decode_aedat2(p, convention=convention)          # the chip comes back from the header
    assert rec.sensor == s
    np.testing.assert_array_equal(rec.events, ev)


def test_unknown_chip_names_the_header_line_and_can_be_forced(tmp_path):
    p = tmp_path / "u.aedat"
    p.write_bytes(header("# AEChip: net.sf.jaer.chip.FooRetina") + records((davis_dvs(1, 2, 1), 5)))
    with pytest.raises(DataFormatError, match=r"'# AEChip: net\.sf\.jaer\.chip\.FooRetina'.*--sensor"):
        read_aedat2(p)
    np.testing.assert_array_equal(read_aedat2(p, sensor="davis346"), make_events([344], [2], [1], [5]))
    assert inspect_file(p, sensor="davis346")["sensor"] == "davis346"
    q = tmp_path / "v.aedat"
    q.write_bytes(header("# HardwareInterface: DAViSFX3HardwareInterface") + records((5, 1)))
    with pytest.raises(DataFormatError, match="HardwareInterface: DAViSFX3HardwareInterface"):
        read_aedat2(q)
    q.write_bytes(header() + records((5, 1)))
    with pytest.raises(DataFormatError, match="no '# AEChip:'"):
        read_aedat2(q)


def test_headerless_empty_and_random_bytes_are_refused(tmp_path):
    rng = np.random.default_rng(123456)
    rand = tmp_path / "random.aedat"
    rand.write_bytes(b"\x00" + rng.bytes(123_455))       # the size of the example
    for call in (lambda: inspect_file(rand), lambda: read_aedat2(rand), lambda: read_aedat2(rand, sensor="dvs128")):
        with pytest.raises(DataFormatError, match="header"):
            call()
    with pytest.raises(DataFormatError, match="names no chip"):
        read_aedat2(rand, headerless=True)
    info = inspect_file(rand, format="aedat2", sensor="dvs128")  # named format and chip: decoded, with warnings
    assert info["format"].startswith("AEDAT 2.0 (dvs128, headerless")
    assert info["unused_bits"] > 0 and info["timestamps_backwards"] > 0 and len(info["warnings"]) >= 2
    empty = tmp_path / "empty.aedat"
    empty.write_bytes(b"")
    for call in (lambda: inspect_file(empty), lambda: read_aedat2(empty, sensor="dvs128", headerless=True),
                 lambda: inspect_file(empty, format="aedat2", sensor="dvs128")):
        with pytest.raises(DataFormatError, match="empty file"):
            call()


def test_plain_headerless_recording_with_named_format(tmp_path):
    p = tmp_path / "h.aedat"
    p.write_bytes(records(((3 << 8) | (5 << 1) | 1, 10), ((4 << 8) | (6 << 1), 9)))
    ev = read_aedat2(p, sensor="dvs128", headerless=True)
    np.testing.assert_array_equal(ev, make_events([5, 6], [3, 4], [1, 0], [10, 9]))
    info = inspect_file(p, format="aedat2", sensor="dvs128")
    assert info["timestamps_backwards"] == 1 and info["warnings"] == [
        "1 events with a timestamp before the previous event's"]


@settings(max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_chip_decoders_return_events_or_data_format_error(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("fuzz2")
    chip = data.draw(st.sampled_from(["eu.seebetter.ini.chips.davis.DAVIS240C",
                                      "eu.seebetter.ini.chips.davis.Davis346B",
                                      "ch.unizh.ini.jaer.chip.retina.DVS128"]))
    good = header(f"# AEChip: {chip}") + records((davis_dvs(3, 4, 1), 1), (APS, 2), (IMU, 3), (EXTERNAL, 4))
    blob = bytearray(good)
    mode = data.draw(st.sampled_from(["random", "mutate", "cut"]))
    if mode == "random":
        blob = bytearray(header(f"# AEChip: {chip}")) + data.draw(st.binary(max_size=400))
    elif mode == "mutate":
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    else:
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    path = base / "f.aedat"
    path.write_bytes(bytes(blob))
    for call in (lambda: read_aedat2(path), lambda: read_aedat2(path, sensor="davis346", headerless=True),
                 lambda: inspect_file(path)["events"]):
        try:
            out = call()
        except DataFormatError:
            continue
        if isinstance(out, np.ndarray):
            assert out.dtype == EVENT_DTYPE
            assert out.size == 0 or (out["x"].min() >= 0 and out["y"].min() >= 0)


def test_cli_data_inspect_format_and_sensor_flags(tmp_path, capsys):
    from gpusnn.cli import main
    p = tmp_path / "bare.aedat"
    p.write_bytes(records((davis_dvs(1, 2, 1), 5), (davis_dvs(3, 4, 0), 4)))
    assert main(["data", "inspect", str(p)]) == 2                     # no header: refused
    out = tmp_path / "info.json"
    assert main(["data", "inspect", str(p), "--format", "aedat2", "--sensor", "davis240", "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    assert info["sensor_size"] == [240, 180, 2] and info["events"] == 2 and info["timestamps_backwards"] == 1
    assert "warnings" in capsys.readouterr().out
    empty = tmp_path / "empty.aedat"
    empty.write_bytes(b"")
    assert main(["data", "inspect", str(empty)]) == 2


def test_jaer_end_of_header_line_ends_the_header_even_if_data_starts_with_hash(tmp_path):
    """jAER ends its header with `#!END-HEADER`; the first address here begins with byte 0x23
    ('#'), which must be read as data (y raw 140 puts 0x23 in the top byte)."""
    first = davis_dvs(5, 140, 1)
    assert struct.pack(">I", first)[:1] == b"#"
    p = tmp_path / "e.aedat"
    p.write_bytes(header("# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C", "#!END-HEADER")
                  + records((first, 7), (davis_dvs(6, 1, 0), 8)))
    np.testing.assert_array_equal(read_aedat2(p, "doc"), make_events([5, 6], [140, 1], [1, 0], [7, 8]))
