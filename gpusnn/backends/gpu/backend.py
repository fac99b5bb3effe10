"""The kernel backends: ``cuda`` (CuPy arrays + cupy.RawModule) and ``emulated`` (NumPy
arrays + gpusnn.cuemu.RawModule, the same kernels compiled for the CPU). One code path,
written against the runtime's ``xp`` and RawModule (gpusnn.backends.gpu.runtime)."""
from __future__ import annotations

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu import encode
from gpusnn.backends.gpu.forward import check_weights, layer_forward
from gpusnn.backends.gpu.gradient import backward_delta, readout_loss, weight_gradient
from gpusnn.backends.gpu.runtime import KernelRuntime
from gpusnn.backends.gpu.update import fractional_update
from gpusnn.config import MethodConfig, OptimConfig
from gpusnn.errors import ConfigError


def make_runtime(name: str) -> KernelRuntime:
    """The runtime of backend `name`: "cuda" (needs CuPy and a GPU) or "emulated" (CPU)."""
    if name == "cuda":
        import cupy
        return KernelRuntime(cupy, cupy.RawModule, "cuda")
    if name == "emulated":
        from gpusnn import cuemu
        return KernelRuntime(np, cuemu.RawModule, "emulated")
    raise ConfigError(f"GpuBackend is 'cuda' or 'emulated', not {name!r}")


class GpuBackend:
    """The backend interface of gpusnn.backends on the kernels of kernels/*.cu.

    Per batch on cuda, only the labels go to the device and only the loss comes back
    (plus one scalar per layer: the number of output spikes, to size the spike list).
    """

    def __init__(self, name: str):
        self.rt = make_runtime(name)
        self.name = name
        self.xp = self.rt.xp

    def asarray(self, a):
        return self.xp.ascontiguousarray(self.xp.asarray(a))

    def asnumpy(self, a):
        return self.rt.asnumpy(a)

    def device_spikes(self, spikes: SpikeTensor) -> SpikeTensor:
        """spikes with indptr int64 and ids (and counts) int32 as contiguous device arrays."""
        xp = self.xp
        counts = None if spikes.counts is None else xp.ascontiguousarray(xp.asarray(spikes.counts, dtype=xp.int32))
        return SpikeTensor(xp.ascontiguousarray(xp.asarray(spikes.indptr, dtype=xp.int64)),
                           xp.ascontiguousarray(xp.asarray(spikes.ids, dtype=xp.int32)),
                           spikes.n_samples, spikes.n_steps, spikes.n_inputs, counts)

    def encode_batch(self, events, offsets, durations, n_steps: int, **encoding) -> SpikeTensor:
        """A batch's raw events (host EVENT_DTYPE [N], offsets [B + 1], durations [B] us) binned
        into its spike tensor on the device (gpusnn.backends.gpu.encode.encode_batch)."""
        return encode.encode_batch(self.rt, events, offsets, durations, n_steps, **encoding)

    def upload_events(self, events, offsets, durations, sensor_size) -> encode.DeviceEvents:
        """Every sample's events to the device once (then encode_samples per batch)."""
        return encode.upload_events(self.rt, events, offsets, durations, sensor_size)

    def encode_samples(self, store: encode.DeviceEvents, samples, n_steps: int, **encoding) -> SpikeTensor:
        """The spike tensor of samples of an uploaded store; only the indices travel."""
        return encode.encode_samples(self.rt, store, samples, n_steps, **encoding)

    def forward(self, weights, spikes: SpikeTensor, theta: float):
        spikes = self.device_spikes(spikes)
        records = []
        for W in weights:
            rec = layer_forward(self.rt, W, spikes, theta)
            records.append(rec)
            spikes = rec.spikes
        return records

    def gradients(self, weights, spikes: SpikeTensor, records, labels, T: int, theta: float,
                  method: MethodConfig):
        rho, loss, delta = readout_loss(self.rt, records[-1], labels, T, theta, method)
        deltas = [delta]
        for l in range(len(weights) - 2, -1, -1):
            deltas.insert(0, backward_delta(self.rt, deltas[0], weights[l + 1], records[l], T, theta))
        inputs = [self.device_spikes(spikes)] + [r.spikes for r in records[:-1]]
        grads = [weight_gradient(self.rt, s, r, d, theta, method.gradient)
                 for s, r, d in zip(inputs, records, deltas)]
        return self.asnumpy(loss).astype(np.float64), rho, grads

    def update(self, W, G, W_prev, G_prev, step: int, optim: OptimConfig) -> None:
        for a in (W, G, W_prev) + (() if G_prev is None else (G_prev,)):
            check_weights(self.rt, a)
        fractional_update(self.rt, W, G, W_prev, G_prev, step, optim)
