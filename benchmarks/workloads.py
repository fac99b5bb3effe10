"""Inputs of the training benchmarks (shared by every trainer, generated from a seed).

- ``random``: binary input, each (sample, step, line) on with probability density, random
  labels (gpusnn.profiling.random_spikes): the cost workload of docs/benchmarking.md.
- ``realrate``: count input at the real DVS128 Gesture recordings' event rate, ~``rate``
  events per input line per step on average, on learnable data: each class has its own
  active region (``active`` of the lines, drawn per class) with lognormal line rates, each
  sample multiplies those by its own lognormal jitter, and the counts per (step, line) are
  Poisson. Lines outside the region are silent, as most pixels are while a hand moves, so
  the coalesced density is about ``active`` (nnz <= B x T x n_inputs); the labels follow
  the classes. Returned coalesced (SpikeTensor with counts), as count encoding gives it.
"""
from __future__ import annotations

import numpy as np

from data_tools.spikes import SpikeTensor
from gpusnn.profiling import random_spikes

WORKLOADS = ("random", "realrate")


def realrate_spikes(n_samples: int, n_steps: int, n_inputs: int, n_classes: int, seed: int, rate: float = 8.0,
                    active: float = 0.5) -> tuple[SpikeTensor, np.ndarray]:
    """(coalesced spikes S x T x n_inputs, labels int64 [S]) of the realrate workload."""
    rng = np.random.default_rng([seed, 7])
    labels = rng.integers(0, n_classes, n_samples)
    region = [np.flatnonzero(rng.random(n_inputs) < active) for _ in range(n_classes)]
    shape = [rng.lognormal(0.0, 0.5, r.size) for r in region]
    class_rate = [sh * (rate * n_inputs / sh.sum()) for sh in shape]     # mean `rate` over all lines
    lengths, ids, counts = [], [], []
    for lab in labels:                                                    # only the active lines are drawn
        lam = class_rate[lab] * rng.lognormal(0.0, 0.3, class_rate[lab].size)
        c = rng.poisson(lam, (n_steps, lam.size))
        t, k = np.nonzero(c)
        lengths.append(np.bincount(t, minlength=n_steps))
        ids.append(region[lab][k].astype(np.int32))
        counts.append(c[t, k].astype(np.int32))
    indptr = np.concatenate(([0], np.cumsum(np.concatenate(lengths)))).astype(np.int64)
    return SpikeTensor(indptr, np.concatenate(ids), n_samples, n_steps, n_inputs, np.concatenate(counts)), labels


def save(path, spikes: SpikeTensor, labels: np.ndarray) -> None:
    """Write a workload to an .npz file (so fresh worker processes need not regenerate it)."""
    np.savez(path, indptr=spikes.indptr, ids=spikes.ids, counts=spikes.entry_counts().astype(np.uint16),
             shape=np.array([spikes.n_samples, spikes.n_steps, spikes.n_inputs]), labels=labels,
             has_counts=np.array(spikes.counts is not None))


def load(path) -> tuple[SpikeTensor, np.ndarray]:
    """The (spikes, labels) written by save."""
    with np.load(path) as f:
        S, T, N = (int(v) for v in f["shape"])
        counts = f["counts"].astype(np.int32) if bool(f["has_counts"]) else None
        return SpikeTensor(f["indptr"], f["ids"], S, T, N, counts), f["labels"]


def make_workload(name: str, n_samples: int, n_steps: int, n_inputs: int, n_classes: int, seed: int,
                  density: float = 0.05, rate: float = 8.0) -> tuple[SpikeTensor, np.ndarray]:
    """(spikes, labels) of workload `name` (module docstring)."""
    if name == "random":
        spikes = random_spikes(n_samples, n_steps, n_inputs, density, seed)
        return spikes, np.random.default_rng([seed, 4]).integers(0, n_classes, n_samples)
    if name == "realrate":
        return realrate_spikes(n_samples, n_steps, n_inputs, n_classes, seed, rate)
    raise ValueError(f"unknown workload {name!r}; choose one of {WORKLOADS}")


# ----------------------------------------------------------------------------- encoded datasets (tta)

def save_dataset(path, data) -> None:
    """Write an EncodedDataset's train and test splits (spike tensors held in memory) and its
    class count to one .npz file, so that every trainer's worker trains on identical inputs."""
    arrays = {}
    for split, spikes, labels in (("train", data.train, data.train_labels), ("test", data.test, data.test_labels)):
        if spikes.n_spikes() and int(spikes.entry_counts().max()) > np.iinfo(np.uint16).max:
            raise ValueError(f"{path}: a {split} count exceeds uint16")
        arrays.update({f"{split}_indptr": spikes.indptr, f"{split}_ids": spikes.ids,
                       f"{split}_counts": spikes.entry_counts().astype(np.uint16),
                       f"{split}_shape": np.array([spikes.n_samples, spikes.n_steps, spikes.n_inputs]),
                       f"{split}_labels": labels, f"{split}_has_counts": np.array(spikes.counts is not None)})
    np.savez(path, n_classes=np.array(data.n_classes), name=np.array(data.name), **arrays)


def load_dataset(path) -> tuple[SpikeTensor, np.ndarray, SpikeTensor, np.ndarray, int]:
    """(train spikes, train labels, test spikes, test labels, n_classes) written by save_dataset."""
    with np.load(path) as f:
        out = []
        for split in ("train", "test"):
            S, T, N = (int(v) for v in f[f"{split}_shape"])
            counts = f[f"{split}_counts"].astype(np.int32) if bool(f[f"{split}_has_counts"]) else None
            out += [SpikeTensor(f[f"{split}_indptr"], f[f"{split}_ids"], S, T, N, counts), f[f"{split}_labels"]]
        return (*out, int(f["n_classes"]))
