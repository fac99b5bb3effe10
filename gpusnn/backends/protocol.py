"""The Backend interface: what the trainer, the profiler and the checkpoint and spike-log
writers may ask of a backend (gpusnn.backends.numpy.NumpyBackend, gpusnn.backends.gpu.GpuBackend).

Shapes: B samples, T steps, C classes; weights float32 [n_pre, n_post] per layer. "Array"
is an array of the backend's module ``xp`` (numpy.ndarray, or cupy.ndarray on cuda).
tests/test_backend_protocol.py checks that every backend has these members with these
signatures.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from data_tools.spikes import LayerRecord, SpikeTensor
    from gpusnn.config import MethodConfig, OptimConfig

#: An array of the backend's module xp (numpy.ndarray or cupy.ndarray).
Array = Any


@runtime_checkable
class Backend(Protocol):
    """One backend: its name ("numpy", "cuda" or "emulated"), its array module xp, and the
    operations of one training step on arrays of xp."""

    name: str
    xp: ModuleType

    def asarray(self, a: np.ndarray) -> Array:
        """A C-contiguous backend array holding a copy (or, on numpy, a view) of the host array a."""

    def asnumpy(self, a: Array) -> np.ndarray:
        """A host copy (or, on numpy, a view) of the backend array a."""

    def forward(self, weights: list[Array], spikes: SpikeTensor, theta: float,
                output_spikes: bool = True) -> list[LayerRecord]:
        """Integrate-and-fire of every layer over the window; spikes on the host or on xp.
        One LayerRecord per layer, its arrays on xp; a record's spikes is a SpikeTensor or
        an equivalent the same backend reads back (the GPU backends' SpikeGrid; .to(np)
        gives the SpikeTensor); output_spikes=False: the last layer's spikes may be None."""

    def gradients(self, weights: list[Array], spikes: SpikeTensor, records: list[LayerRecord],
                  labels: np.ndarray, T: int, theta: float, method: MethodConfig,
                  batch_norm: int | None = None) -> tuple[Array, Array, list[Array]]:
        """Per-sample loss (float64 [B] on xp), output rates rho (float32 [B, C] on xp) and the
        weight gradients (float32 [n_pre, n_post] per layer on xp) of the batch; the output
        error carries 1 / batch_norm (default 1 / B: a data-parallel rank passes the global
        batch size)."""

    def host_results(self, loss: Array, rho: Array,
                     records: list[LayerRecord]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(loss float64 [B], rho float32 [B, C], spikes per layer [L]) on the host, in one
        device-to-host copy per batch."""

    def update(self, W: Array, *, W_prev: Array, G: Array, G_prev: Array | None, step: int,
               optim: OptimConfig) -> None:
        """One fractional-order step of one layer, in place: W <- W(k+1), W_prev <- W(k), and
        G_prev <- G when G_prev is given (grad_at = "previous"). step = k, 0 for the first."""
