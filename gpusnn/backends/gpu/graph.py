"""A training step captured once as a CUDA graph and replayed for every later batch of the
same shape (cuda only: `gpusnn train --cuda-graph`; off by default: not yet measured on a GPU).

The step's shapes are static when its input has a fixed size and its labels are a device
buffer: binary spikes as their occupancy grid (SpikeGrid.from_tensor), spikes with counts or
repeats as a CSR list padded to a capacity (PaddedSpikes). Every batch of the same B and T
then launches the same kernels on buffers of the same shapes (tests/test_gpu_counting.py),
and after the first update the launches' scalars are the same too (update.py passes
min(step, 1)). GraphStep keeps the input, the labels and the step's intermediates at fixed
device addresses, in a memory pool of its own that no other work allocates from, so a
replay reads and writes the same memory the capture recorded.

Per batch (StaticStep.stage): the labels are checked on the host; the input, a host
SpikeTensor (staged as its static form, then uploaded) or a batch the device encoder made
(a SpikeGrid or PaddedSpikes already on the device: copied device to device, nothing read
back), is copied into the static buffers; the graph is launched, and the packed results
(loss, rates, spikes per layer) come back in one copy: the one host synchronisation, as in
training.train_batch. A padded input fits buffers of at least its capacity (the entries
past indptr are never read). A batch that does not fit the buffers (another B or T, a
larger capacity, binary after counts) gets new buffers and is captured anew.

StaticStep is the same staging with the step run eagerly on the buffers (any kernel
backend): the emulated tests run training through it to check the staging against
training.train_batch; GraphStep adds the capture.

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


def slack_capacity(n: int) -> int:
    """The capacity of a padded CSR buffer for n entries: CAPACITY_SLACK x n rounded up to a
    multiple of CAPACITY_ROUND (at least one multiple)."""
    return max(-(-int(n * CAPACITY_SLACK) // CAPACITY_ROUND) * CAPACITY_ROUND, CAPACITY_ROUND)


def static_input(spikes: SpikeTensor, capacity: int = 0):
    """The host form of a batch with a fixed size: its SpikeGrid when the spikes are binary
    (no counts, no repeated ids), else PaddedSpikes of max(capacity, slack_capacity(nnz))."""
    if spikes.counts is None:
        try:
            return SpikeGrid.from_tensor(spikes)
        except ShapeError:   # repeated ids within a step: not binary
            pass
    return PaddedSpikes.from_tensor(spikes, max(capacity, slack_capacity(spikes.nnz)))


def array_fields(x) -> dict:
    """The array fields of a SpikeGrid or PaddedSpikes (name -> array; absent counts left out)."""
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)
            if f.name not in ("n_samples", "n_steps", "n_inputs") and getattr(x, f.name) is not None}


def fits(buffers, batch) -> bool:
    """Whether batch (a static input, host or device) can be copied into the input buffers:
    same form, sizes and fields, equal shapes, and for padded CSR a capacity at most theirs."""
    if type(buffers) is not type(batch) or (buffers.n_samples, buffers.n_steps, buffers.n_inputs) != \
            (batch.n_samples, batch.n_steps, batch.n_inputs):
        return False
    a, b = array_fields(buffers), array_fields(batch)
    padded = ("ids", "counts") if isinstance(batch, PaddedSpikes) else ()
    return a.keys() == b.keys() and all(b[k].shape[0] <= a[k].shape[0] if k in padded else a[k].shape == b[k].shape
                                        for k in a)


def copy_into(dst, src) -> None:
    """src (a host or device array) into the leading src.shape[0] rows of the device array dst, in
    place (an upload from the host; a device-to-device copy on the current stream otherwise)."""
    part = dst[:src.shape[0]]
    if hasattr(part, "set") and isinstance(src, np.ndarray):
        part.set(np.ascontiguousarray(src, part.dtype))
    else:
        part[...] = src


class StaticStep:
    """training.train_batch on static device buffers: every batch is copied into the same input
    and labels arrays (new ones only when it does not fit) and the step runs on those.

    backend: a kernel backend (cuda or emulated GpuBackend); state: its training.TrainState;
    cfg: the RunConfig. Calls take (spikes, labels): a host SpikeTensor, or a SpikeGrid /
    PaddedSpikes on the device (what the device encoder gives), and int labels [B] on the host.
    """

    def __init__(self, backend, state, cfg):
        self.backend, self.state, self.cfg = backend, state, cfg
        self.input = self.labels = None      # the static buffers

    def stage(self, spikes, labels) -> bool:
        """Copy a batch into the static buffers (made anew when it does not fit them); True when
        the buffers are new."""
        given = isinstance(spikes, (SpikeGrid, PaddedSpikes))
        form = spikes if given else \
            static_input(spikes.to(np), self.input.capacity if isinstance(self.input, PaddedSpikes) else 0)
        y = check_labels(np.asarray(labels), form.n_samples, self.cfg.network.widths[-1]).astype(np.int64)
        new = self.input is None or not fits(self.input, form)
        if new:
            # a padded batch given as such (the device encoder's: capacity = its event count) gets
            # the slack here; static_input gave a host tensor's already
            capacity = 0 if not isinstance(form, PaddedSpikes) else \
                slack_capacity(form.capacity) if given else form.capacity
            self.input, self.labels = self._buffers(form, capacity)
        for name, a in array_fields(form).items():
            copy_into(getattr(self.input, name), a)
        copy_into(self.labels, y)
        return new

    def _buffers(self, form, capacity: int):
        """Zeroed device buffers shaped like form (padded CSR arrays with capacity entries) and labels [B]."""
        xp = self.backend.xp

        def shape(name, a):
            return (capacity,) if isinstance(form, PaddedSpikes) and name in ("ids", "counts") else a.shape
        zeros = {k: xp.zeros(shape(k, a), a.dtype) for k, a in array_fields(form).items()}
        return dataclasses.replace(form, **zeros), xp.zeros(form.n_samples, xp.int64)

    def __call__(self, spikes, labels):
        """(loss float64 [B], predictions int64 [B], spikes per layer [L]) of one batch, as
        training.train_batch gives them."""
        from gpusnn import training
        self.stage(spikes, labels)
        return training.train_batch(self.backend, self.state, self.cfg, self.input, self.labels)


class GraphStep(StaticStep):
    """StaticStep with the step captured as one CUDA graph per input shape (module docstring).

    The first update (state.optim.step == 0, a plain gradient step) runs eagerly on the static
    buffers; the capture happens on the first call after it, and again after new buffers.
    """

    def __init__(self, backend, state, cfg):
        if getattr(backend, "name", None) != "cuda":
            raise ConfigError(f"--cuda-graph needs --backend cuda (CUDA graphs are captured by the CUDA driver), "
                              f"not --backend {getattr(backend, 'name', backend)}")
        import cupy
        super().__init__(backend, state, cfg)
        self.cupy = cupy
        # a blocking stream: its graph launches are ordered with work on the default stream
        # (the device encoder, evaluation), which reads and writes the same weights
        self.stream = cupy.cuda.Stream()
        self.pool = cupy.cuda.MemoryPool()   # the graph's memory: nothing else allocates from it
        self.graph = self.packed = None
        self.captures = 0                    # how many graphs were captured (one per new batch shape)

    def _buffers(self, form, capacity: int):
        with self.cupy.cuda.using_allocator(self.pool.malloc):
            return super()._buffers(form, capacity)

    def __call__(self, spikes, labels):
        from gpusnn import training
        with self.stream:
            new = self.stage(spikes, labels)
            if self.state.optim.step == 0:
                return training.train_batch(self.backend, self.state, self.cfg, self.input, self.labels)
            if new or self.graph is None:
                self._capture()
            self.graph.launch(self.stream)
            packed = self.backend.rt.to_host(self.packed, "batch results")
        self.state.optim.step += 1
        loss, rho, layer_spikes = unpack_results(packed, self.input.n_samples, self.cfg.network.widths[-1])
        return loss, rho.argmax(axis=1), layer_spikes

    def _capture(self) -> None:
        """Record forward, gradients, update and the packing of the results on the static
        buffers (nothing runs during the capture; the step counter is kept)."""
        cupy, net = self.cupy, self.cfg.network
        from gpusnn.optimizer import apply_update
        self.graph = None
        step = self.state.optim.step
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
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
