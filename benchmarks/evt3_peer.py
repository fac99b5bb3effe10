"""EVT 3.0 reader against expelliarmus on a real recording (a check, not a test: the only real
sample found, expelliarmus' tests/sample-files/evt3_sample.raw, is GPL-2.0 and not shipped).

Counts where read_evt3 and expelliarmus agree: events, x / y / polarity event for event, and
the timestamps (expelliarmus adds 4,096 us at every TIME_LOW smaller than the previous one,
so its times may run ahead by multiples of 4,096 us; ours follow Prophesee's document).

usage: PYTHONPATH=. python benchmarks/evt3_peer.py FILE.raw [--out results/evt3-peer.json]
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from benchmarks.common import machine, write_result
from data_tools.evt3 import read_evt3


def compare(path: Path) -> dict:
    """Agreement counts of read_evt3 and expelliarmus on one file."""
    from expelliarmus import Wizard
    ours, _ = read_evt3(path)
    peer = Wizard(encoding="evt3").read(str(path))
    same = ours.size == peer.size
    dt = (peer["t"].astype(np.int64) - ours["t"]) if same else np.zeros(0, np.int64)
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "events_ours": int(ours.size), "events_expelliarmus": int(peer.size),
            "xy_p_equal": bool(same and np.array_equal(ours["x"], peer["x"]) and np.array_equal(ours["y"], peer["y"])
                               and np.array_equal(ours["p"], peer["p"].astype(bool))),
            "t_equal": int(np.count_nonzero(dt == 0)),
            "t_diff_multiple_of_4096": bool(same and np.all(dt % 4096 == 0)),
            "t_diff_max_us": int(dt.max()) if dt.size else None,
            "t_first_differing_event": int(np.argmax(dt != 0)) if np.any(dt != 0) else None,
            "ours_t_nondecreasing": bool(np.all(np.diff(ours["t"]) >= 0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--out", default="evt3-peer", help="result name under benchmarks/results (default evt3-peer)")
    args = ap.parse_args()
    result = {"machine": machine(), "check": compare(args.file)}
    print(write_result(args.out, result))


if __name__ == "__main__":
    main()
