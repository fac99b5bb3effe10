"""Throughput of the kernel backends against the numpy backend and a dense xp formulation.

For each backend: time per epoch (gpusnn.training.train_epoch, after a warm-up batch),
synaptic events per second forward (presynaptic spikes x fan-out, summed over layers) and
backward (the gradient kernel touches the same events), and for cuda the achieved bandwidth
against the device's peak (bytes the kernels must move / epoch time); with --dense the dense
formulation (gpu_dense.dense_step) and its matrix products alone (gpu_dense.dense_gemms, the
plain-GEMM baseline). Writes bench.json.

usage: python benchmarks/gpu_bench.py --out DIR [--backends cuda,numpy] [--dense]
       [--samples 1024] [--widths 2048,500,11] [--steps 16] [--density 0.05]
CPU run (the record in docs/kernels.md): --backends numpy,emulated --samples 256
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_dense import dense_gemms, dense_step  # noqa: E402

from gpusnn import training  # noqa: E402
from gpusnn.backends import Backend, get_backend  # noqa: E402
from gpusnn.config import RunConfig  # noqa: E402
from data_tools.spikes import EncodedDataset, from_dense  # noqa: E402


def make_data(n, T, n_in, C, density, seed=0) -> EncodedDataset:
    rng = np.random.default_rng(seed)
    X = from_dense((rng.random((n, T, n_in)) < density).astype(np.int32))
    y = rng.integers(0, C, n)
    return EncodedDataset("bench", X, y, X.select(np.arange(1)), y[:1], C, tuple(map(str, range(C))), "bench", {})


def sync(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def device_peak_gbs() -> float | None:
    """Peak DRAM bandwidth of device 0 in GB/s (memory clock x bus width x 2), if known."""
    import cupy
    rt = cupy.cuda.runtime
    try:
        clock_khz = rt.deviceGetAttribute(rt.cudaDevAttrMemoryClockRate, 0)
        bus_bits = rt.deviceGetAttribute(rt.cudaDevAttrGlobalMemoryBusWidth, 0)
        return 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    except Exception:  # attribute missing in this CUDA version: report null
        return None


def phase_rates(backend: Backend, cfg: RunConfig, data: EncodedDataset) -> dict:
    """Synaptic events of one epoch's forward pass (presynaptic spikes x fan-out over the
    layers; the gradient touches the same events), forward and gradient seconds timed
    separately, and the bytes the kernels must move (W rows forward, a and w backward,
    five weight-sized arrays in the update)."""
    bs, T, theta = cfg.train.batch_size, cfg.network.n_steps, cfg.network.theta
    state = training.new_state(cfg, backend)
    events, fwd_s, bwd_s = 0, 0.0, 0.0
    for s in range(0, data.train.n_samples, bs):
        idx = np.arange(s, min(s + bs, data.train.n_samples))
        spikes = training.device_spikes(backend, data.train.select(idx))
        sync(backend.xp)
        t0 = time.perf_counter()
        records = backend.forward(state.weights, spikes, theta)
        sync(backend.xp)
        t1 = time.perf_counter()
        backend.gradients(state.weights, spikes, records, data.train_labels[idx], T, theta, cfg.method)
        sync(backend.xp)
        fwd_s, bwd_s = fwd_s + t1 - t0, bwd_s + time.perf_counter() - t1
        inputs = [spikes] + [r.spikes.to(np) for r in records[:-1]]   # hidden grids compacted (host)
        events += sum(x.nnz * W.shape[1] for x, W in zip(inputs, state.weights))
    n_batches = -(-data.train.n_samples // bs)
    nbytes = events * (4 + 8) + sum(5 * 4 * W.size for W in state.weights) * n_batches
    return {"synaptic_events": events, "fwd_s": fwd_s, "bwd_s": bwd_s, "fwd_events_per_s": events / fwd_s,
            "bwd_events_per_s": events / bwd_s, "bytes": nbytes}


def time_epoch(backend: Backend, cfg: RunConfig, data: EncodedDataset) -> float:
    state = training.new_state(cfg, backend)
    warm = data.train.select(np.arange(cfg.train.batch_size))
    training.train_batch(backend, state, cfg, training.device_spikes(backend, warm), data.train_labels[:cfg.train.batch_size])
    sync(backend.xp)
    t0 = time.perf_counter()
    training.train_epoch(backend, state, cfg, data, progress=False)
    sync(backend.xp)
    return time.perf_counter() - t0


def time_dense(xp, cfg, data) -> float:
    weights = [xp.asarray(w) for w in training.init_weights(cfg.network.widths, 1.0, 0)]
    W_prev = [w.copy() for w in weights]
    bs = cfg.train.batch_size
    batches = [(xp.asarray(data.train.select(np.arange(s, min(s + bs, data.train.n_samples))).to_dense(),
                           dtype=xp.float32), xp.asarray(data.train_labels[s:s + bs]))
               for s in range(0, data.train.n_samples, bs)]
    dense_step(xp, weights, W_prev, *batches[0], 0, cfg)
    sync(xp)
    t0 = time.perf_counter()
    for k, (X, y) in enumerate(batches):
        dense_step(xp, weights, W_prev, X, y, k + 1, cfg)
    sync(xp)
    return time.perf_counter() - t0


def time_gemms(xp, cfg, n_samples: int, density: float) -> float:
    """Seconds of the dense formulation's matrix products (gpu_dense.dense_gemms) for an epoch
    of n_samples: random binary inputs and windows of the real shapes, one GEMM set per batch."""
    rng = np.random.default_rng(1)
    widths, bs, T = cfg.network.widths, cfg.train.batch_size, cfg.network.n_steps
    weights = [xp.asarray(w) for w in training.init_weights(widths, 1.0, 0)]
    inputs = [xp.asarray((rng.random((bs * T, n)) < density).astype(np.float32)) for n in widths[:-1]]
    windows = [xp.asarray(rng.random((bs * T, n), dtype=np.float32)) for n in widths[1:]]
    deltas = [xp.asarray(rng.random((bs, n), dtype=np.float32)) for n in widths[1:]]
    dense_gemms(weights, inputs, windows, deltas)
    sync(xp)
    t0 = time.perf_counter()
    for _ in range(-(-n_samples // bs)):
        dense_gemms(weights, inputs, windows, deltas)
    sync(xp)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--backends", default="cuda,numpy")
    ap.add_argument("--dense", action="store_true", help="also time the dense xp formulation on each array module")
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--widths", default="2048,500,11")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": args.steps, "theta": 0.5},
                              train={"batch_size": args.batch_size, "epochs": 1})
    data = make_data(args.samples, args.steps, widths[0], widths[-1], args.density)
    result = {"workload": vars(args) | {"widths": widths}, "backends": {}}
    for name in args.backends.split(","):
        backend = get_backend(name)
        time_epoch(backend, cfg, data)                      # warm-up: compiles, caches, allocator
        r = phase_rates(backend, cfg, data)
        r["epoch_s"] = sec = time_epoch(backend, cfg, data)
        if name == "cuda":
            r |= {"achieved_GBps": r["bytes"] / sec / 1e9, "device_peak_GBps": device_peak_gbs()}
        if args.dense:
            r["dense_epoch_s"] = time_dense(backend.xp, cfg, data)
            r["gemm_epoch_s"] = time_gemms(backend.xp, cfg, args.samples, args.density)
        result["backends"][name] = r
        print(name, json.dumps(r), flush=True)
    base = result["backends"].get("numpy", {}).get("epoch_s")
    for name, r in result["backends"].items():
        if base:
            r["speedup_vs_numpy"] = base / r["epoch_s"]
        if "dense_epoch_s" in r:
            r["speedup_vs_dense"] = r["dense_epoch_s"] / r["epoch_s"]
            r["speedup_vs_gemms"] = r["gemm_epoch_s"] / r["epoch_s"]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
