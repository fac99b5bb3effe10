"""events.cu against a small independent NumPy decoder/binner of the same convention, on
random AEDAT 3.1 files (odd header length, non-polarity packets, padding, invalid events,
timestamp overflow), emulated and on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

from gpusnn.errors import DataFormatError
from gpusnn.backends.gpu.events import aedat_to_spikes, decode_polarity, polarity_packets
from data_tools.spikes import from_coo

HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                   ("overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])


def random_aedat(rng, n_packets=5, width=128, height=128):
    """(file bytes, events [(data, t)] in file order) of a random AEDAT 3.1 recording."""
    source = {128: b"DVS128", 346: b"DAVIS346B"}[width]
    out = [b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: " + source + b"\r\n#Note: " + b"x" * int(rng.integers(0, 7))
           + b"\r\n#!END-HEADER\r\n"]
    events = []
    t = int(rng.integers(0, 2**31 - 5000))
    for k in range(n_packets):
        if rng.random() < 0.25:                      # a special-event packet: must be skipped
            out.append(np.array([(0, 1, 8, 4, 0, 3, 3, 3)], HEADER).tobytes() + rng.bytes(24))
        cap = int(rng.integers(0, 300))
        num = int(rng.integers(0, cap + 1))
        size = int(rng.choice([8, 12]))
        overflow = int(rng.integers(0, 3))
        x = rng.integers(0, width, num)
        y = rng.integers(0, height, num)
        p = rng.integers(0, 2, num)
        valid = (rng.random(num) < 0.9).astype(np.int64)
        data = (x << 17) | (y << 2) | (p << 1) | valid
        ts = (t + np.cumsum(rng.integers(0, 40, num))) % 2**31
        t = int(ts[-1]) if num else t
        payload = np.zeros((cap, size), np.uint8)
        payload[:num, :4] = np.frombuffer(data.astype("<u4").tobytes(), np.uint8).reshape(num, 4)
        payload[:num, 4:8] = np.frombuffer(ts.astype("<i4").tobytes(), np.uint8).reshape(num, 4)
        out.append(np.array([(1, 1, size, 4, overflow, cap, num, num)], HEADER).tobytes() + payload.tobytes())
        events += [(int(d), (overflow << 31) | int(s)) for d, s in zip(data, ts)]
    return b"".join(out), np.array(events, np.int64).reshape(-1, 2)


def numpy_bin(events, t0, dur, T, width, height, f, binary):
    """The encoding convention in plain NumPy (the twin of aedat_bin + compaction)."""
    data, t = events[:, 0], events[:, 1]
    x, y, p, valid = (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, (data >> 1) & 1, data & 1
    Wd, Hd = width // f, height // f
    ids = (p * Hd + y // f) * Wd + x // f
    keep = (valid == 1) & (x // f < Wd) & (y // f < Hd)
    samples, steps, out_ids = [], [], []
    for b, (s, d) in enumerate(zip(t0, dur)):
        m = keep & (t >= s) & (t < s + d)
        step = np.clip(((t[m] - s) * T) // d, 0, T - 1) + 1
        trip = np.stack([np.full(m.sum(), b), step, ids[m]], 1)
        if binary:
            trip = np.unique(trip, axis=0)
        samples.append(trip[:, 0]), steps.append(trip[:, 1]), out_ids.append(trip[:, 2])
    cat = lambda a: np.concatenate(a) if a else np.zeros(0, np.int64)
    return from_coo(cat(samples), cat(steps), cat(out_ids), len(t0), T, 2 * Hd * Wd)


def test_decode(gpu_kernel_rt, gpu_kernel_rng):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    raw, events = random_aedat(rng)
    got = {k: rt.asnumpy(v) for k, v in decode_polarity(rt, raw).items()}
    data = events[:, 0]
    np.testing.assert_array_equal(got["x"], (data >> 17) & 0x7FFF)
    np.testing.assert_array_equal(got["y"], (data >> 2) & 0x7FFF)
    np.testing.assert_array_equal(got["p"], (data >> 1) & 1)
    np.testing.assert_array_equal(got["valid"], data & 1)
    np.testing.assert_array_equal(got["t"], events[:, 1])


@pytest.mark.parametrize("factor, binary, T", [(1, True, 16), (4, True, 8), (3, False, 5), (1, False, 1)])
def test_bin_matches_numpy(gpu_kernel_rt, gpu_kernel_rng, factor, binary, T):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    raw, events = random_aedat(rng, n_packets=6)
    t = events[:, 1]
    lo, hi = (int(t.min()), int(t.max()) + 1) if t.size else (0, 100)
    B = 5
    t0 = rng.integers(lo - 50, hi, B)                     # overlapping windows, some partly outside
    dur = rng.integers(1, max(2, hi - lo), B)
    want = numpy_bin(events, t0, dur, T, 128, 128, factor, binary).coalesce()   # count mode: coalesced
    got = aedat_to_spikes(rt, raw, t0, dur, T, factor=factor, binary=binary)
    assert (got.n_samples, got.n_steps, got.n_inputs) == (want.n_samples, want.n_steps, want.n_inputs)
    np.testing.assert_array_equal(rt.asnumpy(got.indptr), want.indptr)
    np.testing.assert_array_equal(rt.asnumpy(got.ids), want.ids)
    if binary:
        assert got.counts is None
    else:
        np.testing.assert_array_equal(rt.asnumpy(got.counts), want.entry_counts())


def test_truncated_file_names_the_offset():
    raw, _ = random_aedat(np.random.default_rng(1), n_packets=2)
    start = raw.index(b"#!END-HEADER\r\n") + 14
    with pytest.raises(DataFormatError, match=f"rec.aedat: byte offset {start}"):
        polarity_packets(raw[:start + 40], "rec.aedat")
    with pytest.raises(DataFormatError, match="AER-DAT3"):
        polarity_packets(b"#!AER-DAT2.0\r\n", "old.aedat")


def test_sensor_size_comes_from_the_source_line(gpu_kernel_rt, gpu_kernel_rng):
    """A DAVIS346 recording (#Source 1: DAVIS346B) bins into 2 x (260 // 4) x (346 // 4) inputs."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    raw, events = random_aedat(rng, n_packets=3, width=346, height=260)
    t = events[:, 1]
    t0, dur = np.array([int(t.min())]), np.array([int(t.max() - t.min()) + 1])
    got = aedat_to_spikes(rt, raw, t0, dur, 4, factor=4)
    want = numpy_bin(events, t0, dur, 4, 346, 260, 4, True)
    assert got.n_inputs == 2 * 65 * 86 == want.n_inputs
    np.testing.assert_array_equal(rt.asnumpy(got.ids), want.ids)
