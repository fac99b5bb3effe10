"""update.cu against reference.fractional_update (+ the numpy backend's W_prev / G_prev
bookkeeping), for every option, emulated and on a GPU."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.config import OptimConfig
from gpusnn.backends.gpu.update import fractional_update

OPTIONS = [OptimConfig(), OptimConfig(alpha=1.9, eps=1e-8), OptimConfig(alpha=0.5, eps_inside=True),
           OptimConfig(alpha=1.5, grad_at="previous"), OptimConfig(alpha=1.3, factor_clip=None, w_max=None),
           OptimConfig(alpha=0.7, eps_inside=True, grad_at="previous", factor_clip=3.0, w_max=0.1)]


def random_state(rng, shape):
    W = rng.standard_normal(shape).astype(np.float32)
    W_prev = (W + rng.standard_normal(shape) * rng.choice([0.0, 1e-6, 1e-2], shape)).astype(np.float32)
    W_prev.flat[::7] = W.flat[::7]        # weights that did not move: the factor's hazard
    G = rng.standard_normal(shape).astype(np.float32)
    G_prev = rng.standard_normal(shape).astype(np.float32)
    return W, W_prev, G, G_prev


@pytest.mark.parametrize("step", [0, 1, 5])
@pytest.mark.parametrize("optim", OPTIONS, ids=lambda o: f"a{o.alpha}-{o.grad_at}-in{int(o.eps_inside)}")
@pytest.mark.parametrize("shape", [(37, 11), (1, 1), (300, 64)])
def test_fractional_update(gpu_kernel_rt, gpu_kernel_rng, step, optim, shape):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    W, W_prev, G, G_prev = random_state(rng, shape)
    keep = optim.grad_at == "previous"
    want = ref.fractional_update(W, W_prev=W_prev, G=G, G_prev=G_prev if keep else None, step=step, optim=optim)
    xp = rt.xp
    dW, dWp, dG, dGp = (xp.asarray(a.copy()) for a in (W, W_prev, G, G_prev))
    fractional_update(rt, dW, W_prev=dWp, G=dG, G_prev=dGp if keep else None, step=step, optim=optim)
    got = rt.asnumpy(dW)
    # only powf may differ from NumPy's (an ulp or two of the factor)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * float(np.abs(W).max()))
    assert np.all(np.isnan(got) == np.isnan(want))
    np.testing.assert_array_equal(rt.asnumpy(dWp), W)
    np.testing.assert_array_equal(rt.asnumpy(dGp), G if keep else G_prev)
    np.testing.assert_array_equal(rt.asnumpy(dG), G)


def test_alpha_one_is_gradient_descent_bit_for_bit(gpu_kernel_rt, gpu_kernel_rng):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    optim = OptimConfig(alpha=1.0, factor_clip=None, w_max=None)
    W, W_prev, G, _ = random_state(rng, (64, 33))
    outs = []
    for step in (0, 3):
        dW = rt.xp.asarray(W.copy())
        fractional_update(rt, dW, W_prev=rt.xp.asarray(W_prev.copy()), G=rt.xp.asarray(G), G_prev=None,
                          step=step, optim=optim)
        outs.append(rt.asnumpy(dW))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], W - np.float32(optim.lr) * G)


@pytest.mark.parametrize("alpha", [0.1, 1.9, 1.99])
def test_defaults_keep_weights_finite(gpu_kernel_rt, gpu_kernel_rng, alpha):
    rt, rng = gpu_kernel_rt, gpu_kernel_rng
    optim = dataclasses.replace(OptimConfig(), alpha=alpha)
    W, W_prev, G, _ = random_state(rng, (50, 20))
    dW, dWp = rt.xp.asarray(W), rt.xp.asarray(W)
    for step in range(4):
        fractional_update(rt, dW, W_prev=dWp, G=rt.xp.asarray(G * 1e3), G_prev=None, step=step, optim=optim)
    assert np.all(np.isfinite(rt.asnumpy(dW))) and np.abs(rt.asnumpy(dW)).max() <= optim.w_max
