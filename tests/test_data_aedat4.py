"""AEDAT 4.0 (data_tools.aedat4 through the `aedat` package): files built byte by byte from the
AEDAT 4 layout (magic, IOHeader flatbuffer with the XML stream description, then per packet
int32 stream id, uint32 size and a size-prefixed flatbuffer with the stream's identifier);
sensor size from the description, not the data; skipped streams; bad input."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("aedat")

from data_tools.aedat4 import decode_aedat4, read_aedat4  # noqa: E402
from data_tools.events import make_events  # noqa: E402
from data_tools.inspect import inspect_file  # noqa: E402
from gpusnn.errors import DataFormatError  # noqa: E402

MAGIC = b"#!AER-DAT4.0\r\n"


def stream_xml(streams) -> str:
    """The IOHeader description: one `outInfo/<id>` node per (id, identifier, size or None)."""
    nodes = []
    for sid, ident, size in streams:
        info = "" if size is None else (f'<node name="info" path="/outInfo/{sid}/info/">'
                                        f'<attr key="sizeX" type="int">{size[0]}</attr>'
                                        f'<attr key="sizeY" type="int">{size[1]}</attr>'
                                        f'<attr key="source" type="string">DAVIS346_00000499</attr></node>')
        nodes.append(f'<node name="{sid}" path="/outInfo/{sid}/"><attr key="compression" type="string">NONE</attr>'
                     f'<attr key="typeIdentifier" type="string">{ident}</attr>{info}</node>')
    return f'<dv version="2.0"><node name="outInfo" path="/outInfo/">{"".join(nodes)}</node></dv>'


def ioheader(description: str) -> bytes:
    """Flatbuffer table Ioheader {compression: int32 = 0 (None); file_data_position absent
    (default -1); description: string}: root offset, vtable, table, string."""
    text = description.encode() + b"\0"
    vtable = struct.pack("<5H", 10, 12, 4, 0, 8) + b"\0\0"          # at 4: sizes, field offsets
    table = struct.pack("<iiI", 16 - 4, 0, 28 - 24)                  # at 16: soffset, compression, string offset
    buf = struct.pack("<I", 16) + vtable + table + struct.pack("<I", len(text) - 1) + text
    return buf + b"\0" * (-len(buf) % 4)


def events_packet(events: np.ndarray) -> bytes:
    """Size-prefixed flatbuffer "EVTS": table EventPacket {elements: [Event]} with the struct
    Event {t: int64; x: int16; y: int16; on: bool} (16 bytes, 8-aligned)."""
    body = struct.pack("<I4s", 16, b"EVTS")                          # root offset: table at 16
    body += struct.pack("<3H", 6, 8, 4) + b"\0\0"                    # vtable at 8
    body += struct.pack("<iII", 8, 4, events.size)                   # table at 16; vector at 24: n
    for e in events:
        body += struct.pack("<qhh?3x", int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
    return struct.pack("<I", len(body)) + body


def triggers_packet(times) -> bytes:
    """Size-prefixed "TRIG": TriggerPacket {elements: [Trigger]}, a vector of offsets to tables
    Trigger {t: int64; source: int8 = 0 (absent)} sharing one vtable. Offsets below count from
    just after the size prefix; 8-byte fields sit at multiples of 8 of the whole buffer."""
    n = len(times)
    vt = 28 + 4 * n                                                  # after the n element offsets
    first = vt + 6 + (4 - (vt + 6)) % 8                              # tables at 4 mod 8: t at 0 mod 8
    body = struct.pack("<I4s", 16, b"TRIG") + struct.pack("<3H", 6, 8, 4) + b"\0\0"
    body += struct.pack("<iII", 8, 4, n)                             # table at 16, vector at 24
    body += b"".join(struct.pack("<I", first + 16 * k - (28 + 4 * k)) for k in range(n))
    body += struct.pack("<3H", 6, 16, 8) + b"\0" * (first - vt - 6)
    for k, t in enumerate(times):
        body += struct.pack("<i4xq", first + 16 * k - vt, t)
    return struct.pack("<I", len(body)) + body


def aedat4_file(path, streams, packets) -> None:
    head = ioheader(stream_xml(streams))
    data = MAGIC + struct.pack("<I", len(head)) + head
    for sid, buf in packets:
        data += struct.pack("<iI", sid, len(buf)) + buf
    path.write_bytes(data)


def test_byte_built_file_sensor_size_from_the_description(tmp_path):
    a = make_events([0, 5, 7], [1, 2, 3], [1, 0, 1], [10, 20, 30])
    b = make_events([9], [4], [0], [40])
    p = tmp_path / "a.aedat4"
    aedat4_file(p, [(0, "EVTS", (346, 260)), (1, "TRIG", None)],
                [(0, events_packet(a)), (1, triggers_packet([15, 25])), (0, events_packet(b))])
    rec = decode_aedat4(p)
    np.testing.assert_array_equal(rec.events, np.concatenate([a, b]))
    assert rec.sensor_size == (346, 260, 2)                          # the data's maximum is 9 x 4
    assert rec.skipped == {"triggers": 2}
    info = inspect_file(p)
    assert info["format"] == "AEDAT 4.0" and info["sensor_size"] == [346, 260, 2] and info["events"] == 4
    assert info["warnings"] == []


def test_plausibility_of_events_outside_the_described_sensor(tmp_path):
    p = tmp_path / "o.aedat4"
    aedat4_file(p, [(0, "EVTS", (128, 128))], [(0, events_packet(make_events([127, 130], [0, 5], [1, 1], [9, 3])))])
    info = inspect_file(p)
    assert info["outside_sensor"] == 1 and info["timestamps_backwards"] == 1 and len(info["warnings"]) == 2


def test_event_streams_of_two_sizes_are_an_error(tmp_path):
    p = tmp_path / "two.aedat4"
    aedat4_file(p, [(0, "EVTS", (346, 260)), (1, "EVTS", (640, 480))], [])
    with pytest.raises(DataFormatError, match="one event-stream size"):
        read_aedat4(p)


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (MAGIC + b"\x05\x00", "not a readable AEDAT 4 file"),
    (b"#!AER-DAT4.1\r\n" + bytes(40), "not a readable AEDAT 4 file"),
])
def test_bad_files(tmp_path, data, message):
    p = tmp_path / "bad.aedat4"
    p.write_bytes(data)
    with pytest.raises(DataFormatError, match=message):
        read_aedat4(p)


def test_truncated_packet(tmp_path):
    p = tmp_path / "t.aedat4"
    aedat4_file(p, [(0, "EVTS", (128, 128))], [(0, events_packet(make_events([1], [2], [1], [3])))])
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match="corrupt AEDAT 4 packet"):
        read_aedat4(p)


def good_file(tmp_path):
    p = tmp_path / "g.aedat4"
    aedat4_file(p, [(0, "EVTS", (346, 260)), (1, "TRIG", None)],
                [(0, events_packet(make_events([0, 5], [1, 2], [1, 0], [10, 20]))), (1, triggers_packet([15]))])
    return p


@pytest.mark.parametrize("pos, value, message", [
    (14, 0, "description outside the header"),           # the IOHeader length: 572 -> 512
    (18, 0xFF, "table or vtable outside the header"),     # the root offset
    (34, 0xFF, "outside the header"),                     # the description's offset
    (60, 0xDF, "not UTF-8"),                              # inside the XML text
])
def test_corrupt_ioheader_is_refused_before_the_decoder_reads_it(tmp_path, pos, value, message):
    """The `aedat` decoder reads the IOHeader unchecked: these bytes made it panic (and the
    non-UTF-8 description abort the interpreter)."""
    p = good_file(tmp_path)
    b = bytearray(p.read_bytes())
    b[pos] = value
    p.write_bytes(bytes(b))
    with pytest.raises(DataFormatError, match=message):
        read_aedat4(p)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_returns_events_or_data_format_error(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("fuzz4")
    blob = bytearray(good_file(base).read_bytes())
    if data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 6))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    else:
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    p = base / "f.aedat4"
    p.write_bytes(bytes(blob))
    try:
        rec = decode_aedat4(p)
    except DataFormatError:
        return
    assert rec.events.dtype.names == ("x", "y", "p", "t") and len(rec.sensor_size) == 3
