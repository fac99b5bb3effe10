"""In-process suites of gpusnn alone: event-driven vs dense forward over input density, and
the scaling of a training step with T, hidden width and batch size."""
from __future__ import annotations

import time

import numpy as np

from gpusnn.backends.numpy import fastpaths as ck
from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import RunConfig
from gpusnn.profiling import random_spikes


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median seconds of fn() over repeats calls after warmup calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _net(widths, seed=0):
    return training.init_weights(widths, 1.0, seed)


def density_suite(densities, repeats: int, threads=(1, 2), widths=(2048, 500, 11), T: int = 32, B: int = 32) -> dict:
    """First-layer forward time, event-driven vs dense, alternating per density, at each BLAS
    thread count; auto's choice; the crossover = the lowest density at which dense is faster."""
    from threadpoolctl import threadpool_limits
    W = _net(widths)[0]
    inputs = {d: random_spikes(B, T, widths[0], d, seed=1) for d in densities}
    out = {"workload": {"widths": list(widths), "T": T, "batch": B, "layer": 1}, "by_threads": {}}
    for n_threads in threads:
        rows = []
        with threadpool_limits(limits=n_threads):
            for d, spikes in inputs.items():
                t = {}
                for mode in ("event", "dense", "event", "dense"):  # alternate: drift hits both
                    t.setdefault(mode, []).append(median_time(lambda: ck.layer_forward(W, spikes, 1.0, mode), repeats))
                ev, de = float(np.median(t["event"])), float(np.median(t["dense"]))
                auto = "dense" if ck.use_dense(spikes, "auto") else "event"
                rows.append({"density": d, "event_s": ev, "dense_s": de, "dense_over_event": de / ev,
                             "auto_picks": auto, "auto_is_faster_choice": (auto == "dense") == (de < ev),
                             "input_events": spikes.nnz})
        faster_dense = [r["density"] for r in rows if r["dense_s"] < r["event_s"]]
        out["by_threads"][str(n_threads)] = {"rows": rows, "auto_threshold": ck.DENSE_ABOVE,
                                             "measured_crossover_density": min(faster_dense) if faster_dense else None}
    return out


def step_time(widths, T: int, B: int, density: float, repeats: int, backend: str = "numpy",
              threads: int = 1) -> float:
    """Median seconds of one training step (forward, gradient, update) on random input."""
    be = get_backend(backend) if backend != "numpy" else NumpyBackend(threads=threads)
    cfg = RunConfig().replace(network={"widths": tuple(widths), "n_steps": T},
                              train={"batch_size": B, "backend": backend}).validate()
    state = training.new_state(cfg, be)
    spikes = random_spikes(B, T, widths[0], density, seed=2).to(be.xp)
    labels = np.random.default_rng(3).integers(0, widths[-1], B)
    return median_time(lambda: training.train_batch(be, state, cfg, spikes, labels), repeats)


def scaling_suite(repeats: int, quick: bool, backend: str = "numpy", threads: int = 1) -> dict:
    """Step time vs T, vs hidden width and vs batch, around 2048-500-11, T 32, batch 32, 5 %,
    with BLAS capped at `threads` threads."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=threads):
        return _scaling(repeats, quick, backend, threads)


def _scaling(repeats: int, quick: bool, backend: str, threads: int) -> dict:
    Ts = (8, 16, 32, 64) if quick else (8, 16, 32, 64, 128)
    hidden = (100, 250, 500) if quick else (100, 250, 500, 1000, 2000)
    batches = (8, 32) if quick else (8, 16, 32, 64, 128)
    return {"workload": {"base": "2048-500-11, T 32, batch 32, density 0.05", "backend": backend, "threads": threads},
            "vs_T": [{"T": T, "step_s": step_time((2048, 500, 11), T, 32, 0.05, repeats, backend, threads)}
                     for T in Ts],
            "vs_hidden": [{"hidden": h, "step_s": step_time((2048, h, 11), 32, 32, 0.05, repeats, backend, threads)}
                          for h in hidden],
            "vs_batch": [{"batch": b, "step_s": step_time((2048, 500, 11), 32, b, 0.05, repeats, backend, threads)}
                         for b in batches]}
