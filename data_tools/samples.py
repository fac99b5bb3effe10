"""SampleSet: labelled event samples of a whole dataset in flat arrays (what the layouts
produce, the event store saves and the encoder consumes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.events import EVENT_DTYPE, empty_events

#: the event store's column types (t re-based to the window start fits int32: < 35 min)
COLUMN_DTYPES = {"x": np.int16, "y": np.int16, "p": np.uint8, "t": np.int32}
FIELDS = ("labels", "durations", "window_start", "users", "lighting", "train", "trial")


@dataclass(frozen=True)
class SampleSet:
    """S samples; sample i's events are events[offsets[i]:offsets[i + 1]] with times re-based
    to its window start, so 0 <= t < durations[i] (us).

    events  EVENT_DTYPE [N]   offsets int64 [S + 1]   labels int64 [S] (0..10)
    durations int64 [S] (us)  window_start int64 [S] (us, recording clock)
    users int64 [S]   lighting str [S]   train bool [S]   trial str [S]
    sensor_size (W, H, P) of the recordings (the encoder's input layout follows it)
    """

    events: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    durations: np.ndarray
    window_start: np.ndarray
    users: np.ndarray
    lighting: np.ndarray
    train: np.ndarray
    trial: np.ndarray
    sensor_size: tuple
    counting_rule: str
    source: str

    def __len__(self) -> int:
        return int(self.labels.size)

    def sample(self, i: int) -> np.ndarray:
        """Events of sample i."""
        return self.events[self.offsets[i]:self.offsets[i + 1]]

    def subset(self, index) -> "SampleSet":
        """The samples at index (int array or bool mask), in that order."""
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, np.int64)
        starts, stops = self.offsets[index], self.offsets[index + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        events = self.events[np.arange(total, dtype=np.int64) + shift]
        return SampleSet(events, np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), self.labels[index],
                         self.durations[index], self.window_start[index], self.users[index], self.lighting[index],
                         self.train[index], self.trial[index], self.sensor_size, self.counting_rule, self.source)


def from_samples(samples: list[np.ndarray], *, labels, durations, window_start, users, lighting, train, trial,
                 sensor_size, counting_rule: str, source: str) -> SampleSet:
    """Build a SampleSet from a list of per-sample event arrays and per-sample fields."""
    lengths = np.array([s.size for s in samples], np.int64)
    return SampleSet(np.concatenate(samples) if samples else empty_events(),
                     np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
                     np.asarray(labels, np.int64), np.asarray(durations, np.int64),
                     np.asarray(window_start, np.int64), np.asarray(users, np.int64),
                     np.asarray(lighting, str), np.asarray(train, bool), np.asarray(trial, str),
                     tuple(int(v) for v in sensor_size), counting_rule, source)


def concat_sets(parts: list[SampleSet], *, source: str, counting_rule: str,
                sensor_size=None) -> SampleSet:
    """The samples of parts one after another (an empty list gives an empty set)."""
    if not parts:
        return from_samples([], labels=[], durations=[], window_start=[], users=[], lighting=[], train=[], trial=[],
                            sensor_size=sensor_size or (0, 0, 0), counting_rule=counting_rule, source=source)
    lengths = np.concatenate([np.diff(p.offsets) for p in parts])
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return SampleSet(np.concatenate([p.events for p in parts]),
                     np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), cat("labels"), cat("durations"),
                     cat("window_start"), cat("users"), cat("lighting"), cat("train"), cat("trial"),
                     tuple(sensor_size or parts[0].sensor_size), counting_rule, source)


@dataclass(frozen=True)
class SampleColumns:
    """Samples as the event store holds them: one contiguous array per event field
    (COLUMN_DTYPES, [N]), lengths int64 [S] (sample i is the i-th run of lengths[i] events) and
    the per-sample fields of SampleSet (FIELDS -> array [S]); plus sensor_size, counting_rule
    and source. What conversion moves from the parser to the store writer without a
    structured-array copy."""

    columns: dict
    lengths: np.ndarray
    fields: dict
    sensor_size: tuple
    counting_rule: str
    source: str

    def __len__(self) -> int:
        return int(self.lengths.size)

    @property
    def n_events(self) -> int:
        return int(self.columns["t"].size)

    def to_samples(self) -> SampleSet:
        """The same samples as a SampleSet."""
        ev = np.empty(self.n_events, EVENT_DTYPE)
        for k, col in self.columns.items():
            ev[k] = col
        f = self.fields
        return SampleSet(ev, np.concatenate(([0], np.cumsum(self.lengths))).astype(np.int64),
                         np.asarray(f["labels"], np.int64), np.asarray(f["durations"], np.int64),
                         np.asarray(f["window_start"], np.int64), np.asarray(f["users"], np.int64),
                         np.asarray(f["lighting"], str), np.asarray(f["train"], bool), np.asarray(f["trial"], str),
                         tuple(int(v) for v in self.sensor_size), self.counting_rule, self.source)


def to_columns(samples: SampleSet) -> SampleColumns:
    """The samples of a SampleSet as SampleColumns."""
    ev = samples.events
    return SampleColumns({k: ev[k].astype(dt) for k, dt in COLUMN_DTYPES.items()}, np.diff(samples.offsets),
                         {k: getattr(samples, k) for k in FIELDS}, samples.sensor_size, samples.counting_rule,
                         samples.source)
