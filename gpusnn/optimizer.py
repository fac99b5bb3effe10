"""The fractional optimiser's explicit state (checkpointed) and the step that drives a backend."""
from __future__ import annotations

from dataclasses import dataclass

from gpusnn.backends import Backend
from gpusnn.config import OptimConfig


@dataclass
class OptimState:
    """Memory of the fractional-order update, per layer.

    W_prev: W(k-1) per layer, same shape and dtype as the weights; G_prev: G(k-1) per
    layer, kept only when grad_at = "previous" (else None); step: k, the number of
    updates done so far (0 before the first, which is a plain gradient step).
    """

    W_prev: list
    G_prev: list | None
    step: int = 0


def init_state(weights: list, optim: OptimConfig, xp) -> OptimState:
    """Fresh state for weights (arrays of module xp): W_prev = W, no G_prev yet, step 0."""
    return OptimState([xp.array(W, copy=True) for W in weights],
                      [xp.zeros_like(W) for W in weights] if optim.grad_at == "previous" else None, 0)


def apply_update(backend: Backend, weights: list, grads: list, state: OptimState, optim: OptimConfig) -> None:
    """One optimisation step on every layer, in place, then advance the step counter."""
    for l, (W, G) in enumerate(zip(weights, grads)):
        backend.update(W, W_prev=state.W_prev[l], G=G,
                       G_prev=None if state.G_prev is None else state.G_prev[l], step=state.step, optim=optim)
    state.step += 1
