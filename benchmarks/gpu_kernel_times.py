"""Per-kernel times of a training batch: every project kernel and library call of
training.train_batch timed on its own (CUDA events around each launch on cuda; perf_counter
on emulated, which is CPU time and no GPU figure), with the batch's counted traffic.

usage: python benchmarks/gpu_kernel_times.py --out FILE [--backend cuda] [--widths 2048,500,11]
       [--steps 20] [--batch-sizes 32,512] [--density 0.05] [--repeats 5]
Writes FILE (JSON): per batch size, per label ("file.kernel" or "xp.op") the launches per
batch and the median over repeats of its summed milliseconds per batch; the whole batch's
wall time and the device traffic (gpusnn.backends.gpu.counting).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict

import numpy as np

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.config import RunConfig
from gpusnn.profiling import machine_info, random_spikes


class LaunchTimer:
    """rt.timer: times each launch (CUDA events on cuda, else perf_counter around the call)."""

    def __init__(self, cupy=None):
        self.cupy = cupy
        self.records = []      # (label, start, end): events on cuda, seconds elsewhere

    def __call__(self, label, fn, args, kwargs):
        if self.cupy is None:
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.records.append((label, t0, time.perf_counter()))
            return out
        start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
        start.record()
        out = fn(*args, **kwargs)
        end.record()
        self.records.append((label, start, end))
        return out

    def per_label_ms(self) -> dict:
        """{label: summed milliseconds} of the records so far (synchronises on cuda)."""
        out = defaultdict(float)
        if self.cupy is not None:
            self.cupy.cuda.Device().synchronize()
        for label, a, b in self.records:
            out[label] += self.cupy.cuda.get_elapsed_time(a, b) if self.cupy is not None else (b - a) * 1e3
        self.records.clear()
        return dict(out)


def time_batches(backend, widths, T: int, B: int, density: float, repeats: int, seed: int = 0) -> dict:
    """Per-label launches and median ms per batch over `repeats` batches after one warm-up."""
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": T}, train={"batch_size": B})
    state = training.new_state(cfg, backend)
    spikes = random_spikes(B * (repeats + 1), T, widths[0], density, seed)
    labels = np.random.default_rng([seed, 4]).integers(0, widths[-1], spikes.n_samples)
    cupy = None
    if backend.name == "cuda":
        import cupy
    timer = LaunchTimer(cupy)
    per_batch, walls, traffic = [], [], None
    for k in range(repeats + 1):
        idx = np.arange(k * B, (k + 1) * B)
        backend.rt.timer = timer if k else None
        t = backend.rt.reset_counts()
        t0 = time.perf_counter()
        training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes.select(idx)), labels[idx])
        walls.append(time.perf_counter() - t0)
        if k:
            per_batch.append(timer.per_label_ms())
            traffic = t.as_dict()
    backend.rt.timer = None
    calls = {**traffic["breakdown"]["kernels"], **{f"xp.{k}": v for k, v in traffic["breakdown"]["library"].items()}}
    order = sorted(set().union(*per_batch), key=lambda s: -np.median([p.get(s, 0.0) for p in per_batch]))
    return {"batch_size": B, "wall_ms_per_batch": float(np.median(walls[1:]) * 1e3),
            "timed_sum_ms_per_batch": float(np.median([sum(p.values()) for p in per_batch])),
            "per_label": {s: {"launches_per_batch": calls.get(s, 0),
                              "ms_per_batch": float(np.median([p.get(s, 0.0) for p in per_batch]))} for s in order},
            "device_traffic": traffic}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="cuda", choices=("cuda", "emulated"))
    ap.add_argument("--widths", default="2048,500,11")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-sizes", default="32,512")
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    backend = get_backend(args.backend)
    result = {"machine": machine_info(backend.name), "workload": vars(args) | {"widths": widths},
              "clock": "cuda events per launch" if backend.name == "cuda" else "perf_counter per call (emulated, CPU)",
              "batches": [time_batches(backend, widths, args.steps, int(b), args.density, args.repeats)
                          for b in args.batch_sizes.split(",")]}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    for b in result["batches"]:
        top = ", ".join(f"{k} {v['ms_per_batch']:.3f}" for k, v in list(b["per_label"].items())[:5])
        print(f"B={b['batch_size']}: {b['wall_ms_per_batch']:.2f} ms/batch wall, timed sum "
              f"{b['timed_sum_ms_per_batch']:.2f} ms; top: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
