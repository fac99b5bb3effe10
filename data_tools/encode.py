"""Encoding labelled event samples into the sparse spike tensor the trainer consumes.

Convention (mirrored exactly by the CUDA event kernel; keep it):

- spatial downsampling by an integer factor f (128 -> 32 is f = 4): x' = x // f, y' = y // f;
  with W' = W // f and H' = H // f (floor; (W, H) = the SampleSet's sensor_size) the input id
  is ``id = (p * H' + y') * W' + x'`` (p = 1 for ON), so n_inputs = P * H' * W' (2048 for
  128 x 128 x 2 and f = 4; 86 x 65 x 2 = 11180 for a DAVIS346's 346 x 260). Events with
  x' >= W' or y' >= H' (the last W mod f columns, H mod f rows) are dropped.
- time binning "duration" (default): for a sample window [t0, t0 + D) the bin of an event at
  time t is ``b = ((t - t0) * T) // D`` in int64 arithmetic, clipped to 0..T-1; step = b + 1.
  (Samples here are already re-based, so t0 = 0 and D = the window duration.)
- time binning "count": event k of N in the sample (time order, k = 0..N-1) goes to bin
  ``(k * T) // N``.
- mode "binary" (default) keeps one spike per (sample, step, id); mode "count" keeps every
  event, coalesced: one entry per (sample, step, id) with the number of its events in the
  tensor's counts (data_tools.spikes), so nnz <= S x T x n_inputs whatever the event rate.
  Ids are sorted within each row in both modes.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data_tools.errors import ConfigError
from data_tools.samples import SampleSet, from_samples
from data_tools.spikes import SpikeTensor

BINNINGS = ("duration", "count")
MODES = ("binary", "count")


def n_inputs(sensor_size, downsample: int) -> int:
    """Number of input lines P * (H // f) * (W // f)."""
    W, H, P = sensor_size
    return P * (H // downsample) * (W // downsample)


def input_ids(x, y, p, sensor_size, downsample: int) -> tuple[np.ndarray, np.ndarray]:
    """(id int64 [N], inside bool [N]) of events after downsampling; see the module docstring."""
    W, H, _ = sensor_size
    Wd, Hd = W // downsample, H // downsample
    xd = np.asarray(x, np.int64) // downsample
    yd = np.asarray(y, np.int64) // downsample
    inside = (xd >= 0) & (xd < Wd) & (yd >= 0) & (yd < Hd)
    return (np.asarray(p, np.int64) * Hd + yd) * Wd + xd, inside


def time_bins(t, sample, offsets, durations, n_steps: int, binning: str) -> np.ndarray:
    """Bin 0..T-1 of each event (int64 [N]); t re-based per sample, events of a sample in time order."""
    T = np.int64(n_steps)
    if binning == "duration":
        b = (np.asarray(t, np.int64) * T) // np.maximum(durations, 1)[sample]
    else:
        k = np.arange(sample.size, dtype=np.int64) - offsets[sample]
        b = (k * T) // np.diff(offsets)[sample]
    return np.clip(b, 0, n_steps - 1)


def encode(samples: SampleSet, n_steps: int, *, downsample: int = 4, binning: str = "duration",
           mode: str = "binary") -> SpikeTensor:
    """Spike tensor [S samples, n_steps, n_inputs] of a SampleSet (module docstring convention)."""
    if binning not in BINNINGS or mode not in MODES:
        raise ConfigError(f"binning must be one of {BINNINGS} and mode one of {MODES}, got {binning!r}, {mode!r}")
    if n_steps < 1 or downsample < 1:
        raise ConfigError(f"n_steps and downsample must be >= 1, got {n_steps}, {downsample}")
    S, T = len(samples), n_steps
    n_in = n_inputs(samples.sensor_size, downsample)
    if n_in < 1:
        W, H, _ = samples.sensor_size
        raise ConfigError(f"downsample {downsample} (--downsample) leaves no input lines of the {W} x {H} sensor")
    ev = samples.events
    sample = np.repeat(np.arange(S, dtype=np.int64), np.diff(samples.offsets))
    if ev.size > 1 and np.any((np.diff(ev["t"]) < 0) & (np.diff(sample) == 0)):
        order = np.lexsort((ev["t"], sample))
        ev, sample = ev[order], sample[order]
    ids, inside = input_ids(ev["x"], ev["y"], ev["p"], samples.sensor_size, downsample)
    b = time_bins(ev["t"], sample, samples.offsets, samples.durations, T, binning)
    key = ((sample * T + b) * n_in + ids)[inside]
    if mode == "binary":
        key, counts = np.unique(key), None
    else:
        key, counts = np.unique(key, return_counts=True)
        counts = counts.astype(np.int32)
    rows = key // n_in
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=S * T)))).astype(np.int64)
    return SpikeTensor(indptr, (key % n_in).astype(np.int32), S, T, n_in, counts)


def apply_transform(samples: SampleSet, transform: Callable[[np.ndarray], np.ndarray]) -> SampleSet:
    """Apply a per-sample event transform (e.g. tonic.transforms.Denoise) before encoding; the
    transform must return an event array of the same dtype with times in the same window."""
    out = [np.asarray(transform(samples.sample(i))) for i in range(len(samples))]
    return from_samples(out, labels=samples.labels, durations=samples.durations, window_start=samples.window_start,
                        users=samples.users, lighting=samples.lighting, train=samples.train, trial=samples.trial,
                        sensor_size=samples.sensor_size, counting_rule=samples.counting_rule, source=samples.source)
