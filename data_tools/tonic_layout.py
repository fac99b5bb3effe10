"""tonic's preprocessed DVSGesture layout: `ibmGestureTrain/userNN_<lighting>/<k>.npy` and
`ibmGestureTest/...`, each an (N, 4) array of x, y, p, t with t in milliseconds and k the
class index 0..10 (one sample per class and trial)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_tools.errors import DataFormatError
from data_tools.events import DVS128_SENSOR, make_events
from data_tools.samples import SampleSet, concat_sets, from_samples

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


def iter_tonic_dir(root, *, progress: bool = False) -> Iterator[SampleSet]:
    """The samples of a tonic-layout directory one trial folder at a time (train first). A
    sample's duration is its last event time + 1 us."""
    root = Path(root)
    trials = [(is_train, split, t) for is_train, split in SPLIT_DIRS.items()
              for t in sorted(p for p in (root / split).glob("user*_*") if p.is_dir())]
    for is_train, split, trial in tqdm(trials, desc="reading trials", disable=not progress, unit="trial"):
        user, lighting = trial.name.split("_", 1)
        samples, labels = [], []
        for f in sorted(trial.glob("*.npy"), key=lambda p: p.stem):
            if not f.stem.isdigit() or not 0 <= int(f.stem) <= 10:
                raise DataFormatError(f"{f}: file name must be the class index 0..10")
            samples.append(read_tonic_npy(f))
            labels.append(int(f.stem))
        n = len(samples)
        yield from_samples(samples, labels=labels, durations=[int(ev["t"].max()) + 1 if ev.size else 1 for ev in samples],
                           window_start=[0] * n, users=[int(user[4:])] * n, lighting=[lighting] * n,
                           train=[is_train] * n, trial=[f"{split}/{trial.name}"] * n, sensor_size=DVS128_SENSOR,
                           counting_rule="one per file", source=str(root))


def load_tonic_dir(root) -> SampleSet:
    """All samples of a tonic-layout directory (train first, then test), in memory."""
    return concat_sets(list(iter_tonic_dir(root)), source=str(Path(root)), counting_rule="one per file",
                       sensor_size=DVS128_SENSOR)
