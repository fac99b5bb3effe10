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
- mode "rate" [ours]: count encoding, then each sample's counts scaled so that its mean events
  per input line and step is RATE_REF (``normalise_rates``): with E = round(RATE_REF * T *
  n_inputs) target events and N the sample's events, an entry's count c becomes
  ``(2 c E + N) // (2 N)`` (c E / N rounded half up, int64 arithmetic, so exact and the same
  on every backend); entries that round to 0 are dropped. The host always encodes this mode
  (the device encoder has binary and count only, MODES).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data_tools.errors import ConfigError
from data_tools.samples import SampleSet, from_samples
from data_tools.spikes import SpikeTensor, concatenate

BINNINGS = ("duration", "count")
CHUNK_EVENTS = 1 << 21        # encode in groups of samples of about this many events (bounded temporaries)
MODES = ("binary", "count")   # what the device encoder (gpusnn.backends.gpu.encode) also does
HOST_MODES = MODES + ("rate",)
RATE_REF = 0.2                # mode "rate": mean events per input line and step of every sample


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
    ev = samples.events
    return encode_columns(ev["x"], ev["y"], ev["p"], ev["t"], samples.offsets, samples.durations,
                          samples.sensor_size, n_steps, downsample=downsample, binning=binning, mode=mode)


def encode_columns(x, y, p, t, offsets, durations, sensor_size, n_steps: int, *, downsample: int = 4,
                   binning: str = "duration", mode: str = "binary") -> SpikeTensor:
    """:func:`encode` on event columns x, y, p, t [N] (any integer types; sample i is
    offsets[i]:offsets[i+1], t re-based to its window of durations[i] us): what the store
    loader calls with the columns it reads, without building an event array."""
    if binning not in BINNINGS or mode not in HOST_MODES:
        raise ConfigError(f"binning must be one of {BINNINGS} and mode one of {HOST_MODES}, got {binning!r}, {mode!r}")
    if n_steps < 1 or downsample < 1:
        raise ConfigError(f"n_steps and downsample must be >= 1, got {n_steps}, {downsample}")
    if n_inputs(sensor_size, downsample) < 1:
        W, H, _ = sensor_size
        raise ConfigError(f"downsample {downsample} (--downsample) leaves no input lines of the {W} x {H} sensor")
    offsets = np.asarray(offsets, np.int64)
    if offsets[-1] > CHUNK_EVENTS and offsets.size > 2:     # samples are independent: encode by groups
        cuts = np.unique(np.searchsorted(offsets, np.arange(CHUNK_EVENTS, offsets[-1], CHUNK_EVENTS), "right") - 1)
        bounds = [0, *[int(c) for c in cuts if 0 < c < offsets.size - 1], offsets.size - 1]
        durations = np.asarray(durations)
        parts = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            e0, e1 = int(offsets[a]), int(offsets[b])
            parts.append(_encode(x[e0:e1], y[e0:e1], p[e0:e1], t[e0:e1], offsets[a:b + 1] - e0, durations[a:b],
                                 sensor_size, n_steps, downsample, binning, mode))
        return concatenate(parts)
    return _encode(x, y, p, t, offsets, durations, sensor_size, n_steps, downsample, binning, mode)


def normalise_rates(spikes: SpikeTensor, rate_ref: float = RATE_REF) -> SpikeTensor:
    """spikes [S, T, n] with each sample's counts scaled to a mean of rate_ref events per input
    line and step (mode "rate", module docstring): c -> (2 c E + N) // (2 N) with E =
    round(rate_ref * T * n) and N the sample's events; entries that become 0 are dropped.
    A sample without events stays empty. Returns a new coalesced SpikeTensor (int32 counts)."""
    if not rate_ref > 0:
        raise ConfigError(f"rate_ref must be > 0, got {rate_ref}")
    S, T, n = spikes.n_samples, spikes.n_steps, spikes.n_inputs
    counts = spikes.entry_counts().astype(np.int64)
    row = np.repeat(np.arange(S * T, dtype=np.int64), np.diff(spikes.indptr))
    sample = row // T
    total = np.bincount(sample, weights=counts, minlength=S).astype(np.int64)     # exact below 2**53
    target = np.int64(round(rate_ref * T * n))
    scaled = (2 * counts * target + total[sample]) // (2 * np.maximum(total[sample], 1))
    keep = scaled > 0
    per_row = np.bincount(row[keep], minlength=S * T)
    indptr = np.concatenate(([0], np.cumsum(per_row))).astype(np.int64)
    return SpikeTensor(indptr, spikes.ids[keep], S, T, n, scaled[keep].astype(np.int32))


def _encode(x, y, p, t, offsets, durations, sensor_size, n_steps, downsample, binning, mode) -> SpikeTensor:
    """encode_columns on one group of samples."""
    if mode == "rate":
        return normalise_rates(_encode(x, y, p, t, offsets, durations, sensor_size, n_steps, downsample, binning,
                                       "count"))
    S, T = offsets.size - 1, n_steps
    n_in = n_inputs(sensor_size, downsample)
    sample = np.repeat(np.arange(S, dtype=np.int64), np.diff(offsets))
    down = np.flatnonzero(t[1:] < t[:-1])                  # a time step back inside a sample?
    if down.size and np.any(sample[down] == sample[down + 1]):
        order = np.lexsort((t, sample))
        x, y, p, t, sample = x[order], y[order], p[order], t[order], sample[order]
    ids, inside = input_ids(x, y, p, sensor_size, downsample)
    b = time_bins(t, sample, offsets, np.asarray(durations, np.int64), T, binning)
    key = ((sample * T + b) * n_in + ids)[inside]
    cells = S * T * n_in
    if cells <= 2 * key.size + (1 << 20):                   # dense enough: count instead of sorting
        per_cell = np.bincount(key, minlength=cells)
        hit = np.flatnonzero(per_cell)
        counts = None if mode == "binary" else per_cell[hit].astype(np.int32)
        key = hit
    elif mode == "binary":
        key, counts = np.unique(key), None
    else:
        key, counts = np.unique(key, return_counts=True)
        counts = counts.astype(np.int32)
    per_row = np.bincount(key // n_in, minlength=S * T)     # coalesced: one entry per (row, id)
    indptr = np.concatenate(([0], np.cumsum(per_row))).astype(np.int64)
    return SpikeTensor(indptr, (key % n_in).astype(np.int32), S, T, n_in, counts)


def apply_transform(samples: SampleSet, transform: Callable[[np.ndarray], np.ndarray]) -> SampleSet:
    """Apply a per-sample event transform (e.g. tonic.transforms.Denoise) before encoding; the
    transform must return an event array of the same dtype with times in the same window."""
    out = [np.asarray(transform(samples.sample(i))) for i in range(len(samples))]
    return from_samples(out, labels=samples.labels, durations=samples.durations, window_start=samples.window_start,
                        users=samples.users, lighting=samples.lighting, train=samples.train, trial=samples.trial,
                        sensor_size=samples.sensor_size, counting_rule=samples.counting_rule, source=samples.source)
