"""Issue 12 item 5: hidden-layer activity (saturated and silent neurons) at init and after one
epoch, with gpusnn train's defaults and a chosen encoding, on a gesture dataset.

A hidden neuron is saturated on a sample when it fires on every step (its surrogate gate is 0,
so it learns nothing) and silent when it never fires. Both are measured on a fixed probe of
the first PROBE training samples, before training and after one epoch (numpy backend).

    python benchmarks/item5_activity.py --data synth-gestures|DIR [--encoding count|binary|rate] [--out F]

Prints (or writes) one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine

PROBE = 64


def activity(backend, state, cfg, probe) -> dict:
    """Saturated / silent fractions and mean firing rate of the first hidden layer on probe."""
    recs = backend.forward(state.weights, probe, cfg.network.theta)
    hidden = np.asarray(recs[0].counts)                    # [B, n_hidden] spikes over the window
    T = cfg.network.n_steps
    return {"saturated": float((hidden >= T).mean()), "silent": float((hidden == 0).mean()),
            "mean_rate": float(hidden.mean() / T)}


def measure(data_name: str, encoding: str) -> dict:
    from gpusnn import training, workflow
    from gpusnn.backends import get_backend
    from gpusnn.config import RunConfig

    cfg = RunConfig().replace(train={"backend": "numpy", "epochs": 1, "data": data_name, "encoding": encoding})
    data = workflow.load_for(cfg, progress=False)
    cfg = workflow.with_data_widths(cfg, (500,), data.train.n_inputs, data.n_classes)
    cfg = training.with_input_drive(cfg, data.train)          # as `gpusnn train` does
    backend = get_backend("numpy")
    state = training.new_state(cfg, backend)
    probe = data.train.select(np.arange(min(PROBE, data.train.n_samples)))
    out = {"data": data_name, "encoding": encoding, "theta": cfg.network.theta, "probe_samples": probe.n_samples,
           "input_spikes_per_sample_step": probe.n_spikes() / (probe.n_samples * probe.n_steps),
           "init": activity(backend, state, cfg, probe)}
    t0 = time.perf_counter()
    metrics = training.train_epoch(backend, state, cfg, data, progress=False)
    out["epoch_s"] = time.perf_counter() - t0
    out["train_accuracy_epoch1"] = metrics["train_accuracy"]
    out["after_epoch1"] = activity(backend, state, cfg, probe)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--encoding", default="count", choices=("count", "binary", "rate"))
    ap.add_argument("--out")
    a = ap.parse_args()
    res = {"machine": machine(), **measure(a.data, a.encoding)}
    text = json.dumps(res, indent=1)
    if a.out:
        Path(a.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
