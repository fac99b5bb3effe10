"""A training step captured once as a CUDA graph and replayed for every later batch of the
same shape (cuda only; offered, off by default: not yet measured on a GPU).

The step's shapes are static when its input is a SpikeGrid (SpikeGrid.from_tensor: binary
spikes) and its labels a device buffer: every batch of the same B and T then launches the same
kernels on buffers of the same shapes (tests/test_gpu_counting.py), and after the first
update the launches' scalars are the same too (update.py passes min(step, 1)). GraphStep
keeps one input grid, one labels buffer and the step's intermediates at fixed device
addresses, in a memory pool of its own that no other work allocates from, so a replay reads
and writes the same memory the capture recorded.

Per batch: the grid and labels are packed and checked on the host, copied into the static
buffers, the graph is launched, and the packed results (loss, rates, spikes per layer) come
back in one copy: the one host synchronisation, as in training.train_batch.

The weights and the optimiser's arrays are captured by address: they are updated in place
and must stay the same arrays (load a checkpoint into a new GraphStep).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu.backend import unpack_results
from gpusnn.backends.gpu.compact import SpikeGrid
from gpusnn.backends.gpu.gradient import check_labels
from gpusnn.errors import ConfigError


class GraphStep:
    """training.train_batch of host batches as one CUDA graph per (B, T) (module docstring).

    backend: the cuda GpuBackend; state: its training.TrainState; cfg: the RunConfig. The
    first update (state.optim.step == 0, a plain gradient step) runs eagerly on the same
    grid input; the capture happens on the first call after it.
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
        self.grid = self.labels = self.packed = None
        self.captures = 0                    # how many graphs were captured (one per new batch shape)

    def __call__(self, spikes: SpikeTensor, labels: np.ndarray):
        """(loss float64 [B], predictions int64 [B], spikes per layer [L]) of one batch of
        binary host spikes (ShapeError for counts or repeats) with labels [B]."""
        grid = SpikeGrid.from_tensor(spikes.to(np))
        B, C = grid.n_samples, self.cfg.network.widths[-1]
        y = check_labels(np.asarray(labels), B, C).astype(np.int64)
        if self.state.optim.step == 0:
            from gpusnn import training
            dev = replace(grid, grid=self.backend.asarray(grid.grid))
            return training.train_batch(self.backend, self.state, self.cfg, dev, y)
        if self.graph is None or self.grid.grid.shape != grid.grid.shape:
            self._capture(grid)
        with self.stream:
            self.grid.grid.set(grid.grid)
            self.labels.set(y)
            self.graph.launch(self.stream)
            packed = self.packed.get()
        self.state.optim.step += 1
        loss, rho, layer_spikes = unpack_results(packed, B, C)
        return loss, rho.argmax(axis=1), layer_spikes

    def _capture(self, grid: SpikeGrid) -> None:
        """Record forward, gradients, update and the packing of the results on static buffers
        shaped like grid (nothing runs during the capture; the step counter is kept)."""
        cupy, net = self.cupy, self.cfg.network
        from gpusnn.optimizer import apply_update
        self.graph = None
        step = self.state.optim.step
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
            self.grid = replace(grid, grid=cupy.zeros(grid.grid.shape, cupy.uint32))
            self.labels = cupy.zeros(grid.n_samples, cupy.int64)
            self.stream.begin_capture()
            try:
                w = self.state.weights
                records = self.backend.forward(w, self.grid, net.theta, output_spikes=False)
                loss, rho, grads = self.backend.gradients(w, self.grid, records, self.labels, net.n_steps,
                                                          net.theta, self.cfg.method)
                apply_update(self.backend, w, grads, self.state.optim, self.cfg.optim)
                self.packed = self.backend.pack_results(loss, rho, records)
            finally:
                graph = self.stream.end_capture()
                self.state.optim.step = step
        self.graph = graph
        self.captures += 1
