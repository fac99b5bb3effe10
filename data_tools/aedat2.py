"""AEDAT 2.0 (jAER) reader and writer for the DVS128 and the DAVIS240 / DAVIS346 families:
big-endian (int32 address, int32 timestamp in us) pairs after `#` header lines.

The sensor comes from the header (``# AEChip: <class>``, else a ``# HardwareInterface:``
line naming a known chip; see :mod:`data_tools.sensors`) or from the caller
(``sensor="davis346"``, which overrides the header). A file whose header names no known
chip, or that has no header, is refused unless the caller names the sensor (and, for a
headerless file, ``headerless=True``). An empty file is an error.

Address layouts (jAER ``DVS128.Extractor``; ``DavisChip`` constants read by
``DavisBaseCamera.DavisEventExtractor``):

- DVS128: bit 0 polarity, bits 1-7 x, bits 8-14 y; bit 15 (sync/external) or bit 31 set:
  a special event (skipped, counted). A DVS128 never sets bits 16-30.
- DAVIS: bit 31 = 0 is a DVS event: bit 10 external-input/special (skipped, counted),
  bit 11 polarity (1 = ON), bits 12-21 x, bits 22-30 y; bits 0-9 are never set. Bit 31 = 1 is
  an APS (frame) sample, or an IMU sample when bits 10 and 11 are also set
  (``addr & 0x80000C00 == 0x80000C00``); both skipped and counted.

Orientation and polarity are a :class:`Convention`, by name per chip (:data:`CONVENTIONS`):

- DVS128: ``doc`` (default; the format document: x, y as stored, (0, 0) lower left, bit 1 =
  ON), ``top-left`` (y = 127 - raw), ``jaer`` (jAER's extractor: x = 127 - raw, raw 0 = ON).
- DAVIS: ``jaer`` (default; jAER's extractor: x = W - 1 - raw, y as stored, (0, 0) lower
  left, bit 1 = ON), ``top-left`` (x = W - 1 - raw, y = H - 1 - raw: the camera's own
  top-left pixel coordinates, i.e. the inverse of the flips jAER's DAViSFX3HardwareInterface
  applies when it packs a USB event), ``doc`` (x, y as stored).

DVS events whose raw x or y does not fit the sensor are dropped and counted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_tools.errors import ConfigError, DataFormatError
from data_tools.events import EVENT_DTYPE
from data_tools.sensors import DAVIS240, DAVIS346, DVS128, Sensor, get_sensor, sensor_from_name, sensor_in_text
from data_tools.textheader import TextHeader, format_header, parse_header

log = logging.getLogger(__name__)

_EVENT = np.dtype([("addr", ">i4"), ("ts", ">i4")])
MAGIC = b"#!AER-DAT2"
#: The last header line jAER writes (optional: older files just start the data).
END_OF_HEADER = b"#!END-HEADER"
#: Record kinds, in the order of :attr:`Aedat2Recording.counts`.
KINDS = ("dvs", "special", "aps", "imu")
DVS, SPECIAL, APS, IMU = range(4)


@dataclass(frozen=True)
class Convention:
    """How raw address fields map to event x, y, p: flip_x gives x = W - 1 - raw, flip_y
    y = H - 1 - raw, on_bit is the raw polarity bit value that means ON."""

    flip_x: bool = False
    flip_y: bool = False
    on_bit: int = 1


@dataclass(frozen=True)
class Layout:
    """Where a chip's AEDAT 2.0 address keeps x, y and polarity (shift, width in bits), the
    bits a DVS event may set, and the chip's conventions by name with the default one."""

    name: str
    x_shift: int
    x_bits: int
    y_shift: int
    y_bits: int
    p_shift: int
    #: Bits a DVS record of this chip may set (records setting others are counted).
    dvs_bits: int
    conventions: dict = field(default_factory=dict)
    default: str = "doc"


DOC = Convention()
TOP_LEFT = Convention(flip_y=True)
JAER = Convention(flip_x=True, on_bit=0)
DVS128_LAYOUT = Layout("dvs128", 1, 7, 8, 7, 0, 0x7FFF,
                       {"doc": DOC, "top-left": TOP_LEFT, "jaer": JAER}, "doc")
DAVIS_LAYOUT = Layout("davis", 12, 10, 22, 9, 11, 0x7FFFF800,
                      {"doc": DOC, "top-left": Convention(flip_x=True, flip_y=True),
                       "jaer": Convention(flip_x=True)}, "jaer")
LAYOUTS = {DVS128: DVS128_LAYOUT, DAVIS240: DAVIS_LAYOUT, DAVIS346: DAVIS_LAYOUT}
#: The DVS128 conventions by name (kept for callers of the DVS128-only reader).
CONVENTIONS = DVS128_LAYOUT.conventions


@dataclass(frozen=True)
class Aedat2Recording:
    """A decoded AEDAT 2.0 file.

    events EVENT_DTYPE [N] (DVS events, file order, t unwrapped to int64 us);
    sensor and convention used; header (None for a headerless file);
    counts: records per kind in :data:`KINDS` (dvs counts the DVS records before dropping);
    unused_bits: DVS records with address bits the chip never sets (decoded all the same);
    outside_sensor: DVS records whose x or y does not fit the sensor (dropped).
    """

    events: np.ndarray
    sensor: Sensor
    convention: Convention
    header: TextHeader | None
    counts: dict
    unused_bits: int
    outside_sensor: int


def header_sensor(header: TextHeader, path) -> Sensor:
    """The sensor named by an AEDAT 2.0 header; DataFormatError naming the header line when
    it names an unknown chip or none."""
    chip = next((ln for ln in header.lines if ln.strip().startswith("AEChip:")), None)
    if chip is not None:
        found = sensor_from_name(chip.split(":", 1)[1])
        if found is None:
            raise DataFormatError(f"{path}: header line '#{chip.rstrip()}' names a chip this reader does not know "
                                  "(known: DVS128, DAVIS240A/B/C, DAVIS346*); force a layout with sensor=... "
                                  "(CLI: --sensor dvs128|davis240|davis346)")
        return found
    hw = next((ln for ln in header.lines if ln.strip().startswith("HardwareInterface:")), None)
    found = sensor_in_text(hw) if hw is not None else None
    if found is None:
        what = f"header line '#{hw.rstrip()}' does not name a known chip" if hw is not None else \
            "header has no '# AEChip:' or '# HardwareInterface:' line naming the chip"
        raise DataFormatError(f"{path}: {what}; name the sensor with sensor=... "
                              "(CLI: --sensor dvs128|davis240|davis346)")
    return found


def _resolve_convention(layout: Layout, convention) -> Convention:
    if convention is None:
        return layout.conventions[layout.default]
    if isinstance(convention, Convention):
        return convention
    if convention not in layout.conventions:
        raise ConfigError(f"unknown convention {convention!r}: expected one of {sorted(layout.conventions)}")
    return layout.conventions[convention]


def classify(addr: np.ndarray, layout: Layout) -> np.ndarray:
    """Record kind (index into KINDS, uint8 [N]) of each raw address (int64 [N], 0..2**32-1)."""
    kind = np.zeros(addr.size, np.uint8)
    if layout.name == "dvs128":
        kind[(addr & ((1 << 15) | (1 << 31))) != 0] = SPECIAL
        return kind
    high = (addr >> 31) == 1
    kind[~high & ((addr & (1 << 10)) != 0)] = SPECIAL
    kind[high] = APS
    kind[(addr & 0x80000C00) == 0x80000C00] = IMU
    return kind


def _body(buf, path, start: int) -> np.ndarray:
    rest = len(buf) - start
    if rest % _EVENT.itemsize:
        raise DataFormatError(f"{path}: byte offset {len(buf) - rest % _EVENT.itemsize}: truncated event "
                              f"({rest % _EVENT.itemsize} trailing bytes, events are 8 bytes)")
    return np.frombuffer(buf, _EVENT, offset=start)


def unwrap32(ts: np.ndarray) -> np.ndarray:
    """32-bit timestamps (int64 [N], 0..2**32-1) made monotonic across wrap-arounds: +2**32
    after each drop of more than 2**31."""
    if ts.size > 1:
        ts = ts + (np.concatenate(([0], np.cumsum(np.diff(ts) < -(1 << 31)))) << 32)
    return ts


def decode_aedat2(path, *, sensor=None, convention=None, headerless: bool = False) -> Aedat2Recording:
    """Decode an AEDAT 2.0 file (see the module docstring).

    sensor: a name in data_tools.sensors.SENSORS or a Sensor, overriding the header;
    convention: a name (per chip) or a Convention, default the chip's default;
    headerless: accept a file without the ``#!AER-DAT2`` header (sensor then required).
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DataFormatError(f"{path}: byte offset 0: empty file (no AEDAT 2.0 header, no events)")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    forced = get_sensor(sensor)
    if not headerless and bytes(buf[:len(MAGIC)]) != MAGIC:
        raise DataFormatError(f"{path}: byte offset 0: no AEDAT 2.0 header (expected {MAGIC!r}, found "
                              f"{bytes(buf[:len(MAGIC)])!r}); to read headerless AEDAT 2.0 data name the format "
                              "and sensor (headerless=True, sensor=...; CLI: --format aedat2 --sensor ...)")
    if buf[0] == ord("#"):
        header = parse_header(buf, path, magic=MAGIC, end_marker=None, optional_end=END_OF_HEADER)
        chip = forced or header_sensor(header, path)
        start = header.data_offset
    else:
        if forced is None:
            raise DataFormatError(f"{path}: byte offset 0: headerless AEDAT 2.0 data names no chip; name the "
                                  "sensor with sensor=... (CLI: --sensor dvs128|davis240|davis346)")
        header, chip, start = None, forced, 0
    layout = LAYOUTS[chip]
    conv = _resolve_convention(layout, convention)
    raw = _body(buf, path, start)
    addr = raw["addr"].astype(np.int64) & 0xFFFFFFFF
    kind = classify(addr, layout)
    counts = dict(zip(KINDS, np.bincount(kind, minlength=len(KINDS)).tolist()))
    dvs = kind == DVS
    addr = addr[dvs]
    ts = unwrap32(raw["ts"][dvs].astype(np.int64) & 0xFFFFFFFF)
    unused = int(np.count_nonzero(addr & ~layout.dvs_bits & 0xFFFFFFFF))
    x = (addr >> layout.x_shift) & ((1 << layout.x_bits) - 1)
    y = (addr >> layout.y_shift) & ((1 << layout.y_bits) - 1)
    inside = (x < chip.width) & (y < chip.height)
    outside = int(inside.size - np.count_nonzero(inside))
    if outside:
        addr, ts, x, y = addr[inside], ts[inside], x[inside], y[inside]
    out = np.empty(addr.size, EVENT_DTYPE)
    out["x"] = chip.width - 1 - x if conv.flip_x else x
    out["y"] = chip.height - 1 - y if conv.flip_y else y
    out["p"] = ((addr >> layout.p_shift) & 1) == conv.on_bit
    out["t"] = ts
    log.debug("%s: %s, %s", path, chip.name, counts)
    return Aedat2Recording(out, chip, conv, header, counts, unused, outside)


def read_aedat2(path, convention=None, *, sensor=None, headerless: bool = False) -> np.ndarray:
    """DVS events of an AEDAT 2.0 file, in file order: EVENT_DTYPE [N] (see decode_aedat2)."""
    return decode_aedat2(path, sensor=sensor, convention=convention, headerless=headerless).events


def encode_addresses(events: np.ndarray, sensor: Sensor, convention: Convention) -> np.ndarray:
    """Raw AEDAT 2.0 DVS addresses (int64 [N]) of events on sensor under convention (the
    inverse of the decoder)."""
    layout = LAYOUTS[sensor]
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    if x.size and (min(x.min(), y.min()) < 0 or x.max() >= sensor.width or y.max() >= sensor.height):
        raise ValueError(f"AEDAT 2.0 {sensor.name} events need x in 0..{sensor.width - 1}, y in 0..{sensor.height - 1}")
    x = sensor.width - 1 - x if convention.flip_x else x
    y = sensor.height - 1 - y if convention.flip_y else y
    bit = np.where(events["p"], convention.on_bit, 1 - convention.on_bit).astype(np.int64)
    return (y << layout.y_shift) | (x << layout.x_shift) | (bit << layout.p_shift)


#: The `# AEChip:` class jAER writes for each sensor (the writer uses it).
JAER_CLASSES = {DVS128: "ch.unizh.ini.jaer.chip.retina.DVS128", DAVIS240: "eu.seebetter.ini.chips.davis.DAVIS240C",
                DAVIS346: "eu.seebetter.ini.chips.davis.Davis346B"}


def write_aedat2(path, events: np.ndarray, convention=None, header_fields: dict | None = None, *,
                 sensor=DVS128) -> None:
    """Write DVS events as AEDAT 2.0 for sensor (default DVS128) under convention (default the
    chip's), with jAER's ``# AEChip:`` and ``#!END-HEADER`` header lines; the inverse of
    read_aedat2. Timestamps are stored modulo 2**32."""
    chip = get_sensor(sensor)
    conv = _resolve_convention(LAYOUTS[chip], convention)
    raw = np.empty(events.size, _EVENT)
    raw["addr"] = (encode_addresses(events, chip, conv) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    raw["ts"] = (events["t"] & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    with open(path, "wb") as f:
        f.write(format_header("#!AER-DAT2.0", {" AEChip": JAER_CLASSES[chip], **(header_fields or {})},
                              END_OF_HEADER.decode()))
        f.write(raw.tobytes())
