"""cuda against emulated on one real-size training batch: the same weights, input and labels
through training.train_batch on both kernel backends, then the results compared.

Checks (the tolerances of tests/test_gpu_backend.py, for the same reasons): spikes per layer
equal (the forward adds in the reference's float order: no FMA, no atomics); weights after the
update within 1e-5 of the weight scale (alpha = 1; gradients differ by float32 summation
order); loss within 1e-3 relative; predictions equal (they come from the forward pass).

usage: python benchmarks/gpu_agree.py --out FILE [--widths 2048,500,11] [--steps 20]
       [--batch-size 32] [--density 0.05] [--backends cuda,emulated]
Exit status 0 when every check holds, 1 otherwise; FILE (JSON) holds the differences.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.config import RunConfig
from gpusnn.profiling import random_spikes


def one_batch(name: str, cfg: RunConfig, spikes, labels) -> dict:
    """Host results of one train_batch on backend name from the initial weights of cfg."""
    backend = get_backend(name)
    state = training.new_state(cfg, backend)
    loss, pred, layer_spikes = training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes), labels)
    return {"loss": loss, "pred": pred, "spikes": layer_spikes,
            "weights": [np.asarray(backend.asnumpy(W)) for W in state.weights]}


def compare(a: dict, b: dict) -> dict:
    """Differences of b against a and whether each is within tolerance."""
    wdiff = [float(np.abs(x - y).max() / np.abs(x).max()) for x, y in zip(a["weights"], b["weights"])]
    loss_rel = float(abs(a["loss"].mean() - b["loss"].mean()) / abs(a["loss"].mean()))
    mismatches = int((a["pred"] != b["pred"]).sum())
    return {"spikes_per_layer": [a["spikes"], b["spikes"]], "spikes_equal": a["spikes"] == b["spikes"],
            "weight_diff_over_scale": wdiff, "weights_ok": max(wdiff) <= 1e-5,
            "loss_rel_diff": loss_rel, "loss_ok": loss_rel <= 1e-3,
            "prediction_mismatches": mismatches, "predictions_ok": mismatches == 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--widths", default="2048,500,11")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--backends", default="cuda,emulated", help="first is compared against the second")
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    cfg = RunConfig().replace(network={"widths": widths, "n_steps": args.steps},
                              train={"batch_size": args.batch_size}, optim={"alpha": 1.0})
    spikes = random_spikes(args.batch_size, args.steps, widths[0], args.density, seed=11)
    labels = np.random.default_rng(12).integers(0, widths[-1], args.batch_size)
    first, second = args.backends.split(",")
    res = compare(one_batch(second, cfg, spikes, labels), one_batch(first, cfg, spikes, labels))
    res["ok"] = bool(res["spikes_equal"] and res["weights_ok"] and res["loss_ok"] and res["predictions_ok"])
    res["workload"] = vars(args) | {"widths": widths, "input_spikes": spikes.nnz}
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps({k: v for k, v in res.items() if k != "workload"}))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
