"""gradient.cu against its NumPy twins (reference.readout, loss_and_delta, backward_deltas,
weight_gradient) on random layer records, emulated and on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.config import MethodConfig
from gpusnn.backends.gpu.compact import SpikeGrid
from gpusnn.backends.gpu.gradient import (TABLE_MASKS, TABLE_SUFFIX, backward_delta, coefficients, readout_loss,
                                          spike_table, weight_gradient)
from data_tools.spikes import LayerRecord, from_dense
from helpers import bit_grid


def random_record(rng, B, T, N) -> LayerRecord:
    """A consistent random record: spike trains drawn per neuron, some silent, some saturated."""
    fired = rng.random((B, T, N)) < rng.choice([0.0, 0.2, 0.6, 1.0], size=(B, 1, N), p=[0.2, 0.4, 0.3, 0.1])
    steps = np.arange(1, T + 1)[None, :, None]
    counts = fired.sum(axis=1).astype(np.int32)
    t_last = np.where(fired, steps, 0).max(axis=1).astype(np.int32)
    t_first = np.where(fired, steps, T + 1).min(axis=1)
    t_first = np.where(t_first > T, 0, t_first).astype(np.int32)
    masked = np.where(fired & (steps < t_last[:, None, :]), steps, 0)
    t_prev = masked.max(axis=1).astype(np.int32)
    u = rng.uniform(-0.5, 0.99, (B, N)).astype(np.float32)
    u[rng.random((B, N)) < 0.1] = 0.0
    return LayerRecord(counts, t_first, t_last, t_prev, u, from_dense(fired.astype(np.int32)))


def to_device(rt, rec: LayerRecord) -> LayerRecord:
    xp = rt.xp
    return LayerRecord(*(xp.asarray(getattr(rec, f)) for f in ("counts", "t_first", "t_last", "t_prev", "u_final")),
                       rec.spikes.to(xp))


def want_coeffs(rec, delta: np.ndarray, T: int, theta: float, gradient: str):
    """(a float32, w int32) [B, n] of the weight gradient from a host delta, in NumPy's float32
    (each operation correctly rounded, as on the device): timing w = window start, a = delta /
    (theta (T - w)); rate w = 0, a = delta / float32(theta T)."""
    if gradient == "rate":
        return delta / np.float32(theta * T), np.zeros(delta.shape, np.int32)
    w = np.where(rec.t_last == T, rec.t_prev, rec.t_last).astype(np.int32)
    return delta / (np.float32(theta) * (T - w).astype(np.float32)), w


def assert_coeffs(rt, coeffs, rec, delta, T, theta, gradient):
    """The Coeffs a kernel wrote with delta equal want_coeffs of its delta bit for bit."""
    a, w = want_coeffs(rec, rt.asnumpy(delta), T, theta, gradient)
    np.testing.assert_array_equal(rt.asnumpy(coeffs.w), w)
    np.testing.assert_array_equal(rt.asnumpy(coeffs.a), a)


@pytest.mark.parametrize("method", [MethodConfig(), MethodConfig(loss="ce", temperature=2.5),
                                    MethodConfig(loss="mse", r_target=0.8), MethodConfig(gradient="rate")],
                         ids=["ce", "ce-tau", "mse", "rate"])
@pytest.mark.parametrize("B, T, C", [(6, 16, 11), (1, 3, 2), (33, 8, 10)])
@pytest.mark.parametrize("global_batch", [None, 71], ids=["local", "global"])
def test_readout_loss(gpu_kernel_rt, gpu_kernel_rng, method, B, T, C, global_batch):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    rec = random_record(rng, B, T, C)
    labels = rng.integers(0, C, B)
    theta = float(rng.uniform(0.5, 2.0))
    rho, loss, delta, coeffs = readout_loss(rt, to_device(rt, rec), labels, T, theta, method, global_batch)
    rho_ref = ref.readout(rec.counts, rec.u_final, theta, T)
    loss_ref, delta_ref = ref.loss_and_delta(rho_ref, labels, method, T, global_batch)
    np.testing.assert_array_equal(rt.asnumpy(rho), rho_ref)   # same double arithmetic
    np.testing.assert_allclose(rt.asnumpy(loss), loss_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rt.asnumpy(delta), delta_ref, rtol=1e-6, atol=1e-9)
    assert_coeffs(rt, coeffs, rec, delta, T, theta, method.gradient)


def test_readout_rejects_bad_labels(gpu_kernel_rt, gpu_kernel_rng):
    rec = to_device(gpu_kernel_rt, random_record(gpu_kernel_rng, 2, 4, 3))
    with pytest.raises(ValueError, match="class indices"):
        readout_loss(gpu_kernel_rt, rec, np.array([0, 3]), 4, 1.0, MethodConfig())


@pytest.mark.parametrize("gradient", ["timing", "rate"])
@pytest.mark.parametrize("B, T, n_cur, n_next", [(5, 8, 70, 11), (2, 1, 1, 3), (3, 16, 33, 64)])
def test_backward_delta(gpu_kernel_rt, gpu_kernel_rng, B, T, n_cur, n_next, gradient):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    rec = random_record(rng, B, T, n_cur)
    W = [rng.standard_normal((4, n_cur)).astype(np.float32), rng.standard_normal((n_cur, n_next)).astype(np.float32)]
    d_next = rng.standard_normal((B, n_next)).astype(np.float32)
    theta = 0.75
    want = ref.backward_deltas(W, [rec, None], d_next, theta, T)[0]
    got, coeffs = backward_delta(rt, rt.xp.asarray(d_next), rt.xp.asarray(W[1]), to_device(rt, rec), T, theta,
                                 gradient)
    scale = np.abs(d_next).sum(axis=1, keepdims=True) * np.abs(W[1]).max() / theta
    np.testing.assert_allclose(rt.asnumpy(got), want, rtol=0, atol=float(scale.max()) * 1e-6)
    assert np.all((rt.asnumpy(got) == 0) == (want == 0))
    assert_coeffs(rt, coeffs, rec, got, T, theta, gradient)
    # the standalone path (gradient_coeffs from the same delta) gives the same bits
    alone = coefficients(rt, to_device(rt, rec), got, T, theta, gradient)
    for x, y in ((coeffs.a, alone.a), (coeffs.w, alone.w)):
        np.testing.assert_array_equal(rt.asnumpy(x), rt.asnumpy(y))


@pytest.mark.parametrize("gradient", ["timing", "rate"])
@pytest.mark.parametrize("B, T, n_pre, n_post, density, repeats", [
    (4, 16, 90, 40, 0.1, False), (3, 6, 20, 33, 0.4, True), (3, 6, 20, 33, 0.4, "coalesced"),
    (2, 1, 5, 7, 0.5, False), (3, 8, 10, 4, 0.0, False), (2, 40, 37, 9, 0.3, False), (0, 5, 6, 3, 0.5, False)])
def test_weight_gradient(gpu_kernel_rt, gpu_kernel_rng, gradient, B, T, n_pre, n_post, density, repeats):
    """Bit for bit the reference's, from a CSR tensor (suffix table) and, for binary spikes,
    from their occupancy grid (step masks; T = 40 spans two mask words)."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    dense = (rng.random((B, T, n_pre)) < density) * (rng.integers(1, 3, (B, T, n_pre)) if repeats else 1)
    S = from_dense(dense.astype(np.int32), coalesced=repeats == "coalesced")
    rec = random_record(rng, B, T, n_post)
    delta = rng.standard_normal((B, n_post)).astype(np.float32)
    theta = 1.25
    # B = 0 (an empty data-parallel share): the reference cannot run; the sum is empty
    want = ref.weight_gradient(S, rec, delta, theta, gradient) if B else np.zeros((n_pre, n_post), np.float32)
    xp = rt.xp
    inputs = [S.to(xp)] + ([] if repeats else [SpikeGrid(xp.asarray(bit_grid(dense)), B, T, n_pre)])
    for spikes in inputs:
        got = rt.asnumpy(weight_gradient(rt, spikes, to_device(rt, rec), xp.asarray(delta), theta, gradient))
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_array_equal(got, want, err_msg=type(spikes).__name__)
    assert B == 0 or density == 0 or np.count_nonzero(want) > 0


def test_spike_tables(gpu_kernel_rt, gpu_kernel_rng):
    """Suffix table of a CSR tensor with repeats and counts = the reference's suffix counts;
    masks of a grid = the steps' bits, independently packed."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    B, T, N = 3, 37, 45
    dense = (rng.random((B, T, N)) < 0.3) * rng.integers(1, 4, (B, T, N))
    want = ref.suffix_counts(from_dense(dense.astype(np.int32)))[:, :T].transpose(0, 2, 1)   # [B, N, T]
    for S in (from_dense(dense.astype(np.int32)), from_dense(dense.astype(np.int32), coalesced=True),
              from_dense(dense.astype(np.int32)).expand()):
        table, kind, width = spike_table(rt, S.to(rt.xp))
        assert (kind, width) == (TABLE_SUFFIX, T)
        np.testing.assert_array_equal(rt.asnumpy(table), want)
    fired = dense != 0
    table, kind, width = spike_table(rt, SpikeGrid(rt.xp.asarray(bit_grid(fired)), B, T, N))
    assert (kind, width) == (TABLE_MASKS, 2)
    steps = fired.transpose(0, 2, 1)                       # [B, N, T]
    words = [(steps[:, :, 32 * q:32 * q + 32].astype(np.uint64) << np.arange(min(32, T - 32 * q), dtype=np.uint64))
             .sum(axis=2) for q in range(width)]
    np.testing.assert_array_equal(rt.asnumpy(table), np.stack(words, axis=2).astype(np.uint32))


def chunked_inputs(xp, rng, B, T, n_pre):
    """The same batch in the gradient's three input forms: a CSR tensor with repeated ids
    (count encoding), the coalesced tensor with counts, and binary spikes as a grid."""
    counts = (rng.random((B, T, n_pre)) < 0.3) * rng.integers(1, 4, (B, T, n_pre))
    fired = (rng.random((B, T, n_pre)) < 0.3).astype(np.int32)
    return {"repeats": (from_dense(counts.astype(np.int32)), from_dense(counts.astype(np.int32)).to(xp)),
            "counts": (from_dense(counts.astype(np.int32), coalesced=True),
                       from_dense(counts.astype(np.int32), coalesced=True).to(xp)),
            "grid": (from_dense(fired), SpikeGrid(xp.asarray(bit_grid(fired)), B, T, n_pre))}


@pytest.mark.parametrize("gradient", ["timing", "rate"])
@pytest.mark.parametrize("form", ["repeats", "counts", "grid"])
def test_chunked_weight_gradient_is_the_unchunked_bit_for_bit(gpu_kernel_rt, gpu_kernel_rng, gradient, form):
    """Tables bounded to 1, 2, 3 or 4 samples (uneven last chunk) or the whole batch: G is
    bit for bit the unchunked G and the reference's; the chunk count is what the bound
    allows (one weight_gradient launch per chunk)."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    B, T, n_pre, n_post, theta = 7, 40, 23, 9, 1.25      # T = 40: two mask words
    host, spikes = chunked_inputs(rt.xp, rng, B, T, n_pre)[form]
    rec = random_record(rng, B, T, n_post)
    delta = rng.standard_normal((B, n_post)).astype(np.float32)
    want = ref.weight_gradient(host, rec, delta, theta, gradient)
    assert np.count_nonzero(want) > 0
    per_sample = 4 * n_pre * (T if form != "grid" else 2)
    d_rec, d_delta = to_device(rt, rec), rt.xp.asarray(delta)
    whole = rt.asnumpy(weight_gradient(rt, spikes, d_rec, d_delta, theta, gradient))
    np.testing.assert_array_equal(whole, want)
    for samples in (1, 2, 3, 4, B):
        rt.reset_counts()
        got = weight_gradient(rt, spikes, d_rec, d_delta, theta, gradient, limit=samples * per_sample + 3)
        assert rt.traffic.kernels["gradient.weight_gradient"] == -(-B // samples)
        np.testing.assert_array_equal(rt.asnumpy(got), whole, err_msg=f"{samples} samples per chunk")


def address(a) -> int:
    """The device (CuPy) or host (NumPy) address of an array's first element."""
    return a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data


@pytest.mark.parametrize("form", ["counts", "grid"])
def test_chunked_tables_reuse_one_buffer(gpu_kernel_rt, gpu_kernel_rng, form):
    """Chunk by chunk the tables are the whole batch's table sliced by sample; launches per
    chunk: the table kernel and the gradient, plus (suffix counts) a zeroing: one allocating
    zeros for the first chunk, an in-place copyto for each later one, in the same buffer."""
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    B, T, n_pre = 5, 6, 11
    _, spikes = chunked_inputs(rt.xp, rng, B, T, n_pre)[form]
    whole, kind, width = spike_table(rt, spikes)
    whole = rt.asnumpy(whole)
    buffer = None
    for b0, n_b in ((0, 2), (2, 2), (4, 1)):
        table, k, wd = spike_table(rt, spikes, b0, n_b, None if buffer is None else buffer[:n_b])
        buffer = table if buffer is None else buffer
        assert address(table) == address(buffer), "every chunk's table is the one buffer"
        assert (k, wd) == (kind, width) and table.shape == (n_b, n_pre, width)
        np.testing.assert_array_equal(rt.asnumpy(table), whole[b0:b0 + n_b], err_msg=f"chunk at {b0}")
    rec = random_record(rng, B, T, 4)
    rt.reset_counts()
    weight_gradient(rt, spikes, to_device(rt, rec), rt.xp.asarray(rng.standard_normal((B, 4)).astype(np.float32)),
                    0.5, limit=2 * 4 * n_pre * width)
    table_kernel = "gradient.grid_masks" if form == "grid" else "gradient.suffix_table"
    assert rt.traffic.kernels == {"gradient.gradient_coeffs": 1, table_kernel: 3, "gradient.weight_gradient": 3}
    assert rt.traffic.library == ({} if form == "grid" else {"zeros": 1, "copyto": 2})
