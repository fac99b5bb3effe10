"""Structural counts of what the GPU code path asks of the device (not timings).

A KernelRuntime owns one Traffic record and counts into it:

    kernels    launches of the project's kernels, by "file.kernel" (through the RawModule
               wrapper, so every launch counts, whoever makes it)
    library    calls of array-library operations that launch device work on CuPy, by name
               (through the runtime's counting ``xp``; one call is at least one launch:
               CuPy's sort and scan run several kernels, zeros is a memset)
    d2h / h2d  device-to-host and host-to-device copies and their bytes (rt.to_host /
               rt.to_device, and on cuda any host array handed to xp.asarray)
    syncs      blocking host synchronisations, by site: every device-to-host copy, plus
               the ones CuPy makes inside some library calls (LIBRARY_SYNCS)

The counts are the same on the emulated backend and on cuda, because both run the same
code path against the same runtime; on emulated they describe what cuda would do.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Array-library functions that launch device work on CuPy -> host synchronisations CuPy
# makes inside one call (bincount reads min and max of its input back to size its output).
LIBRARY_SYNCS = {"zeros": 0, "arange": 0, "cumsum": 0, "sort": 0, "searchsorted": 0,
                 "multiply": 0, "add": 0, "remainder": 0, "floor_divide": 0, "sum": 0, "concatenate": 0,
                 "argsort": 0, "take": 0, "matmul": 0, "copyto": 0, "bincount": 2}


@dataclass
class Traffic:
    """Counts since the last KernelRuntime.reset_counts() (see module docstring)."""

    kernels: Counter = field(default_factory=Counter)
    library: Counter = field(default_factory=Counter)
    syncs: Counter = field(default_factory=Counter)
    d2h_copies: int = 0
    d2h_bytes: int = 0
    h2d_copies: int = 0
    h2d_bytes: int = 0

    @property
    def launches(self) -> int:
        """Project kernel launches + library calls."""
        return sum(self.kernels.values()) + sum(self.library.values())

    @property
    def host_syncs(self) -> int:
        return sum(self.syncs.values())

    def as_dict(self) -> dict:
        """JSON-able summary (the profile report's "device_traffic")."""
        return {"host_syncs_per_batch": self.host_syncs, "launches_per_batch": self.launches,
                "project_launches": sum(self.kernels.values()), "library_calls": sum(self.library.values()),
                "d2h_copies": self.d2h_copies, "d2h_bytes": self.d2h_bytes,
                "h2d_copies": self.h2d_copies, "h2d_bytes": self.h2d_bytes,
                "breakdown": {"kernels": dict(self.kernels), "library": dict(self.library),
                              "syncs": dict(self.syncs)}}


def timed(rt, label: str, fn, args, kwargs):
    """fn(*args, **kwargs), through rt.timer(label, fn, args, kwargs) when one is set (a
    per-launch timer, e.g. CUDA events: benchmarks/gpu_kernel_times.py)."""
    if rt.timer is None:
        return fn(*args, **kwargs)
    return rt.timer(label, fn, args, kwargs)


class CountedKernel:
    """A RawModule function that counts each launch into traffic.kernels[label]."""

    def __init__(self, fn, rt, label: str):
        self.fn, self.rt, self.label = fn, rt, label

    def __call__(self, *args, **kwargs):
        self.rt.traffic.kernels[self.label] += 1
        return timed(self.rt, self.label, self.fn, args, kwargs)


class CountedModule:
    """A compiled RawModule whose functions count their launches (per runtime)."""

    def __init__(self, module, rt, file: str):
        self.module, self.rt, self.file = module, rt, file

    def get_function(self, name: str) -> CountedKernel:
        return CountedKernel(self.module.get_function(name), self.rt, f"{self.file}.{name}")


class CountingXp:
    """The runtime's array module (numpy or cupy) with the device work of its calls counted.

    Functions in LIBRARY_SYNCS count one library call (and CuPy's inner syncs); asarray and
    ascontiguousarray count a library "copy" when they convert or copy a device array, and on
    cuda an upload (h2d) when given a host array. Everything else is the module's own attribute.
    """

    def __init__(self, module, rt):
        self._module = module
        self._rt = rt

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if name in LIBRARY_SYNCS:
            return self._counted(name, attr)
        if name in ("asarray", "ascontiguousarray"):
            return self._converting(name, attr)
        return attr

    def _counted(self, name, fn):
        def call(*args, **kwargs):
            t = self._rt.traffic
            t.library[name] += 1
            if LIBRARY_SYNCS[name]:
                t.syncs[f"inside {name}"] += LIBRARY_SYNCS[name]
            return timed(self._rt, f"xp.{name}", fn, args, kwargs)
        return call

    def _converting(self, name, fn):
        def call(a, dtype=None, *args, **kwargs):
            out = fn(a, dtype, *args, **kwargs)
            t = self._rt.traffic
            if isinstance(a, self._module.ndarray):
                if out is not a:          # both modules return a itself when nothing changes
                    t.library["copy"] += 1
            elif self._rt.kind == "cuda":
                t.h2d_copies += 1
                t.h2d_bytes += int(out.nbytes)
            return out
        return call
