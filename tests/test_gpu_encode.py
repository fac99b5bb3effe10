"""encode.cu (device binning of decoded events) against its twin data_tools.encode.encode:
identical spike tensors (indptr, ids, counts) per batch and from a store uploaded once,
emulated (forward and shuffled thread order) and on a GPU. The device encoder returns the
static forms (a SpikeGrid in binary mode, PaddedSpikes in count mode) without reading
anything back from the device."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_same_spikes

from data_tools.encode import encode
from data_tools.events import EVENT_DTYPE
from data_tools.samples import from_samples
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.encode import encode_batch, encode_samples, upload_events
from gpusnn.errors import ConfigError, ShapeError


def random_samples(rng, S=6, sensor=(128, 128, 2), shuffled=False):
    """S samples of random events; some x, y past the downsampled sensor, some samples empty,
    several events per (pixel, step) so count mode has repeats; times in the window."""
    W, H, _ = sensor
    out, durations = [], []
    for s in range(S):
        n = 0 if s == 2 else int(rng.integers(1, 400))
        dur = int(rng.integers(1, 5000))
        ev = np.zeros(n, EVENT_DTYPE)
        ev["x"] = rng.integers(0, min(W, 20) if s % 2 else W, n)    # odd samples: few pixels, many repeats
        ev["y"] = rng.integers(0, H, n)
        ev["p"] = rng.integers(0, 2, n).astype(bool)
        ev["t"] = rng.integers(0, dur, n)
        if not shuffled:
            ev = ev[np.argsort(ev["t"], kind="stable")]
        out.append(ev)
        durations.append(dur)
    return from_samples(out, labels=np.zeros(S, np.int64), durations=durations, window_start=np.zeros(S, np.int64),
                        users=np.ones(S, np.int64), lighting=["led"] * S, train=np.ones(S, bool), trial=["a"] * S,
                        sensor_size=sensor, counting_rule="rows", source="test")


def check_static_form(got, mode, n_events, traffic):
    """A binary batch is a SpikeGrid, a count batch PaddedSpikes whose capacity is its event
    count (or the tensor's size when smaller); the encoding read nothing back."""
    if mode == "binary":
        assert isinstance(got, SpikeGrid)
    else:
        assert isinstance(got, PaddedSpikes) and got.counts is not None
        assert got.capacity == min(n_events, got.n_samples * got.n_steps * got.n_inputs)
    assert traffic.host_syncs == 0 and traffic.d2h_copies == 0



@pytest.mark.parametrize("binning, mode, downsample, T, shuffled", [
    ("duration", "binary", 4, 16, False), ("duration", "count", 4, 8, False), ("duration", "count", 3, 5, True),
    ("count", "count", 4, 7, False), ("count", "binary", 1, 3, True), ("count", "count", 2, 1, False)])
def test_encode_batch_equals_host_encoding(gpu_kernel_rt, gpu_kernel_rng, binning, mode, downsample, T, shuffled):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    samples = random_samples(rng, shuffled=shuffled)
    want = encode(samples, T, downsample=downsample, binning=binning, mode=mode)
    if mode == "count":
        assert want.nnz < want.n_spikes()                  # the workload has repeats to coalesce
    traffic = rt.reset_counts()
    got = encode_batch(rt, samples.events, samples.offsets, samples.durations, T, sensor_size=samples.sensor_size,
                       downsample=downsample, binning=binning, mode=mode)
    check_static_form(got, mode, samples.events.size, traffic)
    assert_same_spikes(rt.asnumpy, got, want)


@pytest.mark.parametrize("binning, mode", [("duration", "count"), ("count", "binary")])
def test_upload_once_then_bin_per_batch(gpu_kernel_rt, gpu_kernel_rng, binning, mode):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    samples = random_samples(rng, S=9)
    store = upload_events(rt, samples.events, samples.offsets, samples.durations, samples.sensor_size)
    whole = encode(samples, 6, binning=binning, mode=mode)
    lengths = np.diff(samples.offsets)
    for batch in (np.array([4, 0, 8]), rng.permutation(9)[:5], np.array([2, 2]), np.arange(9)):
        traffic = rt.reset_counts()
        got = encode_samples(rt, store, batch, 6, binning=binning, mode=mode)
        check_static_form(got, mode, int(lengths[batch].sum()), traffic)
        assert traffic.h2d_copies == 1 and traffic.h2d_bytes == 8 * (2 * batch.size + 1)   # indices + offsets
        assert_same_spikes(rt.asnumpy, got, whole.select(batch))
        assert_same_spikes(rt.asnumpy, got, encode(samples.subset(batch), 6, binning=binning, mode=mode))


def test_bad_arguments_raise_project_errors(gpu_kernel_rt):
    rt = gpu_kernel_rt
    samples = random_samples(np.random.default_rng(3), S=3)
    with pytest.raises(ShapeError, match="offsets"):
        upload_events(rt, samples.events, samples.offsets[1:], samples.durations[:-1], samples.sensor_size)
    with pytest.raises(ShapeError, match="durations"):
        upload_events(rt, samples.events, samples.offsets, samples.durations[:2], samples.sensor_size)
    store = upload_events(rt, samples.events, samples.offsets, samples.durations, samples.sensor_size)
    with pytest.raises(ShapeError, match="sample indices"):
        encode_samples(rt, store, [3], 4)
    with pytest.raises(ConfigError, match="binning"):
        encode_samples(rt, store, [0], 4, binning="rate")
