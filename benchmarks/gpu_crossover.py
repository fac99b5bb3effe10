"""The forward's event/dense crossover: one layer's forward (gpusnn.backends.gpu.forward.
layer_forward) timed in mode "event" (kernel A + IF scan) and "dense" (scatter + GEMM + IF
scan) over input densities, to measure forward.DENSE_ABOVE on a GPU (it is modelled until then).

usage: python benchmarks/gpu_crossover.py --out FILE [--backend cuda] [--layer 2048,500]
       [--steps 20] [--batch-sizes 32,128] [--densities 0.01,0.02,...,0.6] [--repeats 5]
Writes FILE (JSON): per batch size and density the median milliseconds per forward of each
mode (CUDA events around the call on cuda; perf_counter on emulated, CPU time and no GPU
figure), and per batch size the measured crossover: the midpoint between the densest input
where the event path is faster and the next density, where the dense path is faster from
there on (null when one mode wins everywhere); the machine and its load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from gpusnn.backends import get_backend
from gpusnn.backends.gpu.forward import DENSE_ABOVE, layer_forward
from gpusnn.profiling import machine_info, random_spikes

DENSITIES = "0.01,0.02,0.05,0.08,0.1,0.15,0.2,0.3,0.4,0.6"


def forward_ms(backend, W, spikes, mode: str, repeats: int) -> float:
    """Median milliseconds of one layer forward in `mode` over `repeats` runs after a warm-up."""
    rt = backend.rt
    cupy = None
    if backend.name == "cuda":
        import cupy
    times = []
    for k in range(repeats + 1):
        if cupy is None:
            t0 = time.perf_counter()
            layer_forward(rt, W, spikes, 1.0, mode=mode)
            ms = (time.perf_counter() - t0) * 1e3
        else:
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            layer_forward(rt, W, spikes, 1.0, mode=mode)
            end.record()
            end.synchronize()
            ms = cupy.cuda.get_elapsed_time(start, end)
        if k:
            times.append(ms)
    return float(np.median(times))


def crossover(rows: list[dict]) -> float | None:
    """Midpoint between the last density where event is faster and the next one, when dense
    is faster from there on; None when one mode is faster at every density."""
    dense_wins = [r["dense_ms"] < r["event_ms"] for r in rows]
    for k in range(1, len(rows)):
        if all(dense_wins[k:]) and not dense_wins[k - 1]:
            return (rows[k - 1]["density"] + rows[k]["density"]) / 2
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="cuda", choices=("cuda", "emulated"))
    ap.add_argument("--layer", default="2048,500", help="n_pre,n_post")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-sizes", default="32,128")
    ap.add_argument("--densities", default=DENSITIES)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    n_pre, n_post = (int(v) for v in args.layer.split(","))
    densities = [float(d) for d in args.densities.split(",")]
    backend = get_backend(args.backend)
    W = backend.asarray(np.random.default_rng(1).uniform(-0.05, 0.1, (n_pre, n_post)).astype(np.float32))
    batches = []
    for B in (int(b) for b in args.batch_sizes.split(",")):
        rows = []
        for d in densities:
            spikes = random_spikes(B, args.steps, n_pre, d, seed=int(d * 1e4)).to(backend.rt.xp)
            rows.append({"density": d, "input_entries": int(spikes.nnz),
                         "event_ms": forward_ms(backend, W, spikes, "event", args.repeats),
                         "dense_ms": forward_ms(backend, W, spikes, "dense", args.repeats)})
            print(f"B={B} density {d:.2f}: event {rows[-1]['event_ms']:.3f} ms, dense {rows[-1]['dense_ms']:.3f} ms")
        batches.append({"batch_size": B, "rows": rows, "measured_crossover": crossover(rows)})
    result = {"machine": machine_info(backend.name), "load_average": os.getloadavg(),
              "workload": vars(args) | {"densities": densities},
              "clock": "cuda events per forward" if backend.name == "cuda" else "perf_counter (emulated, CPU)",
              "modelled_dense_above": DENSE_ABOVE, "batches": batches}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print("measured crossover:", {b["batch_size"]: b["measured_crossover"] for b in batches},
          f"(modelled DENSE_ABOVE {DENSE_ABOVE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
