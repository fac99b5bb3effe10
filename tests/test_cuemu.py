"""The emulator itself: argument checking, thread orders, barriers and warp ops in fiber
mode, error reporting, and a cache that follows header changes."""
from __future__ import annotations

import numpy as np
import pytest

from gpusnn import cuemu

SRC = r"""
extern "C" __global__ void scale(float* x, int n, float a)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}
// neighbour sum through shared memory WITHOUT the barrier between write and read
extern "C" __global__ void neighbour_racy(const float* x, float* y, int n)
{
    __shared__ float s[256];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = x[i];
    y[i] = s[threadIdx.x] + (threadIdx.x ? s[threadIdx.x - 1] : 0.0f);
}
extern "C" __global__ void warp_sum(const float* x, float* out)
{
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    __shared__ float part[32];
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) { float s = 0.0f; for (unsigned w = 0; w < blockDim.x / 32; ++w) s += part[w]; atomicAdd(out, s); }
}
// barriers in a loop around thread-dependent work (the staging pattern of forward.cu's
// kernel A): the block stages x in chunks of 8 through shared memory; thread i < n_out
// accumulates y[i] = sum of x in y.
extern "C" __global__ void staged_sum(const float* x, int n, float* y, int n_out)
{
    __shared__ float s[8];
    int c0 = 0;
    do {
        const int m = n - c0 < 8 ? n - c0 : 8;
        if ((int)threadIdx.x < m) s[threadIdx.x] = x[c0 + threadIdx.x];
        __syncthreads();
        for (int i = threadIdx.x; i < n_out; i += blockDim.x) {
            float acc = c0 == 0 ? 0.0f : y[i];
            for (int k = 0; k < m; ++k) acc += s[k];
            y[i] = acc;
        }
        __syncthreads();
        c0 += m;
    } while (c0 < n);
}
extern "C" __global__ void divergent(int* x)
{
    if (threadIdx.x < 16) { __syncthreads(); x[threadIdx.x] = 1; }
    else                  { __syncthreads(); x[threadIdx.x] = 2; }
}
"""


@pytest.fixture(scope="module")
def mod():
    return cuemu.RawModule(code=SRC)


def test_scalars_and_arrays_are_checked(mod):
    k = mod.get_function("scale")
    x = np.ones(5, np.float32)
    k((1,), (8,), (x, np.int32(5), np.float32(3)))
    assert x.tolist() == [3.0] * 5
    with pytest.raises(TypeError, match="np.float32"):
        k((1,), (8,), (x, np.int32(5), 3.0))                 # CuPy would pass a double
    with pytest.raises(TypeError, match="dtype float32"):
        k((1,), (8,), (x.astype(np.float64), np.int32(5), np.float32(3)))
    with pytest.raises(TypeError, match="C-contiguous"):
        k((1,), (8,), (np.ones(10, np.float32)[::2], np.int32(5), np.float32(3)))
    with pytest.raises(cuemu.KernelError, match="invalid block size"):
        k((1,), (2048,), (x, np.int32(5), np.float32(3)))


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_missing_barrier_shows_in_other_thread_orders(mod, order):
    x = np.arange(512, dtype=np.float32)
    y = np.zeros_like(x)
    mod.get_function("neighbour_racy")((2,), (256,), (x, y, np.int32(512)), order=order, seed=7)
    want = x + np.where(np.arange(512) % 256 > 0, np.roll(x, 1), 0)
    assert np.array_equal(y, want) == (order == "forward")


def test_warp_ops_and_barriers_run_as_fibers(mod):
    x = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    out = np.zeros(1, np.float32)
    mod.get_function("warp_sum")((4,), (128,), (x, out), order="shuffle")
    assert out[0] == pytest.approx(float(x.astype(np.float64).sum()), abs=1e-3)


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_barrier_in_a_loop_with_thread_dependent_work(mod, order):
    """Staging through shared memory between barriers is right in any thread order. (Barriers
    are identified by their source call, not a return address: g++ duplicates the trailing
    barrier of kernels/forward.cu's currents_grid, which tests/test_gpu_forward.py runs.)"""
    x = np.arange(1, 22, dtype=np.float32)
    y = np.full(32, -1, np.float32)
    mod.get_function("staged_sum")((1,), (32,), (x, np.int32(21), y, np.int32(5)), order=order, seed=3)
    assert y[:5].tolist() == [float(x.sum())] * 5 and np.all(y[5:] == -1)


def test_divergent_barrier_is_reported(mod):
    with pytest.raises(cuemu.KernelError, match="divergent __syncthreads"):
        mod.get_function("divergent")((1,), (32,), (np.zeros(32, np.int32),))


def test_header_change_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("CUEMU_CACHE", str(tmp_path / "cache"))
    (tmp_path / "k.cuh").write_text("#define FACTOR 2.0f\n")
    code = '#include "k.cuh"\nextern "C" __global__ void f(float* x) { x[threadIdx.x] = FACTOR; }\n'
    x = np.zeros(2, np.float32)
    cuemu.RawModule(code=code, options=(f"-I{tmp_path}",)).get_function("f")((1,), (2,), (x,))
    (tmp_path / "k.cuh").write_text("#define FACTOR 5.0f\n")
    cuemu.RawModule(code=code, options=(f"-I{tmp_path}",)).get_function("f")((1,), (2,), (x,))
    assert x.tolist() == [5.0, 5.0]


def test_compile_error_names_file_and_line():
    with pytest.raises(cuemu.CompileError, match=r"bad\.cu:2"):
        cuemu.build('extern "C" __global__ void f(float* x)\n{ x[0] = y; }\n', name="bad.cu")
