"""AEDAT 4.0 through the optional `aedat` package (pip install gpusnn[aedat4])."""
from __future__ import annotations

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE, empty_events


def _decoder(path):
    try:
        import aedat
    except ImportError as exc:  # optional dependency
        raise ImportError("reading AEDAT 4 files needs the 'aedat' package: pip install aedat "
                          "(or gpusnn[aedat4])") from exc
    try:
        return aedat.Decoder(str(path))
    except Exception as exc:  # the Rust decoder raises plain exceptions on bad files
        raise DataFormatError(f"{path}: byte offset 0: not a readable AEDAT 4 file ({exc})") from exc


def read_aedat4(path) -> np.ndarray:
    """All polarity events of an AEDAT 4.0 file (every event stream), in file order. [N]"""
    parts = []
    try:
        for packet in _decoder(path):
            ev = packet.get("events")
            if ev is not None and len(ev):
                out = np.empty(len(ev), EVENT_DTYPE)
                out["x"], out["y"], out["p"], out["t"] = ev["x"], ev["y"], ev["on"], ev["t"]
                parts.append(out)
    except DataFormatError:
        raise
    except Exception as exc:
        raise DataFormatError(f"{path}: corrupt AEDAT 4 packet ({exc})") from exc
    return np.concatenate(parts) if parts else empty_events()
