"""The fractional-order update (method.md section 4) against float64 evaluations of the formula."""
import math

import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import OptimConfig
from gpusnn.optimizer import apply_update, init_state


def formula(W, W_prev, G, cfg):
    W, W_prev, G = (np.asarray(a, np.float64) for a in (W, W_prev, G))
    base = np.abs(W - W_prev + cfg.eps) if cfg.eps_inside else np.abs(W - W_prev) + cfg.eps
    factor = base ** (1 - cfg.alpha) / math.gamma(2 - cfg.alpha)
    if cfg.factor_clip is not None:
        factor = np.minimum(factor, cfg.factor_clip)
    new = W - cfg.lr * G * factor
    return new if cfg.w_max is None else np.clip(new, -cfg.w_max, cfg.w_max)


def arrays(rng, shape=(40, 30)):
    W = rng.normal(0, 0.3, shape).astype(np.float32)
    W_prev = (W + rng.normal(0, 1e-2, shape)).astype(np.float32)
    G = rng.normal(0, 1, shape).astype(np.float32)
    return W, W_prev, G


def run_steps(cfg, grads, W0):
    be = NumpyBackend()
    weights = [W0.copy()]
    state = init_state(weights, cfg, np)
    for G in grads:
        apply_update(be, weights, [G], state, cfg)
    return weights[0], state


def test_alpha_one_is_plain_gradient_descent_bit_for_bit():
    rng = np.random.default_rng(21)
    W0 = rng.normal(0, 0.3, (30, 20)).astype(np.float32)
    grads = [rng.normal(0, 1, W0.shape).astype(np.float32) for _ in range(6)]
    for eps_inside in (False, True):
        cfg = OptimConfig(alpha=1.0, lr=0.01, eps_inside=eps_inside, w_max=None)
        W, state = run_steps(cfg, grads, W0)
        plain = W0.copy()
        for G in grads:
            plain = plain - np.float32(0.01) * G
        assert W.tobytes() == plain.tobytes()
        assert state.step == 6


@pytest.mark.parametrize("alpha", [0.5, 1.5, 1.9])
@pytest.mark.parametrize("eps_inside", [False, True])
def test_fractional_step_matches_float64_formula(alpha, eps_inside):
    rng = np.random.default_rng(22)
    W = rng.normal(0, 0.3, (40, 30)).astype(np.float32)
    # weights moved by 2e-3 .. 2e-2 in either direction, so that even |W - W_prev + eps| stays
    # >= 1e-3: near a zero base float32 rounding of the difference is amplified without bound
    moved = rng.uniform(2e-3, 2e-2, W.shape) * rng.choice([-1, 1], W.shape)
    W_prev = (W - moved).astype(np.float32)
    G = rng.normal(0, 1, W.shape).astype(np.float32)
    cfg = OptimConfig(alpha=alpha, lr=0.003, eps=1e-3, eps_inside=eps_inside, factor_clip=None, w_max=None)
    new = ref.fractional_update(W, W_prev=W_prev, G=G, G_prev=None, step=3, optim=cfg)
    expect = formula(W, W_prev, G, cfg)
    # compare the steps: relative error of the float32 base (<= 1e-4) times |1 - alpha|
    np.testing.assert_allclose(W.astype(np.float64) - new, W - expect, rtol=1e-4, atol=1e-7)


def test_eps_placement_changes_the_factor_where_weights_move_backwards():
    W = np.array([0.0], np.float32)
    W_prev = np.array([0.5e-3], np.float32)           # W - W_prev = -eps / 2
    out = OptimConfig(alpha=1.5, eps=1e-3, factor_clip=None)
    ins = OptimConfig(alpha=1.5, eps=1e-3, eps_inside=True, factor_clip=None)
    g = 1 / math.gamma(0.5)
    assert ref.fractional_factor(W, W_prev, out)[0] == pytest.approx((1.5e-3) ** -0.5 * g, rel=1e-5)
    assert ref.fractional_factor(W, W_prev, ins)[0] == pytest.approx((0.5e-3) ** -0.5 * g, rel=1e-4)


def test_first_step_is_plain_and_later_steps_are_fractional():
    rng = np.random.default_rng(23)
    W0, _, G0 = arrays(rng)
    G1 = rng.normal(0, 1, W0.shape).astype(np.float32)
    cfg = OptimConfig(alpha=1.5, lr=0.002, factor_clip=None, w_max=None)
    W, state = run_steps(cfg, [G0], W0)
    np.testing.assert_array_equal(W, W0 - np.float32(0.002) * G0)
    np.testing.assert_array_equal(state.W_prev[0], W0)
    W1 = W.copy()
    W2, _ = run_steps(cfg, [G0, G1], W0)
    np.testing.assert_allclose(W2, formula(W1, W0, G1, cfg), rtol=2e-6, atol=1e-7)


def test_grad_at_previous_uses_the_gradient_of_the_step_before():
    rng = np.random.default_rng(24)
    W0, _, G0 = arrays(rng)
    G1 = rng.normal(0, 1, W0.shape).astype(np.float32)
    cfg = OptimConfig(alpha=0.7, lr=0.002, grad_at="previous", factor_clip=None, w_max=None)
    W1 = W0 - np.float32(0.002) * G0
    W2, state = run_steps(cfg, [G0, G1], W0)
    np.testing.assert_allclose(W2, formula(W1, W0, G0, cfg), rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(state.G_prev[0], G1)


def test_clip_bounds_the_factor_then_the_clamp_bounds_the_weight():
    W = np.array([1.0, 0.5], np.float32)
    cfg = OptimConfig(alpha=1.9, lr=0.1, eps=1e-6, factor_clip=3.0, w_max=1.2)
    new = ref.fractional_update(W, W_prev=W.copy(), G=np.array([-10.0, 1.0], np.float32), G_prev=None,
                                step=5, optim=cfg)
    # factor = min(huge, 3): 1 + 0.1 * 10 * 3 = 4 -> clamped to 1.2; 0.5 - 0.1 * 3 = 0.2
    np.testing.assert_allclose(new, [1.2, 0.2], rtol=1e-6)


@pytest.mark.parametrize("alpha", np.round(np.linspace(0.05, 1.95, 20), 3))
def test_defaults_never_produce_nan_or_inf(alpha):
    rng = np.random.default_rng(25)
    cfg = OptimConfig(alpha=float(alpha))
    W0 = rng.normal(0, 0.3, (20, 20)).astype(np.float32)
    grads = []
    for k in range(300):
        G = rng.normal(0, 10 if k % 50 == 0 else 1, W0.shape).astype(np.float32)
        G[:, : k % 20] = 0   # weights that stop moving: the factor grows for alpha > 1
        grads.append(G)
    W, state = run_steps(cfg, grads, W0)
    assert np.isfinite(W).all() and np.isfinite(state.W_prev[0]).all()
