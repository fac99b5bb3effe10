"""tonic's preprocessed DVSGesture layout: `ibmGestureTrain/userNN_<lighting>/<k>.npy` and
`ibmGestureTest/...`, each an (N, 4) array of x, y, p, t with t in milliseconds and k the
class index 0..10 (one sample per class and trial)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import DVS128_SENSOR, make_events
from data_tools.samples import SampleSet, from_samples

SPLIT_DIRS = {True: "ibmGestureTrain", False: "ibmGestureTest"}


def read_tonic_npy(path) -> np.ndarray:
    """Events of one tonic .npy sample, t converted to microseconds and re-based to 0."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(f"{path}: expected a numeric (N, 4) array x, y, p, t[ms], found {arr.dtype} {arr.shape}")
    t = np.round(arr[:, 3].astype(np.float64) * 1000).astype(np.int64)
    return make_events(arr[:, 0], arr[:, 1], arr[:, 2] > 0, t - (t.min() if t.size else 0))


def write_tonic_npy(path, events: np.ndarray) -> None:
    """Save events as tonic's (N, 4) float array with t in milliseconds."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack([events["x"], events["y"], events["p"], events["t"] / 1000.0], axis=1))


def is_tonic_dir(root) -> bool:
    """True when root holds tonic's ibmGestureTrain / ibmGestureTest folders."""
    return any((Path(root) / d).is_dir() for d in SPLIT_DIRS.values())


def load_tonic_dir(root) -> SampleSet:
    """All samples of a tonic-layout directory (train first, then test). A sample's duration is
    its last event time + 1 us."""
    root = Path(root)
    samples, fields = [], {k: [] for k in ("labels", "durations", "window_start", "users", "lighting", "train", "trial")}
    for is_train, split in SPLIT_DIRS.items():
        for trial in sorted(p for p in (root / split).glob("user*_*") if p.is_dir()):
            user, lighting = trial.name.split("_", 1)
            for f in sorted(trial.glob("*.npy"), key=lambda p: p.stem):
                if not f.stem.isdigit() or not 0 <= int(f.stem) <= 10:
                    raise DataFormatError(f"{f}: file name must be the class index 0..10")
                ev = read_tonic_npy(f)
                samples.append(ev)
                fields["labels"].append(int(f.stem))
                fields["durations"].append(int(ev["t"].max()) + 1 if ev.size else 1)
                fields["window_start"].append(0)
                fields["users"].append(int(user[4:]))
                fields["lighting"].append(lighting)
                fields["train"].append(is_train)
                fields["trial"].append(f"{split}/{trial.name}")
    return from_samples(samples, **fields, sensor_size=DVS128_SENSOR, counting_rule="one per file", source=str(root))
