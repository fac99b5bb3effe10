"""Prophesee EVT 2.0: a real recording against another tool's reader, and byte-built files."""
import struct
from pathlib import Path

import numpy as np
import pytest

from data_tools.evt2 import read_evt2, sensor_size
from data_tools.inspect import inspect_file
from gpusnn.errors import DataFormatError

REAL = Path(__file__).parent / "data" / "prophesee_gen3_vga_evt2.raw"


def test_real_recording_matches_expelliarmus_and_its_provenance():
    from expelliarmus import Wizard        # a dependency of tonic: an independent EVT 2.0 reader
    ev, fields = read_evt2(REAL)
    peer = Wizard(encoding="evt2").read(str(REAL))
    assert ev.size == peer.size == 521_252          # as stated by the file's provenance
    for ours, theirs in (("t", "t"), ("x", "x"), ("y", "y")):
        np.testing.assert_array_equal(ev[ours], peer[theirs])
    np.testing.assert_array_equal(ev["p"], peer["p"].astype(bool))
    assert fields["evt"] == "2.0" and ev["x"].max() < 640 and ev["y"].max() < 480
    assert (ev["t"][-1] - ev["t"][0]) == pytest.approx(96_000, rel=0.01)   # about 0.096 s


def words(*ws):
    return struct.pack(f"<{len(ws)}I", *ws)


def cd(kind, low, x, y):
    return (kind << 28) | (low << 22) | (x << 11) | y


def test_byte_built_file_decodes(tmp_path):
    p = tmp_path / "a.raw"
    body = words(cd(1, 5, 3, 4),                     # before any TIME_HIGH: high = 0
                 (0x8 << 28) | 2, cd(0, 63, 639, 479),
                 (0xA << 28) | 7,                    # an external trigger: skipped
                 (0x8 << 28) | 3, cd(1, 0, 0, 0))
    p.write_bytes(b"% evt 2.0\n% geometry 640x480\n% end\n" + body)
    ev, fields = read_evt2(p)
    assert sensor_size(fields) == (640, 480, 2)
    assert ev["t"].tolist() == [5, (2 << 6) | 63, 3 << 6]
    assert ev["x"].tolist() == [3, 639, 0] and ev["y"].tolist() == [4, 479, 0]
    assert ev["p"].tolist() == [True, False, True]
    info = inspect_file(p)
    assert info["format"] == "Prophesee RAW EVT 2.0" and info["events"] == 3


@pytest.mark.parametrize("body, message", [
    (b"% evt 3.0\n" + words(0), "header says EVT 3.0; this reader decodes EVT 2.0"),
    (b"", "byte offset 0: empty file"),
    (words(cd(1, 5, 3, 4)), r"no '% evt 2.0'.*--format evt2"),
    (b"% geometry 640x480\n" + words(cd(1, 5, 3, 4)), r"no '% evt 2.0'"),
    (b"% evt 2.0\n" + words(0) + b"\x01\x02", r"byte offset 14: truncated word"),
    (b"% evt 2.0\n" + words(0, 0x5 << 28), r"byte offset 14: unknown EVT 2.0 word type 0x5"),
])
def test_bad_files_name_the_problem(tmp_path, body, message):
    p = tmp_path / "bad.raw"
    p.write_bytes(body)
    with pytest.raises(DataFormatError, match=message):
        read_evt2(p)


def test_named_encoding_reads_a_file_whose_header_does_not_say(tmp_path):
    p = tmp_path / "bare.raw"
    p.write_bytes(b"% geometry 640x480\n" + words((0x8 << 28) | 1, cd(1, 5, 3, 4)))
    ev, _ = read_evt2(p, encoding="evt2")
    assert ev["t"].tolist() == [(1 << 6) | 5] and ev["x"].tolist() == [3] and ev["y"].tolist() == [4]
    info = inspect_file(p, format="evt2")
    assert info["sensor_size"] == [640, 480, 2] and info["events"] == 1 and info["warnings"] == []
    with pytest.raises(DataFormatError, match="no recognised header"):
        inspect_file(p)
    q = tmp_path / "fmt.raw"
    q.write_bytes(b"% format EVT2;height=480;width=640\n% end\n" + words(cd(0, 1, 700, 2)))
    info = inspect_file(q)                           # `format EVT2;...` names the encoding too
    assert info["format"] == "Prophesee RAW EVT 2.0" and info["outside_sensor"] == 1
    assert info["warnings"] == ["1 events outside the sensor"]
