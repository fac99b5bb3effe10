"""gpusnn: event-driven spiking neural networks trained with FO-STDGD.

Backends: ``numpy`` (reference), ``cuda`` (CuPy + hand-written RawKernels) and
``emulated`` (the same kernels compiled for the CPU). See README.md.
"""
__version__ = "0.1.0"
