"""A training step captured once as a CUDA graph and replayed for every later batch of the
same shape (cuda only; offered, off by default: not yet measured on a GPU).

The step's shapes are static when its input has a fixed size and its labels are a device
buffer: binary spikes as their occupancy grid (SpikeGrid.from_tensor), spikes with counts or
repeats as a CSR list padded to a capacity (PaddedSpikes). Every batch of the same B and T
then launches the same kernels on buffers of the same shapes (tests/test_gpu_counting.py),
and after the first update the launches' scalars are the same too (update.py passes
min(step, 1)). GraphStep keeps the input, the labels and the step's intermediates at fixed
device addresses, in a memory pool of its own that no other work allocates from, so a
replay reads and writes the same memory the capture recorded.

Per batch: the input and labels are staged and checked on the host, copied into the static
buffers, the graph is launched, and the packed results (loss, rates, spikes per layer) come
back in one copy: the one host synchronisation, as in training.train_batch. A batch that does
not fit the captured buffers (another B or T, more entries than the capacity, binary after
counts) is captured anew.

The weights and the optimiser's arrays are captured by address: they are updated in place
and must stay the same arrays (load a checkpoint into a new GraphStep).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu.backend import unpack_results
from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
from gpusnn.backends.gpu.gradient import check_labels
from gpusnn.errors import ConfigError, ShapeError

CAPACITY_SLACK = 1.25   # a padded CSR input holds 1.25 x the entries of the batch it was captured on
CAPACITY_ROUND = 4096   # ... rounded up to a multiple of this


def static_input(spikes: SpikeTensor, capacity: int = 0):
    """The host form of a batch with a fixed size: its SpikeGrid when the spikes are binary
    (no counts, no repeated ids), else PaddedSpikes of max(capacity, the slack above nnz)."""
    if spikes.counts is None:
        try:
            return SpikeGrid.from_tensor(spikes)
        except ShapeError:   # repeated ids within a step: not binary
            pass
    need = -(-int(spikes.nnz * CAPACITY_SLACK) // CAPACITY_ROUND) * CAPACITY_ROUND
    return PaddedSpikes.from_tensor(spikes, max(capacity, need, CAPACITY_ROUND))


def array_fields(x) -> dict:
    """The array fields of a SpikeGrid or PaddedSpikes (name -> array; absent counts left out)."""
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)
            if f.name not in ("n_samples", "n_steps", "n_inputs") and getattr(x, f.name) is not None}


def fits(buffers, host) -> bool:
    """Whether host (a static input) can be copied into the captured input buffers."""
    if type(buffers) is not type(host) or (buffers.n_samples, buffers.n_steps, buffers.n_inputs) != \
            (host.n_samples, host.n_steps, host.n_inputs):
        return False
    a, b = array_fields(buffers), array_fields(host)
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)


class GraphStep:
    """training.train_batch of host batches as one CUDA graph per (B, T) (module docstring).

    backend: the cuda GpuBackend; state: its training.TrainState; cfg: the RunConfig. The
    first update (state.optim.step == 0, a plain gradient step) runs eagerly on the same
    static input; the capture happens on the first call after it.
    """

    def __init__(self, backend, state, cfg):
        if getattr(backend, "name", None) != "cuda":
            raise ConfigError(f"--cuda-graph needs --backend cuda (CUDA graphs are captured by the CUDA driver), "
                              f"not --backend {getattr(backend, 'name', backend)}")
        import cupy
        self.cupy = cupy
        self.backend, self.state, self.cfg = backend, state, cfg
        # a blocking stream: its graph launches are ordered with work on the default stream
        # (the eager first step, evaluation), which reads and writes the same weights
        self.stream = cupy.cuda.Stream()
        self.pool = cupy.cuda.MemoryPool()   # the graph's memory: nothing else allocates from it
        self.graph = None
        self.input = self.labels = self.packed = None   # the captured graph's static buffers
        self.captures = 0                    # how many graphs were captured (one per new batch shape)

    def __call__(self, spikes: SpikeTensor, labels: np.ndarray):
        """(loss float64 [B], predictions int64 [B], spikes per layer [L]) of one batch of host
        spikes with labels [B]."""
        spikes = spikes.to(np)
        cap = self.input.ids.shape[0] if isinstance(self.input, PaddedSpikes) else 0
        host = static_input(spikes, cap)
        B, C = spikes.n_samples, self.cfg.network.widths[-1]
        y = check_labels(np.asarray(labels), B, C).astype(np.int64)
        if self.state.optim.step == 0:
            from gpusnn import training
            dev = dataclasses.replace(host, **{k: self.backend.asarray(a) for k, a in array_fields(host).items()})
            return training.train_batch(self.backend, self.state, self.cfg, dev, y)
        if self.graph is None or not fits(self.input, host):
            self._capture(host)
        with self.stream:
            for name, a in array_fields(host).items():
                getattr(self.input, name).set(a)
            self.labels.set(y)
            self.graph.launch(self.stream)
            packed = self.packed.get()
        self.state.optim.step += 1
        loss, rho, layer_spikes = unpack_results(packed, B, C)
        return loss, rho.argmax(axis=1), layer_spikes

    def _capture(self, host) -> None:
        """Record forward, gradients, update and the packing of the results on static buffers
        shaped like host (nothing runs during the capture; the step counter is kept)."""
        cupy, net = self.cupy, self.cfg.network
        from gpusnn.optimizer import apply_update
        self.graph = None
        step = self.state.optim.step
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
            self.input = dataclasses.replace(host, **{k: cupy.zeros(a.shape, a.dtype)
                                                      for k, a in array_fields(host).items()})
            self.labels = cupy.zeros(host.n_samples, cupy.int64)
            self.stream.begin_capture()
            try:
                w = self.state.weights
                records = self.backend.forward(w, self.input, net.theta, output_spikes=False)
                loss, rho, grads = self.backend.gradients(w, self.input, records, self.labels, net.n_steps,
                                                          net.theta, self.cfg.method)
                apply_update(self.backend, w, grads, self.state.optim, self.cfg.optim)
                self.packed = self.backend.pack_results(loss, rho, records)
            finally:
                graph = self.stream.end_capture()
                self.state.optim.step = step
        self.graph = graph
        self.captures += 1
