"""AEDAT 4.0 through the optional `aedat` package (pip install gpusnn[aedat4]).

The sensor size is the event stream's sizeX / sizeY in the file's stream description (the
IOHeader's XML, which the `aedat` decoder exposes per stream), never the data's maximum;
event streams of different sizes in one file are an error. Frame, IMU and trigger packets
are skipped and counted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE, empty_events

#: Packet keys of the non-event streams the reader skips, and what is counted for each.
SKIPPED = {"frame": "frames", "imus": "imu samples", "triggers": "triggers"}


@dataclass(frozen=True)
class Aedat4Recording:
    """events EVENT_DTYPE [N] (every event stream, file order); sensor_size (W, H, 2) from
    the stream description; skipped: {"frames": packets, "imu samples": n, "triggers": n}."""

    events: np.ndarray
    sensor_size: tuple
    skipped: dict


def _decoder(path):
    try:
        import aedat
    except ImportError as exc:  # optional dependency
        raise ImportError("reading AEDAT 4 files needs the 'aedat' package: pip install aedat "
                          "(or gpusnn[aedat4])") from exc
    if Path(path).stat().st_size == 0:
        raise DataFormatError(f"{path}: byte offset 0: empty file (no AEDAT 4 header, no events)")
    try:
        return aedat.Decoder(str(path))
    except Exception as exc:  # the Rust decoder raises plain exceptions on bad files
        raise DataFormatError(f"{path}: byte offset 0: not a readable AEDAT 4 file ({exc})") from exc


def stream_sensor_size(streams: dict, path) -> tuple:
    """(W, H, 2) of the event streams in a decoder's id_to_stream(); DataFormatError when
    there is none or their sizes differ."""
    sizes = {(int(s["width"]), int(s["height"])) for s in streams.values() if s.get("type") == "events"}
    if len(sizes) != 1 or min(min(sizes)) <= 0:
        raise DataFormatError(f"{path}: the stream description must give one event-stream size (sizeX, sizeY); "
                              f"found {sorted(sizes) or 'no event stream'}")
    (w, h), = sizes
    return (w, h, 2)


def decode_aedat4(path) -> Aedat4Recording:
    """All polarity events of an AEDAT 4.0 file with the sensor size and the skipped counts."""
    decoder = _decoder(path)
    size = stream_sensor_size(decoder.id_to_stream(), path)
    parts, skipped = [], Counter()
    try:
        for packet in decoder:
            ev = packet.get("events")
            if ev is not None and len(ev):
                out = np.empty(len(ev), EVENT_DTYPE)
                out["x"], out["y"], out["p"], out["t"] = ev["x"], ev["y"], ev["on"], ev["t"]
                parts.append(out)
            for key, name in SKIPPED.items():
                if key in packet:
                    skipped[name] += 1 if key == "frame" else len(packet[key])
    except Exception as exc:
        raise DataFormatError(f"{path}: corrupt AEDAT 4 packet ({exc})") from exc
    return Aedat4Recording(np.concatenate(parts) if parts else empty_events(), size, dict(skipped))


def read_aedat4(path) -> np.ndarray:
    """All polarity events of an AEDAT 4.0 file (every event stream), in file order. [N]"""
    return decode_aedat4(path).events
