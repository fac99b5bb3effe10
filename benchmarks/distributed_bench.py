"""Data-parallel epoch time at P = 1, 2, ... MPI ranks (numpy backend, one BLAS thread per rank),
and the cost of one gradient all-reduce on this machine. Not part of the tests.

    python benchmarks/distributed_bench.py [--procs 1 2] [--repeats 3] [--epochs 2] [--samples 1024] [--batch 32]
    python benchmarks/distributed_bench.py --model      # the GPU all-reduce model table of docs/distributed.md

Workload as the suite's training benchmark (docs/benchmarking.md): 2048-500-11, random binary
input at 5 % density per step (gpusnn.profiling.random_spikes), random labels, T = 16. Every
(P, repeat) is a fresh `mpiexec -n P` job (mpiexec next to this Python: the mpich wheel);
each does one warm-up epoch, then --epochs timed epochs, and reports per epoch the wall time
and the time rank 0 spent inside allreduce_sum (gradients and the per-batch metrics). A
separate job times the all-reduce of one 2048-500-11 gradient (4.1 MB float32) alone, through
gpusnn's polled MpiComm.allreduce_sum and through MPI's blocking Allreduce.
Writes benchmarks/results/distributed.json (medians over repeats, the machine and its load).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from common import REPO, machine, write_result  # noqa: E402

WIDTHS = (2048, 500, 11)

# Link model for docs/distributed.md (nominal per-direction bandwidth, bytes/s; latency L in s:
# assumed NCCL start-up + per-hop cost of one all-reduce, not measured here)
LINKS = {"NVLink 4 (H100 SXM, 450 GB/s)": (450e9, 15e-6), "NVLink 3 (A100 SXM, 300 GB/s)": (300e9, 15e-6),
         "PCIe 4.0 x16 (25 GB/s)": (25e9, 20e-6), "InfiniBand NDR 400 Gb/s (50 GB/s)": (50e9, 40e-6),
         "InfiniBand HDR 200 Gb/s (25 GB/s)": (25e9, 40e-6)}


def ring_allreduce_s(nbytes: int, P: int, bandwidth: float, latency: float) -> float:
    """Ring all-reduce time: 2 (P - 1) / P * bytes / bandwidth + latency (0 for P = 1)."""
    return 0.0 if P == 1 else 2 * (P - 1) / P * nbytes / bandwidth + latency


def model_table(ps=(2, 4, 8, 16)) -> str:
    """Markdown: the all-reduce time of one 2048-500-11 gradient per link and P, and the
    per-rank step time that 80 % parallel efficiency needs (4x the all-reduce)."""
    nbytes = 4 * sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:]))
    lines = ["| link | " + " | ".join(f"P = {P}" for P in ps) + " | step per rank for 80 % at P = 8 |",
             "|---|" + "---|" * (len(ps) + 1)]
    for name, (bw, lat) in LINKS.items():
        t = [ring_allreduce_s(nbytes, P, bw, lat) for P in ps]
        lines.append(f"| {name} | " + " | ".join(f"{1e6 * x:.0f} µs" for x in t)
                     + f" | >= {4e3 * ring_allreduce_s(nbytes, 8, bw, lat):.2f} ms |")
    return "\n".join(lines)


class TimedComm:
    """A communicator that adds the seconds spent in allreduce_sum to self.seconds."""

    def __init__(self, comm):
        self.comm, self.rank, self.size, self.seconds = comm, comm.rank, comm.size, 0.0

    def allreduce_sum(self, arrays):
        t0 = time.perf_counter()
        out = self.comm.allreduce_sum(arrays)
        self.seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name):
        return getattr(self.comm, name)


def worker(args) -> None:
    from data_tools.spikes import EncodedDataset
    from gpusnn import distributed, training
    from gpusnn.backends import get_backend
    from gpusnn.config import RunConfig
    from gpusnn.profiling import random_spikes
    comm = TimedComm(distributed.MpiComm())
    if args.mode == "allreduce":
        from mpi4py import MPI
        grads = [np.ones((a, b), np.float32) for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
        flat = np.concatenate([g.ravel() for g in grads])
        times, blocking = [], []
        for _ in range(args.repeats):  # gpusnn's polled all-reduce, then MPI's blocking one, alternately
            comm.barrier()
            t0 = time.perf_counter()
            comm.allreduce_sum(grads)
            times.append(time.perf_counter() - t0)
            comm.barrier()
            t0 = time.perf_counter()
            comm.comm.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            blocking.append(time.perf_counter() - t0)
        if comm.rank == 0:
            print(json.dumps({"bytes": int(flat.nbytes), "seconds": times, "blocking_seconds": blocking}))
        return
    spikes = random_spikes(args.samples, args.steps, WIDTHS[0], 0.05, seed=0)
    labels = np.random.default_rng(1).integers(0, WIDTHS[-1], args.samples)
    data = EncodedDataset("bench", spikes, labels, spikes.select([0]), labels[:1], WIDTHS[-1],
                          tuple(map(str, range(WIDTHS[-1]))), "bench", {})
    cfg = RunConfig().replace(network={"widths": WIDTHS, "n_steps": args.steps},
                              train={"batch_size": args.batch, "epochs": 10 ** 6, "seed": 0, "backend": "numpy"})
    backend = get_backend("numpy")
    state = training.new_state(cfg, backend)
    epochs = []
    for e in range(args.epochs + 1):  # the first is a warm-up
        comm.barrier()
        comm.seconds = 0.0
        t0 = time.perf_counter()
        training.train_epoch(backend, state, cfg, data, progress=False, comm=comm)
        wall = time.perf_counter() - t0
        state.epoch += 1
        state.current = training.EpochProgress()
        if e:
            epochs.append({"epoch_s": wall, "allreduce_s": comm.seconds})
    if comm.rank == 0:
        print(json.dumps({"epochs": epochs}))


def mpiexec(P: int, args: list[str]) -> dict:
    exe = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([str(exe), "-n", str(P), sys.executable, __file__, "--worker", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"P={P} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--model", action="store_true", help="print the GPU all-reduce model table and exit")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="epoch", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.model:
        print(model_table())
        return
    if args.worker:
        worker(args)
        return
    common = ["--epochs", str(args.epochs), "--samples", str(args.samples), "--batch", str(args.batch),
              "--steps", str(args.steps)]
    load_before = os.getloadavg()
    rows = []
    for r in range(args.repeats):  # alternate P within each repeat so drift hits every P alike
        for P in args.procs:
            res = mpiexec(P, common)
            rows.append({"P": P, "repeat": r, **res})
    by_p = {}
    for P in args.procs:
        ep = [e for row in rows if row["P"] == P for e in row["epochs"]]
        by_p[P] = {"epoch_s_median": statistics.median(e["epoch_s"] for e in ep),
                   "allreduce_s_median": statistics.median(e["allreduce_s"] for e in ep),
                   "epoch_s_all": [e["epoch_s"] for e in ep]}
    ar = {P: mpiexec(P, ["--mode", "allreduce", "--repeats", "30"]) for P in args.procs if P > 1}
    result = {
        "suite": "distributed", "machine": machine(),
        "load": {"loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                 "note": "shared machine: other jobs were running; medians over repeats"},
        "workload": {"widths": list(WIDTHS), "samples": args.samples, "batch": args.batch, "steps": args.steps,
                     "density": 0.05, "backend": "numpy", "threads_per_rank": 1, "timed_epochs": args.epochs,
                     "repeats": args.repeats, "command": "python benchmarks/distributed_bench.py " + " ".join(sys.argv[1:])},
        "epoch": {str(P): v for P, v in by_p.items()},
        "speedup": {str(P): by_p[args.procs[0]]["epoch_s_median"] / by_p[P]["epoch_s_median"] for P in args.procs},
        "allreduce_gradient": {str(P): {"bytes": v["bytes"], "seconds_median": statistics.median(v["seconds"]),
                                        "blocking_mpi_seconds_median": statistics.median(v["blocking_seconds"])}
                               for P, v in ar.items()},
        "runs": rows,
    }
    print(json.dumps({k: result[k] for k in ("epoch", "speedup", "allreduce_gradient", "load")}, indent=1))
    print(write_result("distributed", result))


if __name__ == "__main__":
    main()
