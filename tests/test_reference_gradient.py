"""Loss, deltas and the spike-timing gradient against slow, obviously-correct loops."""
import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.config import MethodConfig
from helpers import random_spikes


def slow_windows(raster):
    """w[b, i] from a post raster [B, T, N]: last spike step, or the one before if that is T."""
    B, T, N = raster.shape
    w = np.zeros((B, N), int)
    for b in range(B):
        for i in range(N):
            times = [t + 1 for t in range(T) if raster[b, t, i]]
            if times and times[-1] == T:
                w[b, i] = times[-2] if len(times) > 1 else 0
            elif times:
                w[b, i] = times[-1]
    return w


def slow_timing_gradient(pre, post, delta, theta):
    B, T, n_pre = pre.shape
    n_post = post.shape[2]
    w = slow_windows(post)
    G = np.zeros((n_pre, n_post))
    for b in range(B):
        for i in range(n_post):
            for j in range(n_pre):
                c = sum(pre[b, t - 1, j] for t in range(w[b, i] + 1, T + 1))
                G[j, i] += delta[b, i] * c / (theta * (T - w[b, i]))
    return G


def slow_rate_gradient(pre, delta, theta):
    B, T, n_pre = pre.shape
    G = np.zeros((n_pre, delta.shape[1]))
    for b in range(B):
        for j in range(n_pre):
            G[j] += delta[b] * pre[b, :, j].sum() / (theta * T)
    return G


@pytest.mark.parametrize("trial", range(4))
def test_timing_gradient_matches_slow_loop(trial):
    rng = np.random.default_rng(31)
    B, T, n_pre, n_post, theta = 3, int(rng.integers(2, 9)), 7, 5, float(rng.uniform(0.5, 2))
    spikes = random_spikes(rng, B, T, n_pre, 0.4)
    W = rng.normal(0.3, 0.8, (n_pre, n_post)).astype(np.float32)
    rec = ref.forward([W], spikes, theta)[0]
    delta = rng.normal(size=(B, n_post)).astype(np.float32)
    G = ref.weight_gradient(spikes, rec, delta, theta, "timing")
    post = rec.spikes.to_dense()
    assert post.sum() > 0
    np.testing.assert_allclose(G, slow_timing_gradient(spikes.to_dense(), post, delta, theta), rtol=1e-5, atol=1e-6)


def test_rate_gradient_matches_slow_loop():
    rng = np.random.default_rng(32)
    B, T, n_pre, n_post, theta = 4, 6, 9, 3, 1.3
    spikes = random_spikes(rng, B, T, n_pre, 0.3)
    rec = ref.forward([rng.normal(0.3, 0.5, (n_pre, n_post)).astype(np.float32)], spikes, theta)[0]
    delta = rng.normal(size=(B, n_post)).astype(np.float32)
    G = ref.weight_gradient(spikes, rec, delta, theta, "rate")
    np.testing.assert_allclose(G, slow_rate_gradient(spikes.to_dense(), delta, theta), rtol=1e-5, atol=1e-6)


def test_timing_gradient_counts_only_spikes_after_the_last_post_spike():
    # pre spikes at steps 1 and 4; post neuron fires at 2 (w = 2, T = 5): only the spike at 4 counts
    from helpers import spikes_at
    spikes = spikes_at({0: [1, 4], 1: [2]}, 2, 5)
    W = np.array([[0.5], [0.5]], np.float32)     # v(1) = 0.5, v(2) = 1.0 -> spike at 2
    rec = ref.forward([W], spikes, 1.0)[0]
    assert rec.t_last[0, 0] == 2
    G = ref.weight_gradient(spikes, rec, np.array([[1.0]], np.float32), 1.0)
    np.testing.assert_allclose(G[:, 0], [1 / 3, 0.0])


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_output_delta_is_the_derivative_of_the_mean_loss(loss):
    rng = np.random.default_rng(33)
    B, C, T = 5, 4, 10
    method = MethodConfig(loss=loss, temperature=1.7, r_target=0.6)
    rho = rng.uniform(0, 1, (B, C)).astype(np.float64)
    labels = rng.integers(0, C, B)
    _, delta = ref.loss_and_delta(rho.astype(np.float32), labels, method, T)
    h = 1e-6
    num = np.zeros((B, C))
    for b in range(B):
        for k in range(C):
            up, dn = rho.copy(), rho.copy()
            up[b, k] += h
            dn[b, k] -= h
            lu, _ = ref.loss_and_delta(up, labels, method, T)
            ld, _ = ref.loss_and_delta(dn, labels, method, T)
            num[b, k] = (lu.mean() - ld.mean()) / (2 * h)
    np.testing.assert_allclose(delta, num, rtol=1e-4, atol=1e-6)


def test_hidden_deltas_follow_the_gated_chain_rule():
    rng = np.random.default_rng(34)
    B, T, theta = 2, 6, 1.0
    spikes = random_spikes(rng, B, T, 6, 0.5)
    W1 = rng.normal(0.2, 0.6, (6, 4)).astype(np.float32)
    W2 = rng.normal(0, 1, (4, 3)).astype(np.float32)
    recs = ref.forward([W1, W2], spikes, theta)
    d_out = rng.normal(size=(B, 3)).astype(np.float32)
    d_hid, d_last = ref.backward_deltas([W1, W2], recs, d_out, theta, T)
    assert d_last is d_out
    for b in range(B):
        for j in range(4):
            n, u = recs[0].counts[b, j], recs[0].u_final[b, j]
            gate = 1.0 if (n > 0 or u > 0) and n < T else 0.0
            expect = gate * sum(W2[j, i] * d_out[b, i] for i in range(3)) / theta
            assert d_hid[b, j] == pytest.approx(expect, rel=1e-5, abs=1e-7)
