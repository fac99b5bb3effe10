"""The reference backend: gpusnn.reference behind the backend interface."""
from __future__ import annotations

import numpy as np

from .. import reference as ref
from ..config import MethodConfig, OptimConfig
from ..spikes import SpikeTensor


class NumpyBackend:
    """Plain NumPy (+ scipy.sparse for the event-driven products). The oracle of the others."""

    name = "numpy"
    xp = np

    @staticmethod
    def asarray(a):
        return np.ascontiguousarray(a)

    @staticmethod
    def asnumpy(a):
        return np.asarray(a)

    def forward(self, weights, spikes: SpikeTensor, theta: float):
        return ref.forward(weights, spikes, theta)

    def gradients(self, weights, spikes: SpikeTensor, records, labels, T: int, theta: float,
                  method: MethodConfig):
        out = records[-1]
        rho = ref.readout(out.counts, out.u_final, theta, T)
        loss, delta = ref.loss_and_delta(rho, np.asarray(labels), method, T)
        deltas = ref.backward_deltas(weights, records, delta, theta, T)
        inputs = [spikes] + [r.spikes for r in records[:-1]]
        grads = [ref.weight_gradient(s, r, d, theta, method.gradient)
                 for s, r, d in zip(inputs, records, deltas)]
        return loss, rho, grads

    def update(self, W, G, W_prev, G_prev, step: int, optim: OptimConfig) -> None:
        new = ref.fractional_update(W, W_prev, G, G_prev, step, optim)
        W_prev[...] = W
        if G_prev is not None:
            G_prev[...] = G
        W[...] = new
