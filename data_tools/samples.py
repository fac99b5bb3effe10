"""SampleSet: labelled event samples of a whole dataset in flat arrays (what the layouts
produce, the event store saves and the encoder consumes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.events import empty_events


@dataclass(frozen=True)
class SampleSet:
    """S samples; sample i's events are events[offsets[i]:offsets[i + 1]] with times re-based
    to its window start, so 0 <= t < durations[i] (us).

    events  EVENT_DTYPE [N]   offsets int64 [S + 1]   labels int64 [S] (0..10)
    durations int64 [S] (us)  window_start int64 [S] (us, recording clock)
    users int64 [S]   lighting str [S]   train bool [S]   trial str [S]
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
