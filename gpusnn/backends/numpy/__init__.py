"""The ``numpy`` backend: backend.py (the Backend) and fastpaths.py (the CPU fast paths of
the reference's method, tested equal to gpusnn.reference)."""
from gpusnn.backends.numpy.backend import NumpyBackend

__all__ = ["NumpyBackend"]
