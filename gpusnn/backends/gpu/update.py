"""Wrapper of kernels/update.cu: the fractional-order update, in place (docs/method.md s. 4)."""
from __future__ import annotations

from gpusnn.backends.gpu.runtime import KernelRuntime, f32, i32, i64
from gpusnn.config import OptimConfig
from gpusnn.reference import gamma_factor


def fractional_update(rt: KernelRuntime, W, *, W_prev, G, G_prev, step: int, optim: OptimConfig) -> None:
    """W <- W(k+1) in place; W_prev <- W(k); G_prev <- G when G_prev is given (grad_at =
    "previous"). Same semantics as gpusnn.reference.fractional_update + the numpy backend."""
    keep = G_prev is not None
    # the kernel only asks whether step == 0: passing min(step, 1) keeps every launch after
    # the first identical (a captured CUDA graph replays it for any later step)
    rt.launch("update", "fractional_update", W.size,
              (W, W_prev, G, G_prev if keep else G, i64(W.size), i32(min(step, 1)), f32(optim.lr),
               f32(1.0 - optim.alpha), f32(gamma_factor(optim.alpha)), f32(optim.eps),
               i32(optim.eps_inside), i32(keep and optim.grad_at == "previous"), i32(keep),
               i32(optim.factor_clip is not None), f32(optim.factor_clip or 0.0),
               i32(optim.w_max is not None), f32(optim.w_max or 0.0)))
