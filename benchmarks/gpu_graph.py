"""Training step as a captured CUDA graph vs the same step launched kernel by kernel (the
gpu_check.sh `graph` step). Both take the input in its static form (graph.static_input) and end
with the one packed results copy, so a step's wall time is host launch overhead + device
work; the graph replaces the launches by one graph launch (gpusnn.backends.gpu.graph). The
input is random binary spikes (the grid form).

usage: python benchmarks/gpu_graph.py [--widths 2048,500,11] [--steps 20] [--batch-size 32]
       [--density 0.05] [--repeats 50] [--out graph.json]
Needs --backend cuda (the default); any other backend is refused with exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
from common import report

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.config import RunConfig
from gpusnn.errors import GpusnnError
from gpusnn.profiling import random_spikes


def time_steps(run, batches) -> list[float]:
    """Wall seconds of run(spikes, labels) per batch (each ends in a host copy: synchronised)."""
    out = []
    for spikes, labels in batches:
        t0 = time.perf_counter()
        run(spikes, labels)
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cuda")
    ap.add_argument("--widths", default="2048,500,11")
    ap.add_argument("--steps", type=int, default=20, help="time steps T")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=50, help="timed batches per mode (after 3 untimed)")
    ap.add_argument("--out", help="write the result JSON here")
    args = ap.parse_args(argv)
    widths, T, B = [int(w) for w in args.widths.split(",")], args.steps, args.batch_size
    try:
        from gpusnn.backends.gpu.graph import GraphStep, array_fields, static_input
        backend = get_backend(args.backend)
        cfg = RunConfig().replace(network={"widths": widths, "n_steps": T}, train={"batch_size": B})
        graph = GraphStep(backend, training.new_state(cfg, backend), cfg)
    except GpusnnError as e:
        print(f"gpu_graph: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    batches = [(random_spikes(B, T, widths[0], args.density, s), rng.integers(0, widths[-1], B))
               for s in range(args.repeats + 3)]
    eager_state = training.new_state(cfg, backend)

    def eager(spikes, labels):
        host = static_input(spikes)
        dev = replace(host, **{k: backend.asarray(a) for k, a in array_fields(host).items()})
        return training.train_batch(backend, eager_state, cfg, dev, labels)

    result = {"what": "training step wall time per batch, CUDA graph vs kernel by kernel (grid input, "
                      "one packed results copy each)", "backend": backend.name, "widths": widths, "n_steps": T,
              "batch_size": B, "density": args.density, "repeats": args.repeats,
              "load_average_1m": os.getloadavg()[0]}
    for name, run in (("eager", eager), ("graph", graph)):
        secs = time_steps(run, batches)[3:]
        result[f"{name}_ms_median"] = 1e3 * float(np.median(secs))
        result[f"{name}_ms_min"] = 1e3 * float(np.min(secs))
    result["captures"] = graph.captures
    result["speedup"] = result["eager_ms_median"] / result["graph_ms_median"]
    return report(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
