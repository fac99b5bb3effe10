"""The kernel backends ``cuda`` and ``emulated``: backend.py (the Backend on the kernels),
runtime.py (xp + RawModule handles), and one wrapper module per kernels/*.cu file:
events.py, forward.py, gradient.py, update.py, compact.py."""
from gpusnn.backends.gpu.backend import GpuBackend, make_runtime

__all__ = ["GpuBackend", "make_runtime"]
