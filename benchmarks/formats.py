"""Read throughput of the chip-aware AEDAT 2.0 decoder (DAVIS346 with APS / IMU records mixed
in) and of the EVT 3.0 reader, against expelliarmus on the same EVT 3.0 file.

    PYTHONPATH=. python benchmarks/formats.py [--events N] [--rounds R]

Files are generated in a temporary directory (never committed): AEDAT 2.0 written by
data_tools.aedat2.write_aedat2 plus 10 % APS and 1 % IMU records; EVT 3.0 written by
expelliarmus' own encoder from random events at increasing times. Medians over R in-process
reads (after one warm-up read); the result goes to benchmarks/results/formats.json.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine, write_result  # noqa: E402
from data_tools.aedat2 import decode_aedat2, write_aedat2  # noqa: E402
from data_tools.events import make_events  # noqa: E402
from data_tools.evt3 import read_evt3  # noqa: E402

log = logging.getLogger("formats")


def timed(fn, rounds: int) -> dict:
    fn()
    runs = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "runs_s": runs}


def davis_file(path: Path, n: int, rng) -> int:
    """A DAVIS346 AEDAT 2.0 file of n DVS events with n // 10 APS and n // 100 IMU records
    appended (records of other kinds are what the decoder must skip); returns the record count."""
    ev = make_events(rng.integers(0, 346, n), rng.integers(0, 260, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 10**8, n)))
    write_aedat2(path, ev, sensor="davis346")
    extra = np.empty(n // 10 + n // 100, np.dtype([("a", ">u4"), ("t", ">i4")]))
    extra["a"] = np.where(np.arange(extra.size) < n // 10, 0x80000000, 0x80000C00)
    extra["t"] = 10**8
    with path.open("ab") as f:
        f.write(extra.tobytes())
    return n + extra.size


def evt3_file(path: Path, n: int, rng) -> None:
    from expelliarmus import Wizard
    arr = np.zeros(n, np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")]))
    arr["t"] = np.sort(rng.integers(0, 10**7, n))
    arr["x"] = rng.integers(0, 1280, n)
    arr["y"] = rng.integers(0, 720, n)
    arr["p"] = rng.integers(0, 2, n)
    Wizard(encoding="evt3").save(str(path), arr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = np.random.default_rng(0)
    out = {"suite": "formats", "machine": machine(), "workload": {"events": args.events, "rounds": args.rounds}}
    with tempfile.TemporaryDirectory() as d:
        a2 = Path(d) / "davis346.aedat"
        records = davis_file(a2, args.events, rng)
        res = timed(lambda: decode_aedat2(a2), args.rounds)
        out["aedat2_davis346"] = {**res, "records": records, "file_bytes": a2.stat().st_size,
                                  "records_per_s": records / res["median_s"]}
        e3 = Path(d) / "rec.raw"
        evt3_file(e3, args.events, rng)
        n = read_evt3(e3)[0].size
        from expelliarmus import Wizard
        ours = timed(lambda: read_evt3(e3), args.rounds)
        peer = timed(lambda: Wizard(encoding="evt3").read(str(e3)), args.rounds)
        out["evt3"] = {"events": n, "file_bytes": e3.stat().st_size,
                       "gpusnn": {**ours, "events_per_s": n / ours["median_s"]},
                       "expelliarmus": {**peer, "events_per_s": n / peer["median_s"]}}
    for k in ("aedat2_davis346", "evt3"):
        log.info("%s: %s", k, {kk: v for kk, v in out[k].items() if kk != "runs_s"})
    log.info("-> %s", write_result("formats", out))


if __name__ == "__main__":
    main()
