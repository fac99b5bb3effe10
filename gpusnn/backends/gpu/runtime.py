"""The one handle the GPU code path is written against: an array module ``xp`` (numpy or
cupy) plus a RawModule class (gpusnn.cuemu.RawModule or cupy.RawModule), which counts what
it asks of the device (gpusnn.backends.gpu.counting: launches, copies, synchronisations).

Each kernel file is compiled once per process and runtime kind (the module cache below),
from the installed kernels/ sources with their headers expanded (kernels.source).
"""
from __future__ import annotations

import numpy as np

import kernels
from gpusnn.backends.gpu.counting import CountedModule, CountingXp, Traffic

BLOCK = 256          # threads per block of every 1-D launch
MAX_BLOCKS = 8192    # grid-stride loops cover the rest

_MODULES: dict[tuple[str, str], object] = {}


class KernelRuntime:
    """xp + RawModule + launch helpers for the grid-stride kernels of kernels/*.cu.

    kind names the compiled-module cache ("cuda" or "emulated"); kernels are looked up by
    (file stem, kernel name), e.g. rt.launch("forward", "if_scan", n_threads, args).
    xp is the array module with its device work counted (counting.CountingXp); array_module
    is the plain one. Every device-to-host copy goes through to_host (a synchronisation),
    every upload through to_device; rt.traffic holds the counts since reset_counts().
    """

    def __init__(self, xp, raw_module, kind: str):
        self.array_module = xp
        self.xp = CountingXp(xp, self)
        self.raw_module = raw_module
        self.kind = kind
        self.poison = False   # tests: fill new kernel outputs with garbage so unwritten ones show
        self.traffic = Traffic()
        self.timer = None     # optional per-launch timer (counting.timed)

    def reset_counts(self) -> Traffic:
        """Start counting afresh; returns the new (empty) Traffic that counts from now on."""
        self.traffic = Traffic()
        return self.traffic

    def to_host(self, a, site: str = "to_host") -> np.ndarray:
        """A host copy (cupy) or view (numpy) of device array a: one counted copy and sync."""
        t = self.traffic
        t.d2h_copies += 1
        t.d2h_bytes += int(a.nbytes)
        t.syncs[site] += 1
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def asnumpy(self, a) -> np.ndarray:
        """to_host under the name CuPy uses."""
        return self.to_host(a, "asnumpy")

    def scalar(self, a, site: str) -> int:
        """int of a one-element device array (one counted copy and sync)."""
        return int(self.to_host(a, site))

    def to_device(self, a, dtype=None):
        """Host array a as a contiguous device array (one counted upload)."""
        a = np.ascontiguousarray(a, dtype)
        t = self.traffic
        t.h2d_copies += 1
        t.h2d_bytes += int(a.nbytes)
        return self.array_module.asarray(a)

    def empty(self, shape, dtype):
        """A new kernel output: uninitialised, or (poison on) NaN / bytes 0x5A everywhere."""
        out = self.xp.empty(shape, dtype)
        if self.poison:
            if out.dtype.kind == "f":
                out.fill(self.xp.nan)
            else:
                out.reshape(-1).view(self.xp.uint8).fill(0x5A)
        return out

    def module(self, file: str):
        """The compiled kernels/<file>.cu (compiled on first use, then cached per process),
        its launches counted into this runtime's traffic."""
        key = (self.kind, file)
        if key not in _MODULES:
            _MODULES[key] = self.raw_module(code=kernels.source(file), options=("-std=c++17",))
        return CountedModule(_MODULES[key], self, file)

    def launch(self, file: str, name: str, n: int, args: tuple) -> None:
        """Launch a 1-D grid-stride kernel over n work items (nothing to do when n == 0)."""
        if n <= 0:
            return
        grid = min((n + BLOCK - 1) // BLOCK, MAX_BLOCKS)
        self.module(file).get_function(name)((grid,), (BLOCK,), args)

    def exclusive_scan(self, counts):
        """int64 [n + 1]: 0 followed by the running sums of counts (on the device)."""
        xp = self.xp
        out = xp.zeros(counts.shape[0] + 1, xp.int64)
        xp.cumsum(counts, out=out[1:])
        return out


def i32(v) -> np.int32:
    """An exact int32 kernel scalar (CuPy would pass a Python int as 64 bits)."""
    return np.int32(v)


def i64(v) -> np.int64:
    return np.int64(v)


def f32(v) -> np.float32:
    """An exact float32 kernel scalar (CuPy would pass a Python float as a double)."""
    return np.float32(v)


def f64(v) -> np.float64:
    return np.float64(v)
