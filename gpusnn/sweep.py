"""Grid sweeps: alpha x structure x seed x dataset at one fixed set of other run options.

One *cell* is one training run, ``gpusnn train`` with that dataset, hidden widths, alpha
and seed (the seed drives the spike encoding, the initial weights and the shuffling, as in
train). Cells run serially or in a pool of worker processes; every worker encodes each
dataset once per (T, seed) and reuses it for all its cells.

The results file (JSON, written atomically after every finished cell, so a killed sweep
resumes where it stopped) is

    {"format": "gpusnn-sweep", "version": 1, "grid": {...the latest request...},
     "cells": [{"key", "data", "widths", "alpha", "seed", "epochs", "lr", "gradient", "eps",
                "factor_clip", "test_accuracy", "train_accuracy", "test_loss", "seconds",
                "history", "status", ...}, ...]}

A cell's key names everything that defines it (see ``cell_key``), so cells of different
requests can share one file and a finished cell is never run twice.

Cells run on any concurrent.futures executor (gpusnn.executors: local processes, a Dask
cluster, MPI ranks). For job arrays, a Shard i/n runs every n-th cell into its own file and
``merge_results`` joins the shard files; a cell's result does not depend on where it ran.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from concurrent.futures import as_completed
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from data_tools.datasets import load
from data_tools.progress import progress_bar
from data_tools.loader import take
from data_tools.spikes import EncodedDataset
from gpusnn import executors, training
from gpusnn.config import RunConfig, TrainConfig
from gpusnn.errors import ConfigError, DataFormatError
from gpusnn.workflow import make_backend, with_data_widths

log = logging.getLogger(__name__)

FORMAT = "gpusnn-sweep"
VERSION = 1
TIMING_FIELDS = ("seconds", "eval_seconds")  # in cells and their history: the only fields that vary between runs


@dataclass(frozen=True)
class DataOptions:
    """How each dataset is cut for a sweep.

    validation: hold out the last N training samples and evaluate on them instead of the
    test split (for tuning without touching the test set); limit_train / limit_test: keep
    only the first N samples of each split (after the validation cut; None = all).
    """

    validation: int | None = None
    limit_train: int | None = None
    limit_test: int | None = None


@dataclass(frozen=True)
class Grid:
    """A sweep request: the axes, the data cut and the other run options (shared by all cells)."""

    data: tuple[str, ...]
    hidden_sets: tuple[tuple[int, ...], ...]
    alphas: tuple[float, ...]
    seeds: tuple[int, ...]
    base: RunConfig
    cut: DataOptions = DataOptions()

    def to_dict(self) -> dict:
        return {"data": list(self.data), "hidden_sets": [list(h) for h in self.hidden_sets],
                "alphas": list(self.alphas), "seeds": list(self.seeds), "cut": vars(self.cut).copy(),
                "config": self.base.to_dict()}

    def jobs(self) -> list[dict]:
        """One job (a picklable dict) per cell, datasets outermost, seeds innermost."""
        return [{"key": cell_key(self, d, h, a, s), "data": d, "hidden": list(h), "alpha": a, "seed": s,
                 "config": self.base.to_dict(), "cut": vars(self.cut).copy()}
                for d in self.data for h in self.hidden_sets for a in self.alphas for s in self.seeds]


def _shared_digest(grid: Grid) -> str:
    """8 hex digits identifying the options every cell of grid shares but its key does not spell out."""
    d = grid.base.to_dict()
    for section, name in (("optim", "alpha"), ("train", "seed"), ("train", "data"), ("network", "widths")):
        d[section].pop(name)
    blob = json.dumps({"config": d, "cut": vars(grid.cut)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def cell_key(grid: Grid, data: str, hidden, alpha: float, seed: int) -> str:
    """E.g. 'mnist5k|h500|a1.5|s0|e1|timing|lr0.005|9f2c01ab' (the last part: _shared_digest)."""
    b = grid.base
    return "|".join([data, "h" + "-".join(map(str, hidden)), f"a{alpha:g}", f"s{seed}",
                     f"e{b.train.epochs}", b.method.gradient, f"lr{b.optim.lr:g}", _shared_digest(grid)])


# --------------------------------------------------------------------------- data

def cut_dataset(data: EncodedDataset, cut: DataOptions) -> EncodedDataset:
    """data with the validation hold-out and the sample limits of cut applied."""
    train, ytr, test, yte, name = data.train, data.train_labels, data.test, data.test_labels, data.name
    if cut.validation:
        n = train.n_samples - cut.validation
        if n <= 0:
            raise ConfigError(f"--validation {cut.validation} leaves no training samples of {data.name}")
        test, yte = take(train, np.arange(n, train.n_samples)), ytr[n:]
        train, ytr = take(train, np.arange(n)), ytr[:n]
        name = f"{name}[validation {cut.validation}]"
    if cut.limit_train is not None and cut.limit_train < train.n_samples:
        train, ytr = take(train, np.arange(cut.limit_train)), ytr[:cut.limit_train]
    if cut.limit_test is not None and cut.limit_test < test.n_samples:
        test, yte = take(test, np.arange(cut.limit_test)), yte[:cut.limit_test]
    if train is data.train and test is data.test:
        return data
    ident = hashlib.sha256(f"{data.identity}|{vars(cut)}".encode()).hexdigest()[:16]
    return replace(data, name=name, train=train, train_labels=ytr, test=test, test_labels=yte,
                   identity=ident, meta={**data.meta, "cut": vars(cut).copy()})


@lru_cache(maxsize=None)
def _encoded(name: str, n_steps: int, seed: int, encoding: tuple) -> EncodedDataset:
    downsample, binning, mode = encoding
    return load(name, n_steps, seed, progress=False, downsample=downsample, binning=binning,
                         encoding=mode)


@lru_cache(maxsize=None)
def cached_data(name: str, n_steps: int, seed: int, cut: DataOptions,
                encoding: tuple = (TrainConfig.downsample, TrainConfig.binning, TrainConfig.encoding)) -> EncodedDataset:
    """The dataset as data_tools.datasets.load gives it, cut; encoded once per process and
    (name, T, seed, (downsample, binning, encoding))."""
    return cut_dataset(_encoded(name, n_steps, seed, encoding), cut)


# --------------------------------------------------------------------------- cells

@lru_cache(maxsize=None)
def code_digest() -> str:
    """12 hex digits of the gpusnn sources (*.py) this process runs: cells computed by different
    code (an edited working tree, not only another commit) carry different digests."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def run_cell(job: dict) -> dict:
    """Train one cell (a dict from Grid.jobs) and return its result record (see module doc)."""
    t0 = time.perf_counter()
    base = RunConfig.from_dict(job["config"])
    cfg = base.replace(optim={"alpha": job["alpha"]}, train={"seed": job["seed"], "data": job["data"]})
    t = cfg.train
    data = cached_data(job["data"], cfg.network.n_steps, job["seed"], DataOptions(**job["cut"]),
                       (t.downsample, t.binning, t.encoding))
    cfg = training.with_input_drive(with_data_widths(cfg, job["hidden"], data.train.n_inputs, data.n_classes),
                                    data.train)
    backend = make_backend(cfg.train.backend)
    state = training.fit(backend, training.new_state(cfg, backend), cfg, data, progress=False)
    weights = [np.asarray(backend.asnumpy(W)) for W in state.weights]
    last = state.history[-1] if state.history else {}
    w_max = cfg.optim.w_max
    return {
        "key": job["key"], "data": job["data"], "widths": list(cfg.network.widths), "alpha": job["alpha"],
        "seed": job["seed"], "epochs": cfg.train.epochs, "lr": cfg.optim.lr, "gradient": cfg.method.gradient,
        "eps": cfg.optim.eps, "factor_clip": cfg.optim.factor_clip, "w_max": w_max,
        "backend": backend.name, "code": code_digest(), "n_train": data.train.n_samples, "n_test": data.test.n_samples,
        "evaluated_on": "validation" if job["cut"]["validation"] else "test",
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "test_loss": last.get("test_loss"),
        "weights_finite": bool(all(np.isfinite(W).all() for W in weights)),
        # share of weights pinned at the +-w_max clamp, per layer
        "at_clamp": [float((np.abs(W) >= w_max * (1 - 1e-6)).mean()) if w_max else 0.0 for W in weights],
        "seconds": time.perf_counter() - t0, "history": state.history, "status": "done",
    }


# --------------------------------------------------------------------------- results file

def load_results(path: Path) -> dict:
    """The results file at path, or an empty one when there is none yet."""
    if not path.exists():
        return {"format": FORMAT, "version": VERSION, "grid": None, "cells": []}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataFormatError(f"{path}: cannot read sweep results: {e}") from e
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise DataFormatError(f"{path}: not a {FORMAT} v{VERSION} results file "
                              f"(format {doc.get('format')!r}, version {doc.get('version')!r})")
    return doc


def write_results(path: Path, doc: dict) -> None:
    """Write doc to path atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-able: {type(x).__name__}")


@dataclass(frozen=True)
class Shard:
    """Shard index of count: the cells index, index + count, index + 2 count, ... of a grid (0-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """'2/8' -> Shard(2, 8) (e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)."""
        i, _, n = text.partition("/")
        if not (i.isdigit() and n.isdigit()) or not int(i) < int(n):
            raise ConfigError(f"--shard must be I/N with 0 <= I < N, e.g. 0/4, got {text!r}")
        return cls(int(i), int(n))

    def select(self, jobs: list) -> list:
        return jobs[self.index::self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def run_sweep(grid: Grid, results_path: str | os.PathLike, executor: str = "local:1", shard: Shard | None = None,
              progress: bool = True) -> dict:
    """Run every cell of grid (of its shard) not already done in the results file; returns the file's content.

    Finished cells are written to the file one by one; cells whose key is already there
    with status "done" are skipped. executor: where the cells run (gpusnn.executors spec).
    """
    path = Path(results_path)
    spec = executors.parse(executor)
    doc = load_results(path)
    doc["grid"] = grid.to_dict()
    if shard is not None:
        doc["shard"] = str(shard)
    mine = grid.jobs() if shard is None else shard.select(grid.jobs())
    done = {c["key"] for c in doc["cells"] if c.get("status") == "done"}
    todo = [j for j in mine if j["key"] not in done]
    bar = progress_bar(total=len(mine), initial=len(mine) - len(todo), enabled=progress,
                       desc="sweep", unit="cell")

    def finish(cell: dict) -> None:
        doc["cells"] = [c for c in doc["cells"] if c["key"] != cell["key"]] + [cell]
        write_results(path, doc)
        bar.update(1)
        bar.set_postfix(last=f"{cell['key'].rsplit('|', 4)[0]} {cell['test_accuracy']:.3f}")

    write_results(path, doc)
    with executors.open_executor(spec) as pool:
        if pool is None:
            for job in todo:
                finish(run_cell(job))
        else:
            for fut in as_completed([pool.submit(run_cell, job) for job in todo]):
                finish(fut.result())
    bar.close()
    return doc


def without_timing(cell: dict) -> dict:
    """cell without its wall-clock fields (TIMING_FIELDS, also in its history): what a rerun reproduces."""
    out = {k: v for k, v in cell.items() if k not in TIMING_FIELDS}
    out["history"] = [{k: v for k, v in h.items() if k not in TIMING_FIELDS} for h in cell.get("history", [])]
    return out


def merge_results(paths: list[str | os.PathLike]) -> dict:
    """One results document holding the cells of the files at paths (e.g. the shards of a job array).

    A key in several files keeps its first finished cell (a finished cell that disagrees with it,
    beyond timing, is logged as a warning); grid is the files' common request, or None when they differ.
    """
    if not paths:
        raise ConfigError("sweep merge needs at least one results file")
    docs = []
    for p in paths:
        if not Path(p).exists():
            raise DataFormatError(f"{p}: no such sweep results file")
        docs.append(load_results(Path(p)))
    cells: dict[str, dict] = {}
    for p, doc in zip(paths, docs):
        for c in doc["cells"]:
            old = cells.get(c["key"])
            if old is None or (old.get("status") != "done" and c.get("status") == "done"):
                cells[c["key"]] = c
            elif c.get("status") == "done" and without_timing(c) != without_timing(old):
                log.warning("%s: cell %s differs from the one already merged; keeping the first", p, c["key"])
    grids = [json.dumps(d["grid"], sort_keys=True) for d in docs]
    grid = docs[0]["grid"] if len(set(grids)) == 1 else None
    if grid is None:
        log.warning("the files hold different sweep requests; the merged file records none")
    return {"format": FORMAT, "version": VERSION, "grid": grid, "cells": [cells[k] for k in sorted(cells)]}


# --------------------------------------------------------------------------- summaries

GROUP_FIELDS = ("data", "widths", "epochs", "gradient", "lr", "eps", "factor_clip", "evaluated_on")


def group_name(cell: dict) -> str:
    """'mnist5k 784-500-10, 1 epoch(s), timing' (plus the options that differ from the defaults)."""
    d = RunConfig()
    extra = [f"{name} {cell[name]}" for name, default in
             (("lr", d.optim.lr), ("eps", d.optim.eps), ("factor_clip", d.optim.factor_clip))
             if cell[name] != default]
    if cell.get("evaluated_on") == "validation":
        extra.append("validation")
    return ", ".join([f"{cell['data']} {'-'.join(map(str, cell['widths']))}", f"{cell['epochs']} epoch(s)",
                      cell["gradient"], *extra])


def summarize(cells: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof 1; 0 for one seed) of test accuracy over seeds,
    per group and alpha (as plot_sweep draws them).

    Returns rows {"group", "alpha", "mean", "std", "n", "accuracies"}, sorted by group then alpha.
    """
    acc = defaultdict(list)
    names = {}
    for c in cells:
        if c.get("status") != "done":
            continue
        g = tuple(json.dumps(c[f]) for f in GROUP_FIELDS)
        names[g] = group_name(c)
        acc[g, c["alpha"]].append(c["test_accuracy"])
    rows = [{"group": names[g], "alpha": a, "mean": float(np.mean(v)),
             "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v), "accuracies": v}
            for (g, a), v in acc.items()]
    return sorted(rows, key=lambda r: (r["group"], r["alpha"]))


def markdown_table(rows: list[dict]) -> str:
    """Accuracy (%) mean +- std over seeds: one row per group, one column per alpha."""
    alphas = sorted({r["alpha"] for r in rows})
    groups = list(dict.fromkeys(r["group"] for r in rows))
    cell = {(r["group"], r["alpha"]): r for r in rows}
    lines = ["| setting | " + " | ".join(f"α={a:g}" for a in alphas) + " |",
             "|---|" + "---|" * len(alphas)]
    for g in groups:
        vals = [cell.get((g, a)) for a in alphas]
        lines.append(f"| {g} | " + " | ".join(
            "" if r is None else f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" for r in vals) + " |")
    return "\n".join(lines)

