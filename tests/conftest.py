"""Shared pytest set-up: tests marked ``gpu`` are skipped where CuPy sees no usable GPU."""
from __future__ import annotations

import numpy as np
import pytest

from gpusnn.backends import gpu_usable


def pytest_collection_modifyitems(config, items):
    if gpu_usable():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (CuPy sees none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["emulated-forward", "emulated-shuffle", pytest.param("cuda", marks=pytest.mark.gpu)])
def gpu_kernel_rt(request, monkeypatch):
    """A poisoning KernelRuntime for kernel tests: emulated in forward and in shuffled thread
    order (fresh shuffle seed each run, printed for a failing test), and cuda where a GPU exists."""
    from gpusnn.backends.gpu import make_runtime
    kind, _, order = request.param.partition("-")
    if order:
        monkeypatch.setenv("CUEMU_ORDER", order)
        seed = np.random.SeedSequence().entropy % 2**32
        print(f"CUEMU_SEED = {seed}")
        monkeypatch.setenv("CUEMU_SEED", str(seed))
    rt = make_runtime(kind)
    rt.poison = True
    return rt


@pytest.fixture
def gpu_kernel_rng():
    """A Generator with a fresh seed each run; the seed is printed for a failing test."""
    seed = np.random.SeedSequence().entropy % 2**63
    print(f"gpu_kernel_rng seed = {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def gesture_cache(tmp_path_factory):
    """A cache directory holding the default synthetic gestures, generated once per test session
    (about 35 s) and shared by the tests that need the full default dataset."""
    from data_tools.datasets import synth_store
    root = tmp_path_factory.mktemp("gpusnn-cache")
    synth_store(root, progress=False)
    return root
