"""One small training step (forward, gradients, fractional update) on a kernel backend:
the workload compute-sanitizer checks in gpu_check.sh. Runs on the CPU with --backend emulated.

usage: python benchmarks/gpu_step.py [--backend cuda|emulated] [--layers 256,48,24,11] [--no-pool]
                                    [--modes auto|event|dense[,...]]
--modes runs the steps once per forward mode (gpu_check.sh: event,dense, so the sanitizers
see every forward kernel: currents_csr / currents_grid with their shared-memory staging, and
scatter_dense / scatter_grid + the GEMM). --no-pool turns CuPy's memory pools off (every array its own cudaMalloc), so that
compute-sanitizer memcheck sees reads past an array and initcheck reads of unwritten memory
that a pooled block would hide.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.backends.gpu.forward import check_mode
from gpusnn.config import RunConfig
from gpusnn.optimizer import apply_update
from data_tools.spikes import from_dense


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cuda", choices=("cuda", "emulated"))
    ap.add_argument("--layers", default="256,48,24,11")
    ap.add_argument("--steps", type=int, default=2, help="optimisation steps (>= 2 reaches the fractional path)")
    ap.add_argument("--no-pool", action="store_true", help="CuPy memory pools off (for compute-sanitizer)")
    ap.add_argument("--modes", default="auto", help="forward modes, comma-separated (auto, event, dense)")
    args = ap.parse_args(argv)
    return max(step(args, check_mode(m)) for m in args.modes.split(","))


def step(args, mode: str) -> int:
    """args.steps training steps in forward mode `mode`; 0 when every result is finite."""
    if args.no_pool and args.backend == "cuda":
        import cupy
        cupy.cuda.set_allocator(None)
        cupy.cuda.set_pinned_memory_allocator(None)
    widths = [int(w) for w in args.layers.split(",")]
    T, B = 8, 4
    backend = get_backend(args.backend)
    backend.mode = mode
    rng = np.random.default_rng(0)
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": T, "theta": 0.5},
                              optim={"alpha": 1.5, "grad_at": "previous"})
    state = training.new_state(cfg, backend)
    for _ in range(args.steps):
        spikes = from_dense((rng.random((B, T, widths[0])) < 0.1).astype(np.int32)).to(backend.xp)
        labels = rng.integers(0, widths[-1], B)
        records = backend.forward(state.weights, spikes, cfg.network.theta)
        loss, rho, grads = backend.gradients(state.weights, spikes, records, labels, T, cfg.network.theta, cfg.method)
        apply_update(backend, state.weights, grads, state.optim, cfg.optim)
        loss, rho, _ = backend.host_results(loss, rho, records)
    W = [np.asarray(backend.asnumpy(w)) for w in state.weights]
    ok = all(np.isfinite(w).all() for w in W) and np.isfinite(loss).all()
    print(f"gpu_step: backend {args.backend}, mode {mode}, widths {widths}, loss {float(loss.mean()):.4f}, finite {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
