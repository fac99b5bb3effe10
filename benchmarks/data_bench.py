"""Data-path benchmarks (issue 12): event-store options, conversion, per-batch training memory.

    python benchmarks/data_bench.py store-options --data DIR [--trials 4] [--repeats 20]
    python benchmarks/data_bench.py convert --data DIR --work WORKDIR [--repeats 3] [--workers 0 1 2]
                                            [--fraction F]
    python benchmarks/data_bench.py convert-bound --data DIR --work WORKDIR [--repeats 3]
    python benchmarks/data_bench.py epoch --data DIR --work WORKDIR [--fractions 0.125 0.25 0.5 1]
                                          [--batches 4]

DIR is a dataset in the original DVS128 Gesture layout, e.g. the real-size synthetic set of
`gpusnn data synth DIR --size real`; WORKDIR receives stores and fraction directories (kept out
of the repository; delete it afterwards). Results: benchmarks/results/data-<suite>.json with
the machine. Timings are medians over repeats; the machine (2 cores) was shared with other
jobs while these ran, which the JSON says.

store-options  compression (none / lzf / gzip 1, all with shuffle) x chunk size (events): bytes
               per event and write time of K trials, and time to read one random sample
               (median over repeats; the file is in the page cache: decompression, not disk)
convert        a whole conversion in a fresh process with 0 (parse and write in turn), 1 (parse
               thread) and 2 (parse processes, shared memory) workers: wall and CPU seconds,
               events/s (events in the AEDAT files per second to a finished store), peak RSS
               (parent and largest worker), the 1-minute load average before and after each run;
               the AEDAT files are read once first so that every run finds them in the page cache;
               --fraction 0.1667: a sixth of the trials (short runs, many repeats, the fastest run
               as the estimate for a free machine)
convert-bound  what the machine allows for the same bytes: the store's columns copied in memory,
               written to a raw file and appended to an event store (best of repeats), and the
               parse of every trial alone in one process
separability   (--data STORE) linear classifiers on per-sample input counts, mean position and
               event total, train users -> test users (the set must not be trivially separable)
epoch          per fraction of the trials (every k-th trial of each split, symlinked): convert,
               then K training batches read from the store in a fresh process: peak RSS, time
               per phase, how much the prefetch hides, the epoch time extrapolated from K batches
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import machine, run_worker, write_result  # noqa: E402

SHARED = "2-core VM shared with ~8 other agents' jobs while measured; figures are noisy, medians given"


def store_options(args) -> dict:
    from data_tools.event_store import EventStore, StoreWriter
    from data_tools.gesture_layout import read_trial, trial_list
    trials = [read_trial(args.data, n, tr) for n, tr in trial_list(args.data)[:args.trials]]
    n_events = sum(t.n_events for t in trials)
    rng = np.random.default_rng(0)
    rows = []
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for comp in (None, "lzf", "gzip"):
        for chunk in (1 << 14, 1 << 16, 1 << 18):
            path = work / f"opt-{comp}-{chunk}.h5"
            writes = []
            for _ in range(2):
                t0 = time.perf_counter()
                with StoreWriter(path, sensor_size=(128, 128, 2), counting_rule="rows", source="bench",
                                 compression=comp, chunk=chunk) as w:
                    for t in trials:
                        w.append(t)
                    w.finish()
                writes.append(time.perf_counter() - t0)
            reads = []
            with EventStore(path) as s:
                for i in rng.integers(0, len(s), args.repeats):
                    t0 = time.perf_counter()
                    s.sample(int(i))
                    reads.append(time.perf_counter() - t0)
                per_sample = s.n_events / len(s)
            rows.append({"compression": comp or "none", "chunk_events": chunk, "bytes": path.stat().st_size,
                         "bytes_per_event": path.stat().st_size / n_events,
                         "write_s": statistics.median(writes), "write_events_per_s": n_events / statistics.median(writes),
                         "read_sample_s": statistics.median(reads), "events_per_sample": per_sample})
            path.unlink()
            print(json.dumps(rows[-1]), file=sys.stderr)
    return {"trials": args.trials, "events": int(n_events), "samples": int(sum(len(t) for t in trials)),
            "repeats": args.repeats, "options": rows}


def _warm(data: str) -> dict:
    """Read every AEDAT file of data once, so that every run reads them from the page cache."""
    from data_tools.gesture_layout import trial_list
    t0, n = time.perf_counter(), 0
    for name, _ in trial_list(data):
        n += len((Path(data) / name).read_bytes())
    return {"bytes": n, "seconds": round(time.perf_counter() - t0, 2)}


def convert_suite(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = args.data
    if args.fraction < 1:                              # short runs: their fastest approaches a free machine
        data = str(fraction_dir(Path(args.data), work / f"fraction-{args.fraction:g}", args.fraction))
    warm = _warm(data)
    runs = {}
    for r in range(args.repeats):                      # alternate the modes: drift hits all
        for workers in args.workers:
            mode = f"workers={workers}"
            dst = work / f"convert-{workers}.h5"
            load = os.getloadavg()[0]
            res = run_worker(sys.executable, "data_worker.py", ["convert", data, str(dst), "--workers", str(workers)],
                             timeout=3600)
            res["load_before"], res["load_after"] = round(load, 2), round(os.getloadavg()[0], 2)
            runs.setdefault(mode, []).append(res)
            print(json.dumps(res), file=sys.stderr)
            dst.unlink()
    keys = ("seconds", "cpu_seconds", "events_per_s", "file_events_per_s", "file_events_per_cpu_s", "peak_rss_bytes",
            "peak_rss_children_bytes", "load_before", "load_after")
    med = {m: {k: statistics.median(r[k] for r in rs) for k in keys} for m, rs in runs.items()}
    fastest = {m: min(r["seconds"] for r in rs) for m, rs in runs.items()}
    return {"data": data, "fraction": args.fraction, "repeats": args.repeats, "page_cache_warmup": warm,
            "median": med, "fastest_seconds": fastest, "runs": runs}


def convert_bound(args) -> dict:
    """What the machine allows, for the bytes a conversion of args.data moves: one trial's store
    columns (9 bytes per window event) copied / written enough times to make the whole store
    (plain numpy copy, raw file write, the event store's appends), and the parse alone
    (read_trial of every trial in one process, nothing written)."""
    from data_tools.event_store import StoreWriter
    from data_tools.gesture_layout import read_trial, trial_list
    trials = trial_list(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    warm = _warm(args.data)
    load = [round(os.getloadavg()[0], 2)]
    t0, c0 = time.perf_counter(), time.process_time()
    n_window = sum(read_trial(args.data, n, tr).n_events for n, tr in trials)
    parse = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    load.append(round(os.getloadavg()[0], 2))
    part = read_trial(args.data, *trials[0])
    reps = max(1, round(n_window / part.n_events))
    n_bytes = reps * sum(c.nbytes for c in part.columns.values())
    out = {k: np.empty_like(c) for k, c in part.columns.items()}

    def timed(fn) -> dict:
        best = None
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            r = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
            best = r if best is None or r["seconds"] < best["seconds"] else best
            load.append(round(os.getloadavg()[0], 2))
        return {**best, "bytes_per_s": n_bytes / best["seconds"], "window_events_per_s": reps * part.n_events / best["seconds"]}

    def copy() -> None:
        for _ in range(reps):
            for k, c in part.columns.items():
                np.copyto(out[k], c)

    def raw() -> None:
        with open(work / "bound.bin", "wb") as f:
            for _ in range(reps):
                for c in part.columns.values():
                    c.tofile(f)
        (work / "bound.bin").unlink()

    def store() -> None:
        with StoreWriter(work / "bound.h5", sensor_size=part.sensor_size, counting_rule="rows", source="bound") as w:
            for _ in range(reps):
                w.append(part)
            w.finish()
        (work / "bound.h5").unlink()

    res = {"numpy_copy": timed(copy), "raw_file_write": timed(raw), "store_append": timed(store)}
    parse["window_events_per_s"] = n_window / parse["seconds"]
    return {"data": args.data, "page_cache_warmup": warm, "window_events": int(n_window), "store_bytes": int(n_bytes),
            "trial_events": part.n_events, "reps": reps, "parse_only_one_process": parse, **res,
            "best_of": args.repeats, "load_avg_1min": load}


def fraction_dir(src: Path, dst: Path, fraction: float) -> Path:
    """Every k-th trial (k = round(1/fraction)) of each split of src, symlinked into dst."""
    from data_tools.gesture_layout import SPLIT_FILES, read_split
    if fraction >= 1:
        return src
    step = round(1 / fraction)
    dst.mkdir(parents=True, exist_ok=True)
    for split in SPLIT_FILES.values():
        names = read_split(src / split)[::step]
        for n in names:
            for f in (n, n[:-len(".aedat")] + "_labels.csv"):
                if not (dst / f).exists():
                    (dst / f).symlink_to((src / f).resolve())
        (dst / split).write_text("".join(n + "\n" for n in names))
    return dst


def epoch_suite(args) -> dict:
    from data_tools.convert import convert
    work = Path(args.work)
    out = []
    for fr in args.fractions:
        d = fraction_dir(Path(args.data), work / f"fraction-{fr:g}", fr)
        store = work / f"fraction-{fr:g}.h5"
        if not store.exists():
            conv = convert(d, store, progress=False)
            print(json.dumps(conv), file=sys.stderr)
        res = run_worker(sys.executable, "data_worker.py", ["epoch", str(store), "--batches", str(args.batches)],
                         timeout=3600)
        res["fraction"] = fr
        out.append(res)
        print(json.dumps(res), file=sys.stderr)
    return {"data": args.data, "batches": args.batches, "runs": out}


def separability(args) -> dict:
    """Linear baselines on per-sample input counts (2,048 inputs, downsample 4) of a store, train
    users -> test users: a set a linear classifier separates perfectly tells nothing."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from data_tools.encode import input_ids
    from data_tools.event_store import EventStore
    with EventStore(args.data) as st:
        meta = st.metadata()
        index = np.arange(len(st))[::args.every]
        X = np.zeros((index.size, 2048))
        xy = np.zeros((index.size, 2))
        n = np.zeros(index.size)
        for k, i in enumerate(index):
            ev = st.sample(int(i))
            ids, inside = input_ids(ev["x"], ev["y"], ev["p"], st.sensor_size, 4)
            X[k] = np.bincount(ids[inside], minlength=2048)
            xy[k] = ev["x"].mean(), ev["y"].mean()
            n[k] = ev.size
    y, tr = meta.labels[index], meta.train[index]
    res = {}
    feats = {"counts": X, "log_counts": np.log1p(X), "mean_xy": xy, "total_events": np.log(n)[:, None]}
    for name, F in feats.items():
        for cname, clf in (("logreg_C0.01", LogisticRegression(max_iter=3000, C=0.01)),
                           ("std_logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))),
                           ("nearest_centroid", NearestCentroid())):
            clf.fit(F[tr], y[tr])
            res[f"{name}/{cname}"] = {"train": float(clf.score(F[tr], y[tr])), "test": float(clf.score(F[~tr], y[~tr]))}
            print(name, cname, res[f"{name}/{cname}"], file=sys.stderr)
    return {"store": args.data, "every": args.every, "n_train": int(tr.sum()), "n_test": int((~tr).sum()),
            "accuracy": res}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=("store-options", "convert", "convert-bound", "epoch", "separability"))
    p.add_argument("--data", required=True)
    p.add_argument("--work", default="/tmp/gpusnn-data-bench")
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    p.add_argument("--fraction", type=float, default=1.0,
                   help="convert: every round(1/F)-th trial of each split (symlinked under --work)")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--tag", help="result file data-<suite>-<tag>.json (default data-<suite>.json)")
    p.add_argument("--every", type=int, default=1, help="separability: every k-th sample of the store")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="convert: parse workers to compare")
    args = p.parse_args()
    fn = {"store-options": store_options, "convert": convert_suite, "convert-bound": convert_bound, "epoch": epoch_suite,
          "separability": separability}[args.suite]
    t0 = time.perf_counter()
    result = {"suite": f"data-{args.suite}", "machine": machine(), "note": SHARED, **fn(args),
              "bench_seconds": round(time.perf_counter() - t0, 1)}
    print(write_result(f"data-{args.suite}" + (f"-{args.tag}" if args.tag else ""), result))


if __name__ == "__main__":
    main()
