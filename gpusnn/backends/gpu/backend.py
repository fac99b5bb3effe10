"""The kernel backends: ``cuda`` (CuPy arrays + cupy.RawModule) and ``emulated`` (NumPy
arrays + gpusnn.cuemu.RawModule, the same kernels compiled for the CPU). One code path,
written against the runtime's ``xp`` and RawModule (gpusnn.backends.gpu.runtime)."""
from __future__ import annotations

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu import encode
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.forward import check_mode, check_weights, layer_forward
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
    """The Backend (gpusnn.backends.protocol) on the kernels of kernels/*.cu.

    Per training batch on cuda the batch's spikes and labels go to the device and one packed
    copy comes back (host_results: loss, rates, spikes per layer): the only host
    synchronisation. Hidden layers pass their spikes on as occupancy grids (SpikeGrid). xp is
    the plain array module; rt.xp counts (rt.traffic, gpusnn.backends.gpu.counting).

    mode: how a layer's input currents are computed, "event" (kernel A, the reference's
    float order bit for bit), "dense" (GEMM of the dense input) or "auto" (dense above
    gpusnn.backends.gpu.forward.DENSE_ABOVE input density; docs/kernels.md).
    """

    def __init__(self, name: str, mode: str = "auto"):
        self.rt = make_runtime(name)
        self.name = name
        self.mode = check_mode(mode)
        self.xp = self.rt.array_module

    def asarray(self, a):
        """a as a contiguous device array: an upload of a host array, else a itself (or a copy)."""
        if isinstance(a, self.xp.ndarray) and self.name == "cuda":
            return self.rt.xp.ascontiguousarray(a)
        return self.rt.to_device(a)

    def asnumpy(self, a):
        return self.rt.to_host(a, "asnumpy")

    def _on_device(self, spikes):
        """A layer input as the kernels read it: a SpikeTensor's arrays as the runtime's
        (counted) module's; a SpikeGrid or PaddedSpikes (device arrays already) as it is."""
        return spikes.to(self.rt.xp) if isinstance(spikes, SpikeTensor) else spikes

    def encode_batch(self, events, offsets, durations, n_steps: int, **encoding) -> SpikeGrid | PaddedSpikes:
        """A batch's raw events (host EVENT_DTYPE [N] or its columns, offsets [B + 1], durations [B] us) binned
        on the device into the static form the forward reads (gpusnn.backends.gpu.encode.encode_batch)."""
        return encode.encode_batch(self.rt, events, offsets, durations, n_steps, **encoding)

    def upload_events(self, events, offsets, durations, sensor_size) -> encode.DeviceEvents:
        """Every sample's events to the device once (then encode_samples per batch)."""
        return encode.upload_events(self.rt, events, offsets, durations, sensor_size)

    def concat_events(self, parts) -> encode.DeviceEvents:
        """Device stores of consecutive sample chunks as one (gpusnn.backends.gpu.encode.concat_events)."""
        return encode.concat_events(self.rt, parts)

    def encode_samples(self, store: encode.DeviceEvents, samples, n_steps: int, **encoding) -> SpikeGrid | PaddedSpikes:
        """The spikes of samples of an uploaded store (a SpikeGrid, or PaddedSpikes in count
        mode); only the indices travel, nothing is read back."""
        return encode.encode_samples(self.rt, store, samples, n_steps, **encoding)

    def forward(self, weights, spikes, theta: float, output_spikes: bool = True):
        """LayerRecords of every layer from spikes (a SpikeTensor, a device SpikeGrid or
        PaddedSpikes), each layer's spikes a SpikeGrid on the device (the
        next layer reads it as it is; .to(np) compacts it on the host); output_spikes=False
        leaves the last layer's spikes None."""
        spikes = self._on_device(spikes)
        records = []
        for l, W in enumerate(weights):
            rec = layer_forward(self.rt, W, spikes, theta, output_spikes or l + 1 < len(weights), self.mode)
            records.append(rec)
            spikes = rec.spikes
        return records

    def gradients(self, weights, spikes: SpikeTensor, records, labels, T: int, theta: float,
                  method: MethodConfig, batch_norm: int | None = None):
        rho, loss, delta, coeffs = readout_loss(self.rt, records[-1], labels, T, theta, method, batch_norm)
        backward = [(delta, coeffs)]   # (delta, Coeffs) per layer, the output layer's last
        for l in range(len(weights) - 2, -1, -1):
            backward.insert(0, backward_delta(self.rt, backward[0][0], weights[l + 1], records[l], T, theta,
                                              method.gradient))
        inputs = [self._on_device(spikes)] + [r.spikes for r in records[:-1]]
        grads = [weight_gradient(self.rt, s, r, d, theta, method.gradient, coeffs=c)
                 for s, r, (d, c) in zip(inputs, records, backward)]
        return loss, rho, grads

    def host_results(self, loss, rho, records):
        """(loss float64 [B], rho float32 [B, C], spikes per layer [L] ints) on the host, in
        one packed device-to-host copy (pack_results, then unpack_results)."""
        packed = self.rt.to_host(self.pack_results(loss, rho, records), "batch results")
        return unpack_results(packed, *rho.shape)

    def pack_results(self, loss, rho, records):
        """float64 [B + B*C + L] on the device: loss, rho and each layer's spike total (summed
        on the device; float64 is exact below 2**53)."""
        xp = self.rt.xp
        totals = [xp.sum(r.counts.reshape(1, -1), axis=1, dtype=xp.float64) for r in records]
        return xp.concatenate([loss, rho.reshape(-1)] + totals, dtype=xp.float64)

    def update(self, W, *, W_prev, G, G_prev, step: int, optim: OptimConfig) -> None:
        for a in (W, W_prev, G) + (() if G_prev is None else (G_prev,)):
            check_weights(self.rt, a)
        fractional_update(self.rt, W, W_prev=W_prev, G=G, G_prev=G_prev, step=step, optim=optim)


def unpack_results(packed: np.ndarray, B: int, C: int):
    """(loss float64 [B], rho float32 [B, C], spikes per layer ints) of a host copy of
    GpuBackend.pack_results."""
    return (packed[:B].copy(), packed[B:B + B * C].reshape(B, C).astype(np.float32),
            [int(v) for v in packed[B + B * C:]])
