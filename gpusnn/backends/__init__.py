"""Backend selection. Every backend offers the same four operations on its own arrays:

    forward(weights, spikes, theta)                         -> list[LayerRecord]
    gradients(weights, spikes, records, labels, T, theta, method, batch_norm=None)
                                                            -> (loss [B], rho [B, C], grads)
        (the output error carries 1 / batch_norm, default 1 / B)
    update(W, G, W_prev, G_prev, step, optim)               -> None (in place on W, W_prev, G_prev)
    asarray(np_array) / asnumpy(array)                      host <-> backend arrays

``numpy`` runs gpusnn.reference's method through the faster CPU paths of gpusnn.backends.numpy.fastpaths
(tested against the reference); ``cuda`` and ``emulated`` run the kernels in kernels/
through CuPy or the CPU emulation.
"""
from __future__ import annotations

import logging

from gpusnn.errors import ConfigError

log = logging.getLogger(__name__)

NAMES = ("auto", "numpy", "cuda", "emulated")


def gpu_usable() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU"
        return False


def resolve_name(name: str = "auto") -> str:
    """name with auto replaced by cuda when a GPU is usable, else numpy."""
    if name not in NAMES:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    if name == "auto":
        name = "cuda" if gpu_usable() else "numpy"
        log.info("backend auto -> %s", name)
    return name


def get_backend(name: str = "auto"):
    """The backend called name; auto = cuda when a GPU is usable, else numpy."""
    name = resolve_name(name)
    if name == "numpy":
        from gpusnn.backends.numpy.backend import NumpyBackend
        return NumpyBackend()
    from gpusnn.backends.gpu import GpuBackend
    return GpuBackend(name)
