"""The kernel runtime's structural counts (gpusnn.backends.gpu.counting) for a training batch,
checked against an independent recorder (a RawModule that logs every kernel call) and
against the counts derived by hand from the sequence of calls the step makes for L layers.
Counts, not timings: they are the same on emulated and cuda."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from data_tools.spikes import SpikeTensor
from gpusnn import cuemu, training
from gpusnn import reference as ref
from gpusnn.backends.gpu import GpuBackend
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.runtime import KernelRuntime
from gpusnn.config import RunConfig
from gpusnn.errors import ShapeError
from gpusnn.profiling import random_spikes


def signature(args) -> tuple:
    """What a launch's arguments look like, not what they hold: (shape, dtype) of an array,
    the value of a scalar."""
    return tuple((a.shape, a.dtype.str) if isinstance(a, np.ndarray) and a.ndim else a.item() for a in args)


class RecordingRawModule:
    """cuemu.RawModule whose kernels append their name to CALLS when launched, and their
    (name, grid, block, argument signature) to LAUNCHES."""

    CALLS: list = []
    LAUNCHES: list = []

    def __init__(self, code, options):
        self.module = cuemu.RawModule(code=code, options=options)

    def get_function(self, name):
        fn = self.module.get_function(name)

        def launch(grid, block, args, **kwargs):
            RecordingRawModule.CALLS.append(name)
            RecordingRawModule.LAUNCHES.append((name, grid, block, signature(args)))
            return fn(grid, block, args, **kwargs)
        return launch


def expected_kernels(L: int) -> Counter:
    """Project launches of one training batch of L layers on the event path: a forward per
    layer (input currents, the first from the input's CSR list, the others from the previous
    layer's grid, which also zero the layer's output grid, then the IF scan), one readout,
    L - 1 backward deltas, per layer its spike table (suffix counts of the input, step masks of
    a hidden grid) and the gradient (which computes the window starts and coefficients
    itself), and per layer the update: 6L launches."""
    return Counter({"currents_csr": 1, "currents_grid": L - 1, "if_scan": L, "readout_loss": 1,
                    "backward_delta": L - 1, "suffix_table": 1, "grid_masks": L - 1,
                    "weight_gradient": L,
                    "fractional_update": L})


def expected_library(L: int) -> Counter:
    """Library calls: the input's suffix table (zeros; the output grids are zeroed by the
    currents kernels); the packed result: each layer's spike total (sum) and one
    concatenate: L + 2 calls."""
    return Counter({"zeros": 1, "sum": L, "concatenate": 1})


def recorded_backend(widths, B, T):
    # the event path (mode "auto" would pick the dense path by density: tests/test_gpu_dense.py)
    backend = GpuBackend("emulated", mode="event")
    backend.rt = KernelRuntime(np, RecordingRawModule, "emulated-recorded")
    cfg = RunConfig().replace(network={"widths": list(widths), "n_steps": T, "theta": 0.25},
                              train={"batch_size": B})
    return backend, cfg, training.new_state(cfg, backend)


def counted_batch(widths, B=3, T=5, seed=7):
    backend, cfg, state = recorded_backend(widths, B, T)
    spikes = random_spikes(B, T, widths[0], 0.3, seed)
    labels = np.random.default_rng(seed).integers(0, widths[-1], B)
    RecordingRawModule.CALLS.clear()
    traffic = backend.rt.reset_counts()
    loss, pred, layer_spikes = training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes), labels)
    return traffic, spikes, (loss, pred, layer_spikes)


def on_device_grid(backend, spikes):
    grid = SpikeGrid.from_tensor(spikes)
    return replace(grid, grid=backend.asarray(grid.grid))


def on_device_padded(backend, spikes, capacity):
    p = PaddedSpikes.from_tensor(spikes, capacity)
    return replace(p, indptr=backend.asarray(p.indptr), ids=backend.asarray(p.ids),
                   counts=None if p.counts is None else backend.asarray(p.counts))


def recorded_launches(backend, cfg, state, spikes, labels):
    """(launch sequence with argument signatures, library calls) of one training batch."""
    RecordingRawModule.LAUNCHES.clear()
    traffic = backend.rt.reset_counts()
    training.train_batch(backend, state, cfg, spikes, labels)
    return list(RecordingRawModule.LAUNCHES), traffic.library


def test_static_shapes_with_grid_input():
    """Static shapes: with the input given as its occupancy grid (SpikeGrid.from_tensor), two
    batches of the same B and T but different spikes (density 0.1 vs 0.5), after the first
    step (a plain gradient step), make the same
    launches with the same grids, blocks and buffer shapes, and the same library calls; only
    array contents differ (what a captured CUDA graph needs). With the input's CSR list the
    only differences are the nnz-sized input arrays."""
    widths, B, T = (40, 16, 9, 5), 3, 6
    backend, cfg, state = recorded_backend(widths, B, T)
    rng = np.random.default_rng(11)
    batches = [random_spikes(B, T, widths[0], d, s) for d, s in ((0.1, 1), (0.5, 2))]
    assert batches[0].nnz != batches[1].nnz
    labels = [rng.integers(0, widths[-1], B) for _ in batches]
    training.train_batch(backend, state, cfg, on_device_grid(backend, batches[0]), labels[0])   # step 0: plain descent
    on_grid = [recorded_launches(backend, cfg, state, on_device_grid(backend, x), y)
               for x, y in zip(batches, labels)]
    assert on_grid[0] == on_grid[1]
    assert [name for name, *_ in on_grid[0][0]].count("currents_grid") == 3
    on_csr = [recorded_launches(backend, cfg, state, training.device_spikes(backend, x), y)
              for x, y in zip(batches, labels)]
    assert on_csr[0][1] == on_csr[1][1]
    differ = [(a[0], [k for k, (p, q) in enumerate(zip(a[3], b[3])) if p != q])
              for a, b in zip(on_csr[0][0], on_csr[1][0]) if a != b]
    assert differ == [("currents_csr", [1, 2]), ("suffix_table", [1, 2])]   # ids and the has_counts placeholder
    padded = [recorded_launches(backend, cfg, state, on_device_padded(backend, x, 512), y)
              for x, y in zip(batches, labels)]
    assert padded[0] == padded[1] and padded[0] != on_csr[1]


def test_static_shapes_with_padded_counts_input():
    """Count-encoded batches (coalesced, counts up to 3) of different nnz padded to one
    capacity: the same launches and shapes; and the same results as the unpadded tensor."""
    widths, B, T = (40, 16, 5), 3, 6
    rng = np.random.default_rng(13)
    from data_tools.spikes import from_dense
    batches = [from_dense(rng.poisson(lam, (B, T, widths[0])), coalesced=True) for lam in (0.1, 0.4)]
    assert batches[0].nnz != batches[1].nnz and max(b.counts.max() for b in batches) > 1
    labels = [rng.integers(0, widths[-1], B) for _ in batches]
    backend, cfg, state = recorded_backend(widths, B, T)
    training.train_batch(backend, state, cfg, on_device_padded(backend, batches[0], 400), labels[0])
    runs = [recorded_launches(backend, cfg, state, on_device_padded(backend, x, 400), y)
            for x, y in zip(batches, labels)]
    assert runs[0] == runs[1]
    results = []
    for make in (lambda be, x: on_device_padded(be, x, 400), training.device_spikes):
        backend, cfg, state = recorded_backend(widths, B, T)
        results.append([training.train_batch(backend, state, cfg, make(backend, x), y) for x, y in zip(batches, labels)]
                       + [np.concatenate([np.asarray(W).ravel() for W in state.weights])])
    for a, b in zip(*results):
        if isinstance(a, tuple):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
            assert a[2] == b[2]
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("widths", [(40, 16, 5), (40, 16, 9, 5)], ids=["2-layer", "3-layer"])
def test_training_batch_counts(widths):
    L, B, T, C = len(widths) - 1, 3, 5, widths[-1]
    traffic, spikes, (loss, pred, layer_spikes) = counted_batch(widths, B, T)
    assert min(layer_spikes) > 0, "every layer must spike, or the counts test nothing"
    kernels = Counter({k.split(".", 1)[1]: v for k, v in traffic.kernels.items()})
    assert Counter(RecordingRawModule.CALLS) == kernels == expected_kernels(L)
    assert traffic.library == expected_library(L)
    assert traffic.launches == sum(expected_kernels(L).values()) + sum(expected_library(L).values())
    # one synchronisation: the packed copy of loss, rates and the L spike totals
    assert traffic.syncs == Counter({"batch results": 1}) and traffic.host_syncs == 1
    assert traffic.d2h_copies == 1
    assert traffic.d2h_bytes == 8 * (B + B * C + L)
    # uploads: indptr, ids of the batch, labels
    assert traffic.h2d_copies == 3
    assert traffic.h2d_bytes == 8 * (B * T + 1) + 4 * spikes.nnz + 8 * B
    assert loss.shape == (B,) and pred.shape == (B,)


def test_two_layer_batch_meets_counts_in_docs():
    """The 2-layer numbers docs/kernels.md states for the current step (issue 15's goal:
    at most 2 synchronisations and 20 launches): 6L = 12 kernels and L + 2 = 4 library calls,
    7L + 2 = 16 launches."""
    traffic, _, _ = counted_batch((40, 16, 5))
    assert (traffic.host_syncs, sum(traffic.kernels.values()), traffic.launches) == (1, 12, 16)


def test_counting_xp_copies_and_inner_syncs():
    rt = KernelRuntime(np, cuemu.RawModule, "emulated")
    a = np.arange(6, dtype=np.int64)
    t = rt.reset_counts()
    assert rt.xp.asarray(a) is a and rt.xp.ascontiguousarray(a) is a and rt.xp.asarray(a, dtype=np.int64) is a
    assert t.launches == 0
    b = rt.xp.asarray(a, dtype=np.int32)
    c = rt.xp.ascontiguousarray(a[::2])
    assert b.dtype == np.int32 and c.flags.c_contiguous and t.library == Counter({"copy": 2})
    rt.xp.bincount(a)   # CuPy reads min and max back to size the output
    assert t.syncs == Counter({"inside bincount": 2})
    assert rt.xp.int32 is np.int32 and rt.xp.ndarray is np.ndarray
    assert rt.scalar(a[-1], "read") == 5 and t.d2h_bytes == 8 and t.syncs["read"] == 1


class DeviceOnly:
    """An array that lives on a device: shape and ndim are known, any value read fails."""

    def __init__(self, a):
        self.shape, self.ndim = a.shape, a.ndim

    def __getitem__(self, key):
        raise AssertionError("a device value was read back (a host synchronisation)")

    def __int__(self):
        raise AssertionError("a device value was read back (a host synchronisation)")


def test_spike_tensor_validates_values_on_host_only():
    indptr, ids = np.array([0, 2, 3], np.int64), np.array([1, 4, 0], np.int32)
    SpikeTensor(DeviceOnly(indptr), DeviceOnly(ids), 1, 2, 5)       # no read of device values
    with pytest.raises(ShapeError, match="indptr has shape"):
        SpikeTensor(DeviceOnly(indptr[:2]), DeviceOnly(ids), 1, 2, 5)   # shapes still checked
    with pytest.raises(ShapeError, match="does not describe ids"):
        SpikeTensor(indptr, ids[:2], 1, 2, 5)                            # host values checked
    with pytest.raises(ShapeError, match="does not describe ids"):
        SpikeTensor(indptr + 1, np.zeros(4, np.int32), 1, 2, 5)


def test_forward_passes_grids_and_never_reads_back():
    """The forward of 3 layers: no compaction, no host read; each layer's spikes are its grid
    (the same spikes the reference gives), output_spikes=False drops only the last one."""
    backend = GpuBackend("emulated", mode="event")
    rng = np.random.default_rng(4)
    weights = [backend.asarray(rng.uniform(-0.3, 0.7, s).astype(np.float32)) for s in ((30, 12), (12, 6), (6, 4))]
    spikes = random_spikes(3, 6, 30, 0.3, 6)
    t = backend.rt.reset_counts()
    full = backend.forward(weights, spikes, 0.5)
    assert t.host_syncs == 0 and t.d2h_copies == 0 and not any(k.startswith("compact.") for k in t.kernels)
    assert t.kernels == Counter({"forward.currents_csr": 1, "forward.currents_grid": 2, "forward.if_scan": 3})
    lean = backend.forward(weights, spikes, 0.5, output_spikes=False)
    assert lean[-1].spikes is None and all(isinstance(r.spikes, SpikeGrid) for r in lean[:-1] + full)
    for a, b in zip(full, lean):
        for f in ("counts", "t_first", "t_last", "t_prev", "u_final"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    want = ref.forward([np.asarray(W) for W in weights], spikes, 0.5)
    for r, w in zip(full, want):
        np.testing.assert_array_equal(r.spikes.to(np).to_dense(), w.spikes.to_dense())
    assert min(int(r.counts.sum()) for r in full) > 0


@pytest.mark.parametrize("output_spikes", [True, False])
def test_host_results_is_the_separate_copies_in_one(output_spikes):
    backend = GpuBackend("emulated")
    rng = np.random.default_rng(3)
    widths, B, T = (30, 12, 4), 4, 6
    weights = [backend.asarray(rng.uniform(-0.3, 0.7, (a, b)).astype(np.float32))
               for a, b in zip(widths[:-1], widths[1:])]
    spikes = random_spikes(B, T, widths[0], 0.3, 5)
    records = backend.forward(weights, spikes, 0.5, output_spikes=output_spikes)
    from gpusnn.config import MethodConfig
    loss, rho, _ = backend.gradients(weights, spikes, records, rng.integers(0, 4, B), T, 0.5, MethodConfig())
    want = (np.array(loss, np.float64), np.array(rho), [int(np.asarray(r.counts).sum()) for r in records])
    t = backend.rt.reset_counts()
    got = backend.host_results(loss, rho, records)
    assert t.d2h_copies == 1 and t.host_syncs == 1
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[1].dtype == np.float32 and got[0].dtype == np.float64
    assert got[2] == want[2] and min(want[2]) > 0


def test_coalesced_batch_adds_only_the_counts_upload():
    """A count-encoded (coalesced) batch: one more upload (counts, int32 per entry); the
    launches (the counts go into the same suffix table) and the one sync stay as they are."""
    widths, B, T = (40, 16, 5), 3, 5
    backend = GpuBackend("emulated", mode="event")
    cfg = RunConfig().replace(network={"widths": list(widths), "n_steps": T, "theta": 0.25},
                              train={"batch_size": B})
    state = training.new_state(cfg, backend)
    rng = np.random.default_rng(8)
    from data_tools.spikes import from_dense
    spikes = from_dense(rng.poisson(0.6, (B, T, widths[0])), coalesced=True)
    assert spikes.counts is not None and spikes.counts.max() > 1
    labels = rng.integers(0, widths[-1], B)
    traffic = backend.rt.reset_counts()
    training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes), labels)
    assert traffic.h2d_copies == 4
    assert traffic.h2d_bytes == 8 * (B * T + 1) + 4 * spikes.nnz + 4 * spikes.nnz + 8 * B
    assert traffic.library == expected_library(2)
    assert Counter({k.split(".", 1)[1]: v for k, v in traffic.kernels.items()}) == expected_kernels(2)
    assert traffic.syncs == Counter({"batch results": 1})


def random_store_columns(rng, S, sensor=(32, 32, 2)):
    """Event columns x, y, p, t of S samples (some events off the downsampled sensor, many
    repeats per pixel and step), their offsets [S + 1] and durations [S] (us)."""
    lengths = rng.integers(20, 120, S)
    n = int(lengths.sum())
    durations = rng.integers(100, 1000, S)
    t = np.concatenate([np.sort(rng.integers(0, d, k)) for d, k in zip(durations, lengths)])
    cols = {"x": rng.integers(0, sensor[0] + 3, n).astype(np.int16), "y": rng.integers(0, 12, n).astype(np.int16),
            "p": rng.integers(0, 2, n).astype(np.uint8), "t": t.astype(np.int64)}
    return cols, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), durations.astype(np.int64), sensor


@pytest.mark.parametrize("placement", ["resident", "per-batch"])
@pytest.mark.parametrize("mode", ["binary", "count"])
def test_device_encoded_batch_counts(mode, placement):
    """A store-backed training batch encoded on the device (what training.batches yields:
    encode_samples from a store uploaded once, or encode_batch of the batch's events) and
    trained: the encoding reads nothing back, so the batch keeps the step's one sync. Binary
    input is a SpikeGrid (the step's grid-input launches: currents_grid and grid_masks for
    every layer, no suffix table) plus bin_events and its grid's zeroing; count input is
    PaddedSpikes (the CSR step's launches) plus bin_events (which also counts each row's
    entries), grid_compact and 2 library calls (one zeroing of the grid and the row counts, the
    cumsum giving indptr). Uploads: the indices with their offsets (one copy) and the labels;
    per batch also the 7 event columns."""
    widths, B, T, L = (128, 16, 5), 4, 5, 2
    rng = np.random.default_rng(21)
    cols, offsets, durations, sensor = random_store_columns(rng, 9)
    backend, cfg, state = recorded_backend(widths, B, T)
    idx = np.array([7, 2, 5, 0])
    labels = rng.integers(0, widths[-1], B)
    store = backend.upload_events(cols, offsets, durations, sensor)
    RecordingRawModule.CALLS.clear()
    traffic = backend.rt.reset_counts()
    if placement == "resident":
        spikes = backend.encode_samples(store, idx, T, downsample=4, mode=mode)
    else:
        sel = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx])
        spikes = backend.encode_batch({k: v[sel] for k, v in cols.items()},
                                      np.concatenate([[0], np.cumsum(np.diff(offsets)[idx])]), durations[idx], T,
                                      sensor_size=sensor, downsample=4, mode=mode)
    assert isinstance(spikes, SpikeGrid if mode == "binary" else PaddedSpikes)
    assert traffic.host_syncs == 0
    _, _, layer_spikes = training.train_batch(backend, state, cfg, spikes, labels)
    assert min(layer_spikes) > 0, "every layer must spike, or the counts test nothing"
    kernels = Counter({k.split(".", 1)[1]: v for k, v in traffic.kernels.items()})
    step, library = expected_kernels(L), expected_library(L)
    if mode == "binary":
        step += Counter({"currents_grid": 1, "grid_masks": 1})
        step -= Counter({"currents_csr": 1, "suffix_table": 1})
        library -= Counter({"zeros": 1})
        want_kernels, want_library = step + Counter({"bin_events": 1}), library + Counter({"zeros": 1})
    else:
        want_kernels = step + Counter({"bin_events": 1, "grid_compact": 1})
        want_library = library + Counter({"zeros": 1, "cumsum": 1})
    assert Counter(RecordingRawModule.CALLS) == kernels == want_kernels
    assert traffic.library == want_library
    assert traffic.syncs == Counter({"batch results": 1}) and traffic.d2h_copies == 1
    assert traffic.h2d_copies == 2 + (7 if placement == "per-batch" else 0)
    assert traffic.launches == {"binary": 17, "count": 20}[mode]
