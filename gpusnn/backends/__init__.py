"""Backend selection. Every backend implements the Backend protocol
(gpusnn.backends.protocol: name, xp and these operations on its own arrays):

    forward(weights, spikes, theta, output_spikes=True)     -> list[LayerRecord] (output_spikes=False:
                                                               the last layer's spikes may be None)
    gradients(weights, spikes, records, labels, T, theta, method, batch_norm=None)
                                                            -> (loss [B], rho [B, C], grads)
        (the output error carries 1 / batch_norm, default 1 / B)
    update(W, *, W_prev, G, G_prev, step, optim)            -> None (in place on W, W_prev, G_prev)
    host_results(loss, rho, records)                        -> (loss, rho, spikes per layer) on
                                                               the host, one copy per batch
    asarray(np_array) / asnumpy(array)                      host <-> backend arrays

``numpy`` runs gpusnn.reference's method through the faster CPU paths of gpusnn.backends.numpy.fastpaths
(tested against the reference); ``cuda`` and ``emulated`` run the kernels in kernels/
through CuPy or the CPU emulation.
"""
from __future__ import annotations

import logging

from gpusnn.backends.protocol import Backend
from gpusnn.errors import ConfigError

log = logging.getLogger(__name__)

NAMES = ("auto", "numpy", "cuda", "emulated")

__all__ = ["Backend", "NAMES", "get_backend", "gpu_usable"]


def gpu_problem() -> str | None:
    """Why the cuda backend cannot run here (None when CuPy, a CUDA device and NVRTC are usable)."""
    try:
        import cupy
    except Exception as e:  # not installed, or a broken install: either way no cuda backend
        return f"CuPy does not import ({e}); install the cuda12 or cuda13 extra"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA device"
    except Exception as e:  # no driver, driver too old, no device
        return f"no usable CUDA device ({e})"
    try:
        cupy.cuda.nvrtc.getVersion()
    except Exception as e:  # the kernels are compiled at run time by NVRTC
        return f"NVRTC, which compiles the kernels, is missing ({e}); install the cuda12 or cuda13 extra"
    return None


def gpu_usable() -> bool:
    """True when CuPy imports, sees at least one CUDA device and finds NVRTC."""
    return gpu_problem() is None


def resolve_name(name: str = "auto") -> str:
    """name with auto replaced by cuda when a GPU is usable, else numpy. ConfigError for an
    unknown name, or for cuda where it cannot run (gpu_problem)."""
    if name not in NAMES:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    if name == "auto":
        name = "cuda" if gpu_usable() else "numpy"
        log.info("backend auto -> %s", name)
    elif name == "cuda" and (problem := gpu_problem()) is not None:
        raise ConfigError(f"--backend cuda: {problem}; use --backend numpy or emulated on this machine")
    return name


def get_backend(name: str = "auto") -> Backend:
    """The backend called name (see resolve_name)."""
    name = resolve_name(name)
    if name == "numpy":
        from gpusnn.backends.numpy.backend import NumpyBackend
        return NumpyBackend()
    from gpusnn.backends.gpu import GpuBackend
    return GpuBackend(name)
