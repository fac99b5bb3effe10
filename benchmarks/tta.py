"""The tta suite of benchmarks/run.py: wall time to a target test accuracy, every trainer, the
same encoded data.

Each dataset is loaded and encoded once as `gpusnn train` does with its defaults (train/test
split of the project, T = 20, the default encoding) and written to one .npz file
(workloads.save_dataset) that every trainer's fresh process loads, so all see identical
inputs (the peers as dense float counts). Each process trains epoch by epoch with its own
defaults, evaluates the test split after every epoch (timed apart, not counted) and stops at
the higher of two targets (or an epoch cap); seconds to a target sum the training epochs up
to the first epoch at that test accuracy.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import run_worker

log = logging.getLogger("benchmarks")

TRAINERS = ("gpusnn", "spikingjelly", "snntorch")
TARGETS = {"mnist5k": (0.85, 0.90), "synth-gestures": (0.80, 0.85), "real-size": (0.80, 0.85)}
ENCODE_SAMPLES = 64           # a store-backed split is encoded this many samples at a time
# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning made one
# snnTorch epoch with 2 threads 8-24x slower than with 1 (mnist5k 138 s vs 5.8 s; gestures 60 s
# vs 7.4 s with PASSIVE), which measures the machine, not the trainer.
OMP_WAIT_POLICY = "PASSIVE"


def encoded_dataset(source: str):
    """source encoded as gpusnn train's defaults do, with both splits held in memory."""
    from dataclasses import replace

    from data_tools.spikes import SpikeTensor, concatenate
    from gpusnn import workflow
    from gpusnn.config import RunConfig
    data = workflow.load_for(RunConfig().replace(train={"data": source}), progress=False)

    def in_memory(split):
        if isinstance(split, SpikeTensor):
            return split
        return concatenate([split.select(np.arange(a, min(a + ENCODE_SAMPLES, split.n_samples)))
                            for a in range(0, split.n_samples, ENCODE_SAMPLES)])
    return replace(data, train=in_memory(data.train), test=in_memory(data.test))


def summary(runs: list[dict]) -> dict:
    """Medians over the seeds of one (dataset, threads, trainer), per target. A run that never
    reached a target counts as infinitely slow, so that median is None ("not reached") when half
    or more of the runs did not reach it."""
    never = float("inf")
    finite = lambda v: None if v == never else float(v)
    per_target = {}
    for t in runs[0]["seconds_to_target"]:
        seconds = [never if r["seconds_to_target"][t] is None else r["seconds_to_target"][t] for r in runs]
        epochs = [never if r["epochs_to_target"][t] is None else r["epochs_to_target"][t] for r in runs]
        per_target[t] = {"reached": f"{sum(x != never for x in seconds)}/{len(runs)}",
                         "median_seconds": finite(np.median(seconds)), "median_epochs": finite(np.median(epochs))}
    fired = [r["hidden_firing"][-1] for r in runs if r["hidden_firing"] and r["hidden_firing"][-1]]
    return {"targets": per_target,
            "median_epoch_s": float(np.median([s for r in runs for s in r["train_s"]])),
            "median_eval_s": float(np.median([s for r in runs for s in r["eval_s"]])),
            "best_test_accuracy": [max(r["test_accuracy"]) for r in runs],
            "hidden_firing_last_epoch": {k: float(np.median([f[k] for f in fired])) for k in fired[0]}
            if fired else None,
            "gpusnn_theta": runs[0]["theta"], "runs": runs}


def tta_suite(args) -> dict:
    datasets = [("mnist5k", "mnist5k", args.tta_epochs, args.tta_seeds),
                ("synth-gestures", "synth-gestures", args.tta_epochs, args.tta_seeds)]
    if args.tta_real:
        datasets.append(("real-size", args.tta_real, args.tta_real_epochs, args.tta_real_seeds))
    if args.quick:
        datasets = [(n, s, 2, 1) for n, s, _, _ in datasets[:2]]
    old_policy = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = OMP_WAIT_POLICY        # inherited by every worker (run_worker)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [row for d in datasets for row in dataset_rows(args, *d, Path(tmp))]
    finally:
        if old_policy is None:
            del os.environ["OMP_WAIT_POLICY"]
        else:
            os.environ["OMP_WAIT_POLICY"] = old_policy
    return {"workload": {"hidden": 500, "batch": 32, "backend": args.backend, "omp_wait_policy": OMP_WAIT_POLICY,
                         "gpusnn": "its defaults (FO-STDGD, fractional update lr 5e-3, init_scale 1, theta 1 "
                                   "raised by network.drive_ref where the input drive exceeds it)",
                         "peers": "surrogate-gradient BPTT (ATan), Adam lr 5e-4, nonleaky IF / beta 1, "
                                  "cross-entropy on summed output spikes (benchmarks/peer_nets.py)",
                         "timing": "training epochs only; test evaluation after each epoch timed apart (eval_s)"},
            "rows": rows}


def dataset_rows(args, name: str, source: str, epochs: int, seeds: int, tmp: Path) -> list[dict]:
    """One row per thread count (1, 2) for one dataset: every trainer, seeds 0..seeds-1."""
    from workloads import save_dataset
    data = encoded_dataset(source)
    path = tmp / f"{name}.npz"
    save_dataset(path, data)
    info = {"dataset": name, "source": source, "n_train": data.train.n_samples, "n_test": data.test.n_samples,
            "steps": data.train.n_steps, "inputs": data.train.n_inputs, "encoding": data.meta.get("encoding"),
            "input_spikes_per_sample_step": data.train.n_spikes() / (data.train.n_samples * data.train.n_steps),
            "targets": list(TARGETS[name]), "max_epochs": epochs, "seeds": seeds}
    del data
    rows = []
    for n_threads in (1, 2):
        runs = {t: [] for t in TRAINERS}
        for seed in range(seeds):
            for tr in TRAINERS:         # alternate, so the machine's drift hits every trainer
                res = run_worker(sys.executable, "train_worker.py",
                                 ["--tta", str(path), "--trainer", tr, "--seed", str(seed), "--threads",
                                  str(n_threads), "--epochs", str(epochs), "--target", *map(str, TARGETS[name]),
                                  "--batch", "32", "--hidden", "500", "--backend", args.backend],
                                 threads=n_threads, timeout=3600)
                runs[tr].append(res)
                log.info("tta %s threads=%d seed %d %s: s to targets %s (test %s)", name, n_threads, seed, tr,
                         res["seconds_to_target"], [round(a, 3) for a in res["test_accuracy"]])
        rows.append({**info, "threads": n_threads, **{tr: summary(runs[tr]) for tr in TRAINERS}})
    return rows


def markdown(result: dict) -> str:
    """The table of a tta result (BENCHMARKS.md): per dataset, thread count and trainer, the
    median seconds (and epochs) to each target with how many seeds reached it, the median
    s/epoch, the best test accuracy per seed and the hidden firing of the last epoch."""
    header = ("| data | threads | trainer | to target 1 | to target 2 | s / epoch | best test % per seed | "
              "hidden silent / saturated / spikes per neuron-step |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]

    def reach(t: str, x: dict, cap: int) -> str:
        if x["median_seconds"] is None:
            return f"{100 * float(t):.0f} %: not reached in {cap} epochs ({x['reached']})"
        return f"{100 * float(t):.0f} %: {x['median_seconds']:.1f} s, {x['median_epochs']:g} ep ({x['reached']})"
    for row in result["rows"]:
        for tr in TRAINERS:
            s = row[tr]
            f = s["hidden_firing_last_epoch"]
            fired = f"{100 * f['silent']:.0f} % / {100 * f['saturated']:.1f} % / {f['spikes_per_neuron_step']:.3f}" \
                if f else "not recorded"
            cells = [reach(t, x, row["max_epochs"]) for t, x in s["targets"].items()]
            cells += [""] * (2 - len(cells))
            best = ", ".join(f"{100 * a:.1f}" for a in s["best_test_accuracy"])
            lines.append(f"| {row['dataset']} | {row['threads']} | {tr} | {' | '.join(cells)} | "
                         f"{s['median_epoch_s']:.2f} | {best} | {fired} |")
    return "\n".join(lines)

if __name__ == "__main__":
    import json
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
