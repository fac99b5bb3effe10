"""The numpy backend: gpusnn.reference's results through the faster CPU paths of gpusnn.backends.numpy.fastpaths.

The reference functions stay the specification; tests/test_numpy_fastpaths.py checks this
backend against them (spike trains equal up to threshold ties, gradients within float32
rounding, updates bit for bit).
"""
from __future__ import annotations

import threading

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn import reference as ref
from gpusnn.backends.numpy import fastpaths as ck
from gpusnn.config import MethodConfig, OptimConfig


#: Largest first-layer dense input (bytes) the forward keeps for the gradient of the same
#: batch: a training batch of 32 samples x 64 steps x 2048 inputs takes 17 MB.
KEEP_BYTES = 32 * 2**20
#: Batches whose dense counts stage() holds at most before their forward: the read-ahead queue
#: (training.PREFETCH = 2) and the batch being made, one to spare (the batch in use keeps its
#: own until the next forward, so at most STAGED + 1 of them exist).
STAGED = 4
#: Largest first-layer dense input (bytes) stage() makes ahead: 4.2 MB for a training batch of
#: 32 samples x 16 steps x 2048 inputs, where it took 5-10 % off the epoch; at 32 and 64 steps
#: the conversion is a smaller part of a longer step (no measurable gain) and STAGED batches of
#: 8.5-17 MB would add 34-68 MB to the process.
STAGE_BYTES = 8 * 2**20
#: Longest stage() waits (s) for a first layer to finish (a bound only: forward always ends the wait).
YIELD_S = 1.0


class NumpyBackend:
    """NumPy + scipy.sparse on the CPU, a gpusnn.backends.protocol.Backend. The oracle of the
    GPU backends.

    mode: how a layer's synaptic input is computed, "event" (sparse, work = entries x
    fan-out), "dense" (BLAS per chunk of steps) or "auto" (dense above the measured
    crossover density, fastpaths.DENSE_ABOVE). The input is coalesced first (repeated ids
    of a step become one entry with a count), so the choice and the gradient's cost follow
    the coalesced tensor. threads: the step shared over this many threads (None: every CPU this
    process may use, capped by OMP_NUM_THREADS / OPENBLAS_NUM_THREADS; fastpaths.default_threads);
    with more than one, BLAS runs one thread per call in this process from then on
    (fastpaths.single_threaded_blas).
    """

    name = "numpy"
    xp = np

    def __init__(self, mode: str = "auto", threads: int | None = None):
        self.mode = ck.check_mode(mode)
        self.threads = ck.default_threads() if threads is None else max(1, int(threads))
        if self.threads > 1:
            ck.single_threaded_blas()
        self._scratch: dict[tuple, np.ndarray] = {}
        self._kept = ck.KeptDense()               # the last forward's first-layer dense counts
        self._kept_for = None                     # ... of this spikes object (None: nothing kept)
        self._staged: dict[int, tuple] = {}       # id(spikes) -> (spikes, dense counts), from stage()
        self._staged_lock = threading.Lock()
        self._cores_free = threading.Event()      # cleared while a first layer runs on staged counts, threads > 1
        self._cores_free.set()

    @staticmethod
    def asarray(a):
        return np.ascontiguousarray(a)

    @staticmethod
    def asnumpy(a):
        return np.asarray(a)

    @staticmethod
    def _keeps(spikes: SpikeTensor, limit: int = KEEP_BYTES) -> bool:
        """Whether the first layer's dense counts of spikes fit limit bytes."""
        return spikes.n_samples * spikes.n_steps * (spikes.n_inputs + ck.PAD) * 4 <= limit

    def stages(self, spikes: SpikeTensor) -> bool:
        """Whether stage() makes the dense counts of (coalesced) spikes ahead: the first layer
        will run dense and its counts fit STAGE_BYTES."""
        return self._keeps(spikes, STAGE_BYTES) and ck.use_dense(spikes, self.mode)

    def stage(self, spikes: SpikeTensor) -> SpikeTensor:
        """The batch made ready for forward ahead of it (training.batches calls this in its
        read-ahead thread): spikes coalesced, in the host layout device_spikes keeps as it
        is (so the forward gets this very object), and where stages(), its dense counts made
        now (fastpaths.stage_dense) and held for the forward of the returned object (at most
        STAGED of them: the oldest is dropped). The results are the same as without it.

        With threads > 1 it first waits while a forward's first layer runs on staged counts:
        every core is then in one of its product blocks, and the read-ahead thread would take
        CPU time from one of them and hold up the step (measured at the real event rate, T =
        16, 2 threads: 0.91-0.99x the epoch; docs/performance.md). That forward's blocks make
        the gradient's suffix counts themselves, so the thread pool is free for it afterwards
        (fastpaths.forward)."""
        self._cores_free.wait(YIELD_S)
        spikes = ck.coalesced(spikes).to(np)
        if self.stages(spikes):
            dense = ck.stage_dense(spikes)
            with self._staged_lock:
                self._staged[id(spikes)] = (spikes, dense)
                while len(self._staged) > STAGED:
                    self._staged.pop(next(iter(self._staged)))
        return spikes

    def forward(self, weights, spikes: SpikeTensor, theta: float, output_spikes: bool = True):
        """output_spikes is accepted for the interface; the CPU paths always keep them.

        When the first layer runs dense and its counts take at most KEEP_BYTES, they are
        kept for gradients() of the same spikes object (until then or the next forward), so
        the gradient builds no dense counts again; with threads > 1 they are turned into the
        gradient's suffix counts meanwhile (by the first layer's blocks where stage() made
        them, else on the thread pool beside the later layers), unless the last forward's were
        never used (a run of predictions). Counts made by stage() for this spikes object are
        used (once) instead of new ones; stage() waits while their first layer runs."""
        small = self._keeps(spikes)
        training = self._kept_for is None    # the last kept counts went to a gradient: not a run of predictions
        self._kept_for = spikes if small else None
        with self._staged_lock:
            held = self._staged.pop(id(spikes), None)
        staged = held[1] if held is not None and held[0] is spikes else None
        yields = staged is not None and self.threads > 1       # stage() waits meanwhile
        if yields:
            self._cores_free.clear()
        try:
            return ck.forward(weights, ck.coalesced(spikes), theta, self.mode, self.threads,
                              self._kept if small else None, suffix_ahead=training, staged=staged,
                              first_layer_done=self._cores_free.set if yields else None)
        finally:
            self._cores_free.set()

    def gradients(self, weights, spikes: SpikeTensor, records, labels, T: int, theta: float,
                  method: MethodConfig, batch_norm: int | None = None):
        out = records[-1]
        rho = ref.readout(out.counts, out.u_final, theta, T)
        loss, delta = ref.loss_and_delta(rho, np.asarray(labels), method, T, batch_norm)
        deltas = ref.backward_deltas(weights, records, delta, theta, T)
        inputs = [ck.coalesced(spikes)] + [r.spikes for r in records[:-1]]
        kept = self._kept if self._kept_for is spikes else None
        self._kept_for = None
        grads = [None] * len(records)
        for l in reversed(range(len(records))):          # the first layer last: its suffix counts may still be on the way
            grads[l] = ck.weight_gradient(inputs[l], records[l], deltas[l], theta, method.gradient, self.threads,
                                          kept if l == 0 else None)
        return loss, rho, grads

    @staticmethod
    def host_results(loss, rho, records):
        """(loss float64 [B], rho float32 [B, C], spikes per layer [L] ints): already on the host."""
        return np.asarray(loss, np.float64), rho, [int(r.counts.sum()) for r in records]

    def update(self, W, *, W_prev, G, G_prev, step: int, optim: OptimConfig) -> None:
        key = W.shape
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(W)
        ck.fractional_update(W, W_prev=W_prev, G=G, G_prev=G_prev, step=step, optim=optim,
                             scratch=self._scratch[key], threads=self.threads)
        if G_prev is not None:
            G_prev[...] = G
