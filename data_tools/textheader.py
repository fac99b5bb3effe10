"""The `#`-line text headers of AEDAT files (shared by the 2.0 and 3.1 readers)."""
from __future__ import annotations

from dataclasses import dataclass, field

from data_tools.errors import DataFormatError

#: Longest header this project accepts (bytes); real headers are a few kB.
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class TextHeader:
    """A parsed header: the raw lines (without `#` and line end), `key: value` fields and the
    byte offset where binary data starts."""

    version: str
    lines: tuple[str, ...]
    fields: dict = field(default_factory=dict)
    data_offset: int = 0


def _fields(lines) -> dict:
    out = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key and not key.startswith("!"):
            out[key.strip()] = value.strip()
    return out


def parse_header(buf, path, *, magic: bytes, end_marker: bytes | None, optional_end: bytes | None = None) -> TextHeader:
    """Parse `#` lines at the start of buf (a bytes-like object of the whole file).

    With end_marker (AEDAT 3.1: b"#!END-HEADER") the header must end with that line, else
    DataFormatError; without it (AEDAT 2.0) the header ends after an optional_end line (jAER
    writes b"#!END-HEADER"; binary data after it may well start with a `#` byte) or else at
    the first line that does not start with `#`. The first line must start with magic (e.g.
    b"#!AER-DAT3").
    """
    n = len(buf)
    head = bytes(buf[:len(magic)])
    if head != magic:
        raise DataFormatError(f"{path}: byte offset 0: expected {magic!r} at the start of the file, found {head!r}")
    lines, pos = [], 0
    while True:
        if end_marker is None and (pos >= n or buf[pos] != ord("#")):
            break
        if pos >= n or buf[pos] != ord("#"):
            raise DataFormatError(f"{path}: byte offset {pos}: missing end-of-header line {end_marker!r} "
                                  "(header line not starting with '#' or end of file)")
        stop = min(n, pos + MAX_HEADER_BYTES)
        nl = bytes(buf[pos:stop]).find(b"\n")
        if nl < 0:
            raise DataFormatError(f"{path}: byte offset {pos}: header line without line end "
                                  f"(missing end-of-header{' ' + repr(end_marker) if end_marker else ''})")
        raw = bytes(buf[pos:pos + nl]).rstrip(b"\r")
        pos += nl + 1
        if pos > MAX_HEADER_BYTES:
            raise DataFormatError(f"{path}: byte offset {pos}: header longer than {MAX_HEADER_BYTES} bytes")
        if end_marker is not None and raw == end_marker or optional_end is not None and raw == optional_end:
            break
        lines.append(raw.decode("latin-1")[1:])
    version = lines[0][1:] if lines else magic.decode()[2:]
    return TextHeader(version=version, lines=tuple(lines), fields=_fields(lines[1:]), data_offset=pos)


def format_header(first: str, fields: dict, last: str | None) -> bytes:
    """Header bytes: `#first`, one `#key: value` line per field, then `#last` (CRLF lines)."""
    lines = [first] + [f"#{k}: {v}" for k, v in fields.items()] + ([last] if last else [])
    return "".join(line + "\r\n" for line in lines).encode("latin-1")
