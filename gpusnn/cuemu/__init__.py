"""cuemu: run the project's CUDA C kernels on the CPU, behind cupy.RawModule's interface.

    mod = cuemu.RawModule(code=src, options=("-DN=4",))      # same constructor as cupy.RawModule
    k = mod.get_function("if_scan")
    k((grid,), (block,), (a, b, np.int32(n)), shared_mem=0)  # same call as cupy.RawKernel

The .cu source is compiled by g++ together with cuda_host_shim.h (CUDA qualifiers, thread
indices, atomics, intrinsics, barriers and warp ops) and cuemu_launch.h (one C launcher per
``extern "C" __global__`` kernel), into a shared object cached under $CUEMU_CACHE (default
~/.cache/cuemu) by a hash of the sources, headers and flags.

Arrays are NumPy arrays (the kernel writes into them in place); scalars must be NumPy scalars
of the exact C type of the parameter: every argument is checked against the kernel's compiled
signature (dtype and contiguity of arrays, type of scalars), which CuPy does not do.

Run-time settings (environment, read at each launch): CUEMU_ORDER = forward | reverse |
shuffle (order of the threads inside a block), CUEMU_SEED (seed of the shuffle),
CUEMU_THREADS (OS threads over blocks; > 1 builds with OpenMP), CUEMU_STRICT=1 (a barrier
after some threads exited is an error), CUEMU_SANITIZE=1 (ASan + UBSan build; the process
must have libasan preloaded).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CXX = os.environ.get("CXX", "g++")
_HEADERS = ("cuda_host_shim.h", "cuemu_launch.h")


class KernelError(RuntimeError):
    """A launch failed inside the emulator (bad geometry, divergent barrier, deadlock, ...)."""


class CompileError(RuntimeError):
    """g++ could not build the kernel source (the message holds the compiler's output)."""


class _LaunchArgs(ctypes.Structure):
    """Mirror of cuemu::LaunchArgs in cuemu_launch.h."""

    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("smem", ctypes.c_ulonglong), ("stack_size", ctypes.c_ulonglong),
                ("fibers", ctypes.c_int), ("strict", ctypes.c_int),
                ("os_threads", ctypes.c_int), ("ftz", ctypes.c_int),
                ("order", ctypes.c_int), ("seed", ctypes.c_uint)]


_ORDERS = {"forward": 0, "reverse": 1, "shuffle": 2}

_KERNEL_RE = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
                        r"(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")
_EXTERN_SHARED_RE = re.compile(r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?"
                               r"([A-Za-z_][\w:\s]*?)\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?(\w+)\s*\[\s*\]\s*;")
_SYNC_RE = re.compile(r"__syncthreads|__syncwarp|__shfl\w*_sync|__ballot_sync|__any_sync|__all_sync|__activemask")
_FUNC_RE = re.compile(r"\b(\w+)\s*\([^;{}()]*(?:\([^()]*\)[^;{}()]*)*\)\s*(?:const\s*)?\{")

_DT = {"f4": np.float32, "f8": np.float64, "i1": np.int8, "u1": np.uint8, "i2": np.int16,
       "u2": np.uint16, "i4": np.int32, "u4": np.uint32, "i8": np.int64, "u8": np.uint64, "b1": np.bool_}


def cache_dir() -> str:
    """Where built shared objects are kept (one folder per source/flags hash)."""
    return os.environ.get("CUEMU_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "cuemu"))


def _strip_comments(code: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", " ", code, flags=re.S)


def _needs_fibers(code: str) -> dict:
    """name -> True if the function (transitively) calls a barrier or warp op.

    A heuristic; a miss is caught at run time (a barrier in sequential mode raises).
    """
    code = _strip_comments(code)
    bodies: dict[str, str] = {}
    for m in _FUNC_RE.finditer(code):
        i, depth = m.end(), 1
        while depth and i < len(code):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        bodies[m.group(1)] = bodies.get(m.group(1), "") + code[m.end():i]
    for kw in ("if", "for", "while", "switch", "catch", "return", "sizeof", "do", "else"):
        bodies.pop(kw, None)
    uses = {n for n, b in bodies.items() if _SYNC_RE.search(b)}
    changed = True
    while changed:
        changed = False
        for n, b in bodies.items():
            if n not in uses and any(re.search(r"\b%s\s*\(" % re.escape(u), b) for u in uses):
                uses.add(n)
                changed = True
    return {n: n in uses for n in bodies}


def _rewrite(code: str) -> str:
    """`extern __shared__ T name[];` has no C++ spelling: make it a pointer to the block's
    dynamic shared buffer (same line count, so compiler messages keep their line numbers)."""
    return _EXTERN_SHARED_RE.sub(
        lambda m: f"{m.group(1)}* {m.group(2)} = reinterpret_cast<{m.group(1)}*>(::cuemu::dynamic_smem());", code)


def _gcc_options(options) -> list[str]:
    """The CuPy/NVRTC options that mean something to g++ (-D, -U, -I); fast math is ignored
    on purpose so the host result stays IEEE."""
    out = []
    for o in options:
        if o.startswith(("-D", "-U")):
            out.append(o)
        elif o.startswith("-I"):
            out += ["-I", o[2:]] if len(o) > 2 else []
    return out


def _include_digest(flags: list[str]) -> bytes:
    """Contents of every header in the -I folders, so a changed header rebuilds the .so."""
    h = hashlib.sha256()
    dirs = [flags[i + 1] for i, f in enumerate(flags[:-1]) if f == "-I" and flags[i + 1] != HERE]
    for d in dirs:
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            if name.endswith((".h", ".cuh", ".hpp")):
                with open(os.path.join(d, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return h.digest()


def build(code: str, options=(), *, name="kernels.cu", openmp=False, sanitize=False, opt="-O2") -> str:
    """Compile CUDA C `code` with g++ and the shim into a cached shared object; its path."""
    kernels = list(dict.fromkeys(_KERNEL_RE.findall(code)))
    if not kernels:
        raise CompileError(f"{name}: no __global__ kernels found")
    flags = ["-std=c++20", opt, "-g", "-fPIC", "-shared", "-fno-strict-aliasing", "-ffp-contract=off",
             "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas", "-I", HERE] + _gcc_options(options)
    if openmp:
        flags.append("-fopenmp")
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    h = hashlib.sha256()
    for f in _HEADERS:
        with open(os.path.join(HERE, f), "rb") as fh:
            h.update(fh.read())
    h.update(code.encode() + repr((flags, CXX, name)).encode() + _include_digest(flags))
    d = os.path.join(cache_dir(), h.hexdigest()[:20])
    so = os.path.join(d, "kernels.so")
    if os.path.exists(so):
        return so
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "kernels.cu.inc"), "w") as f:
        f.write(f'#line 1 "{name}"\n' + _rewrite(code) + "\n")
    with open(os.path.join(d, "wrapper.cpp"), "w") as f:
        f.write('#include "cuda_host_shim.h"\n#include "kernels.cu.inc"\n#include "cuemu_launch.h"\n')
        f.writelines(f"CUEMU_EXPORT({k})\n" for k in kernels)
    tmp = so + f".tmp{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # keep g++ out of ASan
    r = subprocess.run([CXX, *flags, "-o", tmp, os.path.join(d, "wrapper.cpp")],
                       capture_output=True, text=True, env=env)
    if r.returncode:
        raise CompileError(f"g++ failed on {name} ({' '.join(flags)}):\n{r.stderr}")
    os.replace(tmp, so)
    return so


def _asan_loaded() -> bool:
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


class RawModule:
    """Stand-in for cupy.RawModule: `code` is CUDA C source (``path`` reads it from a file)."""

    def __init__(self, code: str | None = None, *, path: str | None = None, options=(),
                 backend="nvrtc", name_expressions=None, openmp=False, sanitize=False, **_ignored):
        if name_expressions:
            raise NotImplementedError("cuemu: template kernels (name_expressions) are not supported")
        if path is not None:
            with open(path) as f:
                code = f.read()
        if code is None:
            raise ValueError("cuemu.RawModule needs code= or path=")
        self.code = code
        sanitize = sanitize or os.environ.get("CUEMU_SANITIZE") == "1"
        openmp = openmp or int(os.environ.get("CUEMU_THREADS", "1")) > 1
        if sanitize and not _asan_loaded():
            raise RuntimeError("cuemu: a sanitized build needs the process started with "
                               "LD_PRELOAD=$(gcc -print-file-name=libasan.so) (else dlopen aborts it)")
        self.needs_fibers = _needs_fibers(code)
        self._so = build(code, options, name=path or "kernels.cu", openmp=openmp, sanitize=sanitize)
        self._lib = ctypes.CDLL(self._so)

    def get_function(self, name: str) -> "RawKernel":
        return RawKernel(self, name)


class RawKernel:
    """One kernel of a RawModule; call it like cupy.RawKernel: k(grid, block, args)."""

    def __init__(self, mod: RawModule, name: str):
        self.name = name
        try:
            self._launch = getattr(mod._lib, f"cuemu_launch__{name}")
            sig = getattr(mod._lib, f"cuemu_sig__{name}")
        except AttributeError:
            raise AttributeError(f"cuemu: no kernel {name!r} (extern \"C\" __global__ non-template kernels only)")
        sig.restype = ctypes.c_char_p
        self.sig = [s for s in sig().decode().split(",") if s]
        self._launch.argtypes = [ctypes.POINTER(_LaunchArgs), ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        self.fibers = mod.needs_fibers.get(name, True)
        self.stack_size = 64 * 1024

    def _pack(self, args):
        if len(args) != len(self.sig):
            raise TypeError(f"{self.name}: expected {len(self.sig)} args, got {len(args)}")
        keep, ptrs = [], (ctypes.c_void_p * len(args))()
        for i, (a, code) in enumerate(zip(args, self.sig)):
            if code.startswith("*"):
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{self.name} arg {i}: expected ndarray for pointer param {code}, "
                                    f"got {type(a).__name__}")
                if not a.flags.c_contiguous:
                    raise TypeError(f"{self.name} arg {i}: array must be C-contiguous")
                want = _DT.get(code[1:])
                if want is not None and a.dtype != want:
                    raise TypeError(f"{self.name} arg {i}: param {code} needs dtype {np.dtype(want)}, got {a.dtype}")
                buf = ctypes.c_void_p(a.ctypes.data)
                keep.append(buf)
                ptrs[i] = ctypes.addressof(buf)
                continue
            want = _DT.get(code)
            if want is None:
                raise TypeError(f"{self.name} arg {i}: by-value struct params ({code}) are not supported")
            if not isinstance(a, np.generic) or a.dtype != want:
                got = type(a).__name__ + (f"/{a.dtype}" if isinstance(a, np.generic) else "")
                raise TypeError(f"{self.name} arg {i}: param {code} needs np.{np.dtype(want).name} scalar, got {got}")
            buf = np.array(a, dtype=want).reshape(())
            keep.append(buf)
            ptrs[i] = buf.ctypes.data
        return ptrs, keep

    def __call__(self, grid, block, args, *, shared_mem=0, fibers=None, order=None, seed=None):
        """Launch; `order` (forward/reverse/shuffle), `seed` and `fibers` are emulator extras
        that default to the CUEMU_ORDER / CUEMU_SEED settings and the barrier heuristic."""
        g = tuple(grid) + (1,) * (3 - len(grid))
        b = tuple(block) + (1,) * (3 - len(block))
        ptrs, keep = self._pack(args)
        order = order or os.environ.get("CUEMU_ORDER", "forward")
        if order not in _ORDERS:
            raise ValueError(f"cuemu: thread order must be one of {sorted(_ORDERS)}, got {order!r}")
        seed = int(os.environ.get("CUEMU_SEED", "0")) if seed is None else seed
        la = _LaunchArgs((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), shared_mem, self.stack_size,
                         int(self.fibers if fibers is None else fibers),
                         int(os.environ.get("CUEMU_STRICT", "0") == "1"),
                         int(os.environ.get("CUEMU_THREADS", "1")), 1, _ORDERS[order], seed & 0xFFFFFFFF)
        err = ctypes.create_string_buffer(1024)
        if self._launch(ctypes.byref(la), ptrs, err, len(err)):
            raise KernelError(f"{self.name}: {err.value.decode()}")
