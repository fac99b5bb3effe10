"""One measurement of benchmarks/data_bench.py in a fresh process; prints one JSON line.

    data_worker.py convert SRC DST [--compression lzf|gzip|none] [--chunk N] [--workers N]
    data_worker.py epoch STORE --batches K [--prefetch D] [--init-scale S]

convert: a whole conversion (AEDAT 3.1 directory -> finished event store): seconds, events/s,
peak RSS (VmHWM of this process). epoch: K training batches (numpy backend, default network
2048-500-11, T = 20, batch 32, count encoding, theta from the input drive as in `gpusnn
train`) read batch by batch from the store, first with
every phase timed in turn (read, encode, forward, gradient, update; no prefetch; with the
share of hidden neurons saturated (a spike on every step) and silent per sample and batch),
then the same batches through training.train_epoch with prefetch; peak RSS of each.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import peak_rss_bytes, reset_peak_rss  # noqa: E402


def convert_cmd(args) -> dict:
    from data_tools.convert import convert
    comp = None if args.compression == "none" else args.compression
    out = convert(args.src, args.dst, compression=comp, chunk=args.chunk, workers=args.workers, progress=False)
    out.update(events_per_s=out["events"] / out["seconds"], peak_rss_bytes=peak_rss_bytes(),
               peak_rss_children_bytes=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    from data_tools.gesture_layout import trial_list
    from data_tools.aedat3 import read_header
    files = [Path(args.src) / n for n, _ in trial_list(args.src)]
    out["file_bytes"] = sum(f.stat().st_size for f in files)
    out["file_events"] = sum((f.stat().st_size - read_header(f).data_offset) // 8 for f in files)  # ~, 28-byte packet headers aside
    out["file_events_per_s"] = out["file_events"] / out["seconds"]
    out["file_events_per_cpu_s"] = out["file_events"] / out["cpu_seconds"]
    return out


def epoch_cmd(args) -> dict:
    from data_tools.datasets import load_dataset
    from data_tools.encode import encode
    from data_tools.loader import take
    from gpusnn import training
    from gpusnn.backends import get_backend
    from gpusnn.config import RunConfig
    from gpusnn.optimizer import apply_update

    cfg = RunConfig().replace(train={"backend": "numpy", "epochs": 1})
    t = cfg.train
    reset_peak_rss()
    data = load_dataset(args.store, n_steps=cfg.network.n_steps, downsample=t.downsample, binning=t.binning,
                        mode=t.encoding, progress=False, in_memory_events=0)
    cfg = cfg.replace(network={"widths": (data.train.n_inputs, 500, data.n_classes), "init_scale": args.init_scale})
    cfg = training.with_input_drive(cfg, data.train)          # as `gpusnn train` does
    n = min(data.train.n_samples, args.batches * t.batch_size)
    order = training.epoch_order(t.seed, 0, data.train.n_samples)[:n]
    backend = get_backend("numpy")
    net = cfg.network
    # A: phases in turn, no prefetch
    src = take(data.train, order)
    state = training.new_state(cfg, backend)
    phases = {k: 0.0 for k in ("read", "encode", "forward", "gradient", "update")}
    cpu = dict.fromkeys(phases, 0.0)
    events = spikes_in = 0
    activity = []
    t0, c0 = time.perf_counter(), time.process_time()
    for s in range(0, n, t.batch_size):
        idx = np.arange(s, min(s + t.batch_size, n))
        marks = [(time.perf_counter(), time.process_time())]
        samples = src.samples(idx)
        marks.append((time.perf_counter(), time.process_time()))
        spikes = encode(samples, net.n_steps, downsample=t.downsample, binning=t.binning, mode=t.encoding)
        marks.append((time.perf_counter(), time.process_time()))
        recs = backend.forward(state.weights, spikes, net.theta)
        marks.append((time.perf_counter(), time.process_time()))
        _, _, grads = backend.gradients(state.weights, spikes, recs, data.train_labels[order[idx]], net.n_steps,
                                        net.theta, cfg.method)
        marks.append((time.perf_counter(), time.process_time()))
        apply_update(backend, state.weights, grads, state.optim, cfg.optim)
        marks.append((time.perf_counter(), time.process_time()))
        for k, (a, b) in zip(phases, zip(marks[:-1], marks[1:])):
            phases[k] += b[0] - a[0]
            cpu[k] += b[1] - a[1]
        events += samples.events.size
        spikes_in += spikes.nnz
        hidden = np.asarray(recs[0].counts)                   # [B, n_hidden] spikes over the window
        activity.append({"saturated": float((hidden >= net.n_steps).mean()), "silent": float((hidden == 0).mean()),
                         "mean_rate": float(hidden.mean() / net.n_steps)})
    serial_s, serial_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_serial = peak_rss_bytes()
    # B: the trainer's loop with prefetch over the same samples in the same order
    reset_peak_rss()
    old = training.PREFETCH
    training.PREFETCH = args.prefetch
    part = replace(data, train=src, train_labels=data.train_labels[order])
    state = training.new_state(cfg, backend)
    # train_epoch shuffles part by (seed, epoch): the same batches' samples in another order
    t0, c0 = time.perf_counter(), time.process_time()
    training.train_epoch(backend, state, cfg, part, progress=False)
    prefetch_s, prefetch_cpu = time.perf_counter() - t0, time.process_time() - c0
    training.PREFETCH = old
    rss_prefetch = peak_rss_bytes()
    n_batches = -(-n // t.batch_size)
    full_batches = -(-data.train.n_samples // t.batch_size)
    io = phases["read"] + phases["encode"]
    return {"store": str(args.store), "n_train": data.train.n_samples, "n_test": data.test.n_samples,
            "store_events": data.meta["n_events"], "batches": n_batches, "batch_size": t.batch_size,
            "widths": list(cfg.network.widths), "init_scale": net.init_scale, "theta": net.theta, "n_steps": net.n_steps, "encoding": t.encoding,
            "events_per_batch": events / n_batches, "input_spikes_per_batch": spikes_in / n_batches,
            "phases_s_per_batch": {k: v / n_batches for k, v in phases.items()},
            "phases_cpu_s_per_batch": {k: v / n_batches for k, v in cpu.items()},
            "serial_s_per_batch": serial_s / n_batches, "prefetch_s_per_batch": prefetch_s / n_batches,
            "serial_cpu_s_per_batch": serial_cpu / n_batches, "prefetch_cpu_s_per_batch": prefetch_cpu / n_batches,
            "prefetch_depth": args.prefetch,
            "hidden_fraction_of_read_encode": max(0.0, min(1.0, (serial_s - prefetch_s) / io)) if io else None,
            "epoch_s_extrapolated": prefetch_s / n_batches * full_batches,
            "epoch_cpu_s_extrapolated": prefetch_cpu / n_batches * full_batches, "full_epoch_batches": full_batches,
            "hidden_activity_per_batch": activity,
            "peak_rss_serial_bytes": rss_serial, "peak_rss_prefetch_bytes": rss_prefetch}


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--compression", default="none", choices=("lzf", "gzip", "none"))
    c.add_argument("--chunk", type=int, default=1 << 16)
    c.add_argument("--workers", type=int, default=1)
    e = sub.add_parser("epoch")
    e.add_argument("store")
    e.add_argument("--batches", type=int, default=4)
    e.add_argument("--prefetch", type=int, default=2)
    e.add_argument("--init-scale", type=float, default=1.0, help="network init scale (default 1.0, the default)")
    args = p.parse_args()
    out = convert_cmd(args) if args.cmd == "convert" else epoch_cmd(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
