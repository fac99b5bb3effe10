"""The event array convention shared by every reader, writer and encoder (tonic's).

An event array is a 1-D NumPy structured array with dtype :data:`EVENT_DTYPE`:

    x int16   column, 0..W-1 (origin top-left unless a reader says otherwise)
    y int16   row, 0..H-1
    p bool    polarity, True = ON (brightness increase)
    t int64   timestamp in microseconds

and goes with a sensor size (W, H, P), e.g. :data:`DVS128_SENSOR` = (128, 128, 2).
"""
from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
DVS128_SENSOR = (128, 128, 2)

#: The 11 DVS128 Gesture classes, index 0..10 (the files number them 1..11).
GESTURE_CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
)


def make_events(x, y, p, t) -> np.ndarray:
    """Pack equal-length arrays (x, y pixels; p truthy = ON; t in us) into an event array [N]."""
    x = np.asarray(x)
    out = np.empty(x.shape[0], EVENT_DTYPE)
    out["x"] = x
    out["y"] = y
    out["p"] = p
    out["t"] = t
    return out


def empty_events() -> np.ndarray:
    """An event array with no events."""
    return np.empty(0, EVENT_DTYPE)


def is_time_sorted(events: np.ndarray) -> bool:
    """True when events["t"] is non-decreasing."""
    t = events["t"]
    return bool(t.size < 2 or np.all(t[1:] >= t[:-1]))


def sort_by_time(events: np.ndarray) -> np.ndarray:
    """Events in time order (stable, so equal timestamps keep file order)."""
    if is_time_sorted(events):
        return events
    return events[np.argsort(events["t"], kind="stable")]
