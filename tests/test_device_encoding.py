"""Training from an event store with the batches encoded on the device (emulated, and cuda on a GPU):
the spike tensors and the trained weights equal those of host encoding, and the device
encoder really ran (launches of encode.bin_events counted by the kernel runtime)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import assert_same_spikes

from data_tools.datasets import load_dataset
from data_tools.loader import StoreSplit, take
from data_tools.synth import SynthConfig, generate
from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.backends.gpu import encode as gpu_encode
from gpusnn.config import RunConfig

T, DOWNSAMPLE = 6, 16           # 2 x 8 x 8 = 128 input lines: small enough for the emulator


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("g")
    generate(root, SynthConfig.small_config(seed=7), progress=False)
    return root


def store_data(small_dir, tmp_path, mode, n_train=20, n_test=9):
    """The small set forced through StoreSplit (in_memory_events=0), cut to a few samples."""
    data = load_dataset(str(small_dir), n_steps=T, downsample=DOWNSAMPLE, mode=mode, cache_dir=tmp_path / "c",
                        progress=False, in_memory_events=0)
    assert isinstance(data.train, StoreSplit)
    tr, te = np.arange(n_train), np.arange(n_test)
    return dataclasses.replace(data, train=take(data.train, tr), train_labels=data.train_labels[tr],
                               test=take(data.test, te), test_labels=data.test_labels[te])




@pytest.fixture(params=["emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """The name of a backend that encodes on the device: emulated, and cuda where a GPU exists."""
    return request.param


@pytest.fixture(params=["resident", "per-batch"])
def placement(request, monkeypatch):
    """Device encoding from a split uploaded once (the small store fits RESIDENT_BYTES) or with
    each batch's events uploaded (RESIDENT_BYTES 0); counts the uploads of event columns."""
    if request.param == "per-batch":
        monkeypatch.setattr(training, "RESIDENT_BYTES", {})
    return request.param, counted_uploads(monkeypatch)


def counted_uploads(monkeypatch) -> list:
    """The samples of each upload_events call (event columns to the device) from now on."""
    uploads = []
    real = gpu_encode.upload_events

    def counted(rt, events, offsets, *args):
        uploads.append(len(offsets) - 1)
        return real(rt, events, offsets, *args)
    monkeypatch.setattr(gpu_encode, "upload_events", counted)
    return uploads


@pytest.mark.parametrize("mode", ["count", "binary"])
def test_device_encoded_batches_equal_the_host_encoder(small_dir, tmp_path, mode, placement, device):
    kind, uploads = placement
    data = store_data(small_dir, tmp_path, mode)
    backend = get_backend(device)
    rng = np.random.default_rng(3)
    index_lists = [rng.permutation(data.train.n_samples)[:7], np.arange(3), rng.permutation(data.train.n_samples)]
    got = list(training.batches(backend, data.train, index_lists, depth=0))
    assert len(got) == len(index_lists)
    for idx, (got_idx, spikes) in zip(index_lists, got):
        np.testing.assert_array_equal(got_idx, idx)
        want = data.train.select(idx)
        if mode == "count":
            assert want.counts is not None and want.nnz < want.n_spikes()      # coalesced, with repeats
        assert_same_spikes(backend.asnumpy, spikes, want)
    assert backend.rt.traffic.kernels["encode.bin_events"] == len(index_lists)
    # resident: the split's events went up once (one chunk); per batch: once per batch
    assert uploads == ([data.train.n_samples] if kind == "resident" else [len(i) for i in index_lists])


def train_one_epoch(backend, data):
    cfg = RunConfig().replace(network={"widths": (data.train.n_inputs, 12, data.n_classes), "n_steps": T},
                              train={"batch_size": 6, "epochs": 1, "seed": 4})
    state = training.new_state(cfg, backend)
    backend.rt.reset_counts()
    training.fit(backend, state, cfg, data, progress=False)
    return [backend.asnumpy(W) for W in state.weights], state.history[0], backend.rt.traffic.kernels["encode.bin_events"]


@pytest.mark.parametrize("mode", ["count", "binary"])
def test_training_with_device_encoding_equals_host_encoding(small_dir, tmp_path, monkeypatch, placement, device, mode):
    kind, uploads = placement
    data = store_data(small_dir, tmp_path, mode)
    backend = get_backend(device)
    assert training.encodes_on_device(backend, data.train)
    w_dev, hist_dev, launches = train_one_epoch(backend, data)
    n_train, n_test = -(-data.train.n_samples // 6), -(-data.test.n_samples // 6)      # batches of 6
    assert launches == n_train + n_test
    assert len(uploads) == (2 if kind == "resident" else n_train + n_test)        # resident: train + test, once
    monkeypatch.setattr(training, "encodes_on_device", lambda backend, source: False)
    w_host, hist_host, host_launches = train_one_epoch(get_backend(device), data)
    assert host_launches == 0
    for a, b in zip(w_dev, w_host):
        np.testing.assert_array_equal(a, b)
    assert hist_dev["train_loss"] == hist_host["train_loss"] and hist_dev["test_accuracy"] == hist_host["test_accuracy"]
    assert not np.array_equal(w_dev[0], training.init_weights(
        (data.train.n_inputs, 12, data.n_classes), RunConfig().network.init_scale, 4)[0])        # it did train


def test_a_resident_split_is_uploaded_in_chunks_once_per_backend(small_dir, tmp_path, monkeypatch, device):
    uploads = counted_uploads(monkeypatch)
    monkeypatch.setattr(training, "UPLOAD_SAMPLES", 8)
    data = store_data(small_dir, tmp_path, "count")
    backend = get_backend(device)
    a = training.resident_events(backend, data.train)
    assert training.resident_events(backend, data.train) is a and uploads == [8, 8, 4]     # 20 samples, chunks of 8
    assert a.n_samples == data.train.n_samples and int(backend.asnumpy(a.offsets)[-1]) == data.train.n_events()
    idx = np.random.default_rng(5).permutation(data.train.n_samples)
    assert_same_spikes(backend.asnumpy, backend.encode_samples(a, idx, T, **data.train.encoding), data.train.select(idx))
    assert training.resident_events(get_backend(device), data.train) is not a and len(uploads) == 6
    monkeypatch.setattr(training, "RESIDENT_BYTES", {device: data.train.n_events() * training.EVENT_BYTES - 1})
    assert training.resident_events(get_backend(device), take(data.train, np.arange(20))) is None  # too big


def test_numpy_backend_keeps_host_encoding(small_dir, tmp_path):
    data = store_data(small_dir, tmp_path, "count", n_train=5)
    backend = get_backend("numpy")
    assert not training.encodes_on_device(backend, data.train)
    (_, spikes), = list(training.batches(backend, data.train, [np.arange(5)], depth=0))
    want = data.train.select(np.arange(5))
    np.testing.assert_array_equal(spikes.ids, want.ids)
    np.testing.assert_array_equal(spikes.counts, want.counts)


@pytest.mark.parametrize("mode", ["count", "binary"])
@pytest.mark.parametrize("source", ["store", "memory"])
def test_training_through_the_graph_staging_equals_train_batch(small_dir, tmp_path, monkeypatch, mode, source,
                                                               device):
    """cfg.train.cuda_graph with the graph's staging: on emulated without capture
    (graph.StaticStep: every batch copied into static buffers, device-encoded batches device
    to device, host tensors as their static form), on a GPU the captured GraphStep: the same
    weights, metrics and step count as the plain path. With the data in memory the batches
    reach the step on the host."""
    from gpusnn.backends.gpu.graph import StaticStep
    make = StaticStep if device == "emulated" else training.graph_step
    data = store_data(small_dir, tmp_path, mode)
    if source == "memory":
        data = dataclasses.replace(data, train=data.train.select(np.arange(data.train.n_samples)),
                                   test=data.test.select(np.arange(data.test.n_samples)))
    cfg = RunConfig().replace(network={"widths": (data.train.n_inputs, 12, data.n_classes), "n_steps": T},
                              train={"batch_size": 6, "epochs": 2, "seed": 4})
    steps = []

    def recorded_step(backend, state, cfg):
        steps.append(make(backend, state, cfg))
        return steps[-1]
    monkeypatch.setattr(training, "graph_step", recorded_step)
    runs = []
    for graph in (False, True):
        backend = get_backend(device)
        state = training.new_state(cfg, backend)
        training.fit(backend, state, cfg.replace(train={"cuda_graph": graph}), data, progress=False)
        runs.append(state)
    plain, staged = runs
    assert len(steps) == 2                         # one per epoch, the plain run made none
    assert staged.optim.step == plain.optim.step == 2 * -(-data.train.n_samples // 6)
    for a, b in zip(staged.weights + staged.optim.W_prev, plain.weights + plain.optim.W_prev, strict=True):
        np.testing.assert_array_equal(backend.asnumpy(a), backend.asnumpy(b))
    for ha, hb in zip(staged.history, plain.history, strict=True):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "spikes_per_sample"):
            assert ha[key] == hb[key], key
