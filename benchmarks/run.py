"""gpusnn benchmark suite (not part of the tests): one JSON per suite in benchmarks/results/.

    python benchmarks/run.py [--quick] [--only NAME ...] [--out DIR] [--backend numpy|cuda]

Run it with the benchmark environment's interpreter (benchmarks/setup_peers.sh), which has
the peers (torch, snnTorch, SpikingJelly, tonic); every peer and gpusnn run is a fresh
process started from here with that interpreter, in alternation, so that the drift of a
shared machine hits all of them and the ratios stay meaningful.

Suites:
    reader    AEDAT 3.1 read throughput: gpusnn vs SpikingJelly's and tonic's loaders on one
              file of >= 10 M events generated into a temporary directory (never kept)
    training  time per epoch and peak memory: gpusnn (FO-STDGD) vs snnTorch and SpikingJelly
              (surrogate-gradient BPTT), 2048-500-11, batch 32, 1,024 samples, 5 % input
              density, T in 16 / 32 / 64, --threads threads each
    realrate  the same network on count input at the real recordings' rate (~8 events per input
              line per step, coalesced density ~50 %) on learnable classes: gpusnn vs
              SpikingJelly, T in 16 / 32 / 64, with 1 and with 2 threads each (the hidden
              layer's firing fractions and the train accuracy reported)
    density   event-driven vs dense first-layer forward over input density 0.1 % .. 50 %
              (the numpy backend's two modes) with 1 and 2 BLAS threads, and the crossover
    scaling   gpusnn step time vs T, vs hidden width, vs batch
    tta       time to a target test accuracy (benchmarks/tta.py): gpusnn, SpikingJelly and
              snnTorch on the same encoded mnist5k, bundled gestures and (--tta-real DIR) the
              real-size gestures, 1 and 2 threads, epoch by epoch with the test split evaluated
              after each (apart from the timing), medians over seeds
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import RESULTS, machine, run_worker, write_result  # noqa: E402
from tta import tta_suite  # noqa: E402

log = logging.getLogger("benchmarks")
SUITES = ("reader", "training", "realrate", "density", "scaling", "tta")


def aedat3_workload(path: Path, n_events: int, seed: int = 0) -> None:
    """docs/benchmarking.md's AEDAT 3.1 file: polarity packets of 4,096, x and y uniform in
    0..127, random polarity, timestamps rising by 1-3 us."""
    from data_tools.aedat3 import write_aedat3
    from data_tools.events import make_events
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 4, n_events, dtype=np.int64))
    ev = make_events(rng.integers(0, 128, n_events), rng.integers(0, 128, n_events), rng.integers(0, 2, n_events), t)
    write_aedat3(path, ev, packet_events=4096)


def reader_suite(args) -> dict:
    n = 2_000_000 if args.quick else 10_000_000
    readers = ("gpusnn", "spikingjelly", "tonic")
    rounds = 1 if args.quick else args.rounds
    runs = {r: [] for r in readers}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.aedat"
        aedat3_workload(path, n)
        size = path.stat().st_size
        for k in range(rounds):
            for r in readers:
                res = run_worker(sys.executable, "reader_worker.py", ["--reader", r, str(path)])
                if res["events"] != n:
                    raise RuntimeError(f"{r} read {res['events']} events, expected {n}")
                runs[r].append(res)
                log.info("reader round %d %s: %.3f s", k + 1, r, res["seconds"])
    rows = {}
    for r in readers:
        sec = float(np.median([x["seconds"] for x in runs[r]]))
        rows[r] = {"median_s": sec, "events_per_s": n / sec, "runs_s": [x["seconds"] for x in runs[r]],
                   "peak_rss_over_start_bytes": int(np.median([x["peak_rss_bytes"] - x["rss_before_bytes"] for x in runs[r]]))}
    ratios = {f"gpusnn_vs_{r}": float(np.median([b["seconds"] / a["seconds"] for a, b in zip(runs["gpusnn"], runs[r])]))
              for r in readers if r != "gpusnn"}
    return {"workload": {"events": n, "file_bytes": size, "packet_events": 4096, "fresh_process_per_read": True,
                         "rounds": rounds}, "readers": rows, "speedup_pairwise_median": ratios}


def training_suite(args) -> dict:
    steps = (16, 32) if args.quick else (16, 32, 64)
    samples = 256 if args.quick else 1024
    rounds = 1 if args.quick else args.rounds
    trainers = ("gpusnn", "snntorch", "spikingjelly")
    common = ["--samples", str(samples), "--batch", "32", "--density", "0.05", "--threads", str(args.threads),
              "--epochs", "1" if args.quick else "2", "--warmup", "1", "--backend", args.backend]
    table = []
    for T in steps:
        runs = {t: [] for t in trainers}
        for k in range(rounds):
            for tr in trainers:
                res = run_worker(sys.executable, "train_worker.py", ["--trainer", tr, "--steps", str(T), *common],
                                 threads=args.threads)
                runs[tr].append(res)
                log.info("training T=%d round %d %s: %s s/epoch", T, k + 1, tr, res["epoch_s"])
        row = {"T": T}
        for tr in trainers:
            row[tr] = {"epoch_s": float(np.median([np.median(r["epoch_s"]) for r in runs[tr]])),
                       "peak_rss_bytes": int(np.median([r["peak_rss_bytes"] for r in runs[tr]])),
                       "training_rss_bytes": int(np.median([r["peak_rss_bytes"] - r["rss_before_bytes"]
                                                            for r in runs[tr]])),
                       "device_peak_bytes": runs[tr][0]["device_peak_bytes"],
                       "runs_epoch_s": [r["epoch_s"] for r in runs[tr]]}
        for tr in trainers[1:]:
            row[f"{tr}_over_gpusnn_time"] = float(np.median([np.median(b["epoch_s"]) / np.median(a["epoch_s"])
                                                             for a, b in zip(runs["gpusnn"], runs[tr])]))
        table.append(row)
    return {"workload": {"widths": [2048, 500, 11], "batch": 32, "samples": samples, "density": 0.05,
                         "threads": args.threads, "backend": args.backend, "rounds": rounds,
                         "peers": "surrogate-gradient BPTT (ATan), Adam lr 5e-4, beta = 1 / IFNode"},
            "rows": table}


def realrate_suite(args) -> dict:
    """gpusnn vs SpikingJelly at the real event rate: per T one workload file shared by every
    process, then for each thread count 1 and 2 alternating fresh processes of the two."""
    from workloads import realrate_spikes, save
    steps = (16, 32) if args.quick else (16, 32, 64)
    samples = 256 if args.quick else 1024
    rounds = 1 if args.quick else args.rounds
    trainers = ("gpusnn", "spikingjelly")
    thread_counts = (1, 2)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for T in steps:
            path = Path(tmp) / f"realrate-T{T}.npz"
            spikes, labels = realrate_spikes(samples, T, 2048, 11, seed=0, rate=args.rate)
            save(path, spikes, labels)
            workload = {"entries": spikes.nnz, "spikes": spikes.n_spikes(),
                        "coalesced_density": spikes.nnz / (samples * T * 2048),
                        "events_per_line_step": spikes.n_spikes() / (samples * T * 2048)}
            del spikes
            for n_threads in thread_counts:
                common = ["--data", str(path), "--steps", str(T), "--samples", str(samples), "--batch", "32",
                          "--threads", str(n_threads), "--epochs", "1" if args.quick else "2", "--warmup", "1",
                          "--backend", args.backend, "--init-scale", str(args.init_scale), "--lr", str(args.lr)]
                runs = {t: [] for t in trainers}
                load_before = os.getloadavg()[0]
                for k in range(rounds):
                    for tr in trainers:
                        res = run_worker(sys.executable, "train_worker.py", ["--trainer", tr, *common],
                                         threads=n_threads)
                        runs[tr].append(res)
                        log.info("realrate T=%d threads=%d round %d %s: %s s/epoch", T, n_threads, k + 1, tr,
                                 res["epoch_s"])
                row = {"T": T, "threads": n_threads, **workload,
                       "load_average_1min": [load_before, os.getloadavg()[0]]}     # before / after the row
                for tr in trainers:
                    row[tr] = {"epoch_s": float(np.median([np.median(r["epoch_s"]) for r in runs[tr]])),
                               "epoch_cpu_s": float(np.median([np.median(r["epoch_cpu_s"]) for r in runs[tr]])),
                               "training_rss_bytes": int(np.median([r["peak_rss_bytes"] - r["rss_before_bytes"]
                                                                    for r in runs[tr]])),
                               "peak_rss_bytes": int(np.median([r["peak_rss_bytes"] for r in runs[tr]])),
                               "hidden_firing": runs[tr][-1]["hidden_firing"],
                               "train_accuracy": runs[tr][-1]["train_accuracy"],
                               "runs_epoch_s": [r["epoch_s"] for r in runs[tr]]}
                row["gpusnn_over_spikingjelly_time"] = float(np.median(
                    [np.median(a["epoch_s"]) / np.median(b["epoch_s"]) for a, b in zip(runs["gpusnn"],
                                                                                       runs["spikingjelly"])]))
                row["gpusnn_over_spikingjelly_cpu"] = float(np.median(
                    [np.median(a["epoch_cpu_s"]) / np.median(b["epoch_cpu_s"]) for a, b in zip(runs["gpusnn"],
                                                                                               runs["spikingjelly"])]))
                table.append(row)
    return {"workload": {"widths": [2048, 500, 11], "batch": 32, "samples": samples, "rate": args.rate,
                         "generator": "benchmarks/workloads.py realrate_spikes (seed 0)", "gpusnn_init_scale":
                         args.init_scale, "gpusnn_lr": args.lr, "backend": args.backend, "rounds": rounds,
                         "peers": "SpikingJelly surrogate-gradient BPTT (ATan), Adam lr 5e-4, count input as float"},
            "rows": table}


def density_suite(args) -> dict:
    from cpu_suites import density_suite as run
    densities = (0.001, 0.01, 0.05, 0.2, 0.5) if args.quick else \
        (0.001, 0.005, 0.01, 0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 0.5)
    return run(densities, repeats=3 if args.quick else 5, threads=(1, 2))


def scaling_suite(args) -> dict:
    from cpu_suites import scaling_suite as run
    return run(repeats=3 if args.quick else 7, quick=args.quick, backend=args.backend, threads=args.threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes and one round (a smoke run)")
    p.add_argument("--only", nargs="+", choices=SUITES, metavar="NAME", help=f"suites to run: {', '.join(SUITES)}")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory of the JSON results (default benchmarks/results)")
    p.add_argument("--backend", default="numpy", choices=("numpy", "cuda"),
                   help="gpusnn backend; cuda also puts the peers on the GPU (SpikingJelly's CuPy backend)")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per measurement, alternating (default 3)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS / OpenMP / torch threads of every training process (default 1: on a shared 2-core "
                        "machine, 2 spinning OpenMP threads per process slow torch down by 10-40x)")
    p.add_argument("--rate", type=float, default=8.0, help="realrate: events per input line per step (default 8)")
    p.add_argument("--init-scale", type=float, default=0.03,
                   help="realrate: gpusnn's network.init_scale, set from the input drive so that the hidden layer "
                        "fires without saturating (default 0.03)")
    p.add_argument("--lr", type=float, default=3e-4,
                   help="realrate: gpusnn's optim.lr (default 3e-4: the gradient grows with the counts; at the "
                        "default 5e-3 the hidden layer splits into silent and saturated neurons and nothing is learnt)")
    p.add_argument("--tta-real", metavar="DIR", help="tta: the real-size gesture set (gpusnn data synth DIR --size "
                                                     "real); omitted: mnist5k and the bundled gestures only")
    p.add_argument("--tta-epochs", type=int, default=10, help="tta: epoch cap on mnist5k and the bundled gestures")
    p.add_argument("--tta-seeds", type=int, default=3, help="tta: seeds on mnist5k and the bundled gestures")
    p.add_argument("--tta-real-epochs", type=int, default=5, help="tta: epoch cap on the real-size set")
    p.add_argument("--tta-real-seeds", type=int, default=1, help="tta: seeds on the real-size set")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    suites = {"reader": reader_suite, "training": training_suite, "realrate": realrate_suite,
              "density": density_suite, "scaling": scaling_suite, "tta": tta_suite}
    for name in args.only or SUITES:
        if args.backend == "cuda" and name == "density":
            log.info("density: the numpy backend's event / dense modes are a CPU comparison; skipped on cuda")
            continue
        result = {"suite": name, "quick": args.quick, "machine": machine(), **suites[name](args)}
        suffix = "" if args.backend == "numpy" else f"-{args.backend}"
        log.info("wrote %s", write_result(name + suffix + ("-quick" if args.quick else ""), result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
