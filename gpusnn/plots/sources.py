"""Read what the plots draw: training histories, sweep results and spike-log samples."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from gpusnn.plots.figure import PlotError

SWEEP_FORMAT = "gpusnn-sweep"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PlotError(f"{path}: not a readable JSON file ({e})") from e


def _run_title(data, widths, alpha, lr) -> str:
    return f"{data}  {'-'.join(map(str, widths))}  alpha={alpha}  lr={lr}"


def load_history(path: str | os.PathLike) -> tuple[list[dict], str, str | None]:
    """(per-epoch metric dicts, a title naming the run, the loss option or None when the file
    does not say) from a run directory, a checkpoint file or the JSON of `gpusnn train --json`."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        doc = _read_json(path)
        history = doc.get("history") if isinstance(doc, dict) else None
        if not isinstance(history, list):
            raise PlotError(f"{path}: no 'history' list; expected the JSON written by gpusnn train --json")
        title = _run_title(doc.get("data"), doc.get("widths", ()), doc.get("alpha"), doc.get("lr"))
        loss = doc.get("loss") or ((doc.get("config") or {}).get("method") or {}).get("loss")
    else:
        from gpusnn.backends import get_backend
        from gpusnn.io import checkpoint
        info, state = checkpoint.load(checkpoint.resolve(path), get_backend("numpy"))
        cfg = info.config
        history = state.history
        loss = cfg.method.loss
        title = _run_title(info.data_name or cfg.train.data, cfg.network.widths, cfg.optim.alpha, cfg.optim.lr)
    if any(not isinstance(h, dict) or "epoch" not in h for h in history):
        raise PlotError(f"{path}: a history entry has no 'epoch'")
    return history, title, loss


def load_sweep(path: str | os.PathLike) -> list[dict]:
    """The cells of a sweep results file (format 'gpusnn-sweep')."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != SWEEP_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise PlotError(f"{path}: not a gpusnn sweep results file (format {found!r}, expected {SWEEP_FORMAT!r})")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise PlotError(f"{path}: no 'cells' list")
    return cells


def split_names(values) -> np.ndarray:
    """Split names (object [n] of str) of stored split codes: numbers as in
    gpusnn.io.spikelog.SPLITS (0 = train, 1 = test), or bytes / str names."""
    from gpusnn.io.spikelog import SPLITS
    names = {code: name for name, code in SPLITS.items()}
    return np.array([v.decode() if isinstance(v, bytes) else v if isinstance(v, str) else names.get(int(v), str(v))
                     for v in np.asarray(values).tolist()], dtype=object)


def select_entry(entries: Mapping[str, np.ndarray], source: str, sample: int | None = None,
                 sample_id: int | None = None, epoch: int | None = None, split: str | None = None) -> int:
    """The row of the log's entries (field -> array [E], split as names) to draw.

    sample: the row itself (0-based); or sample_id: the dataset sample, narrowed by split
    and epoch (default: the last epoch logged for that sample). Neither: row 0.
    Errors name `source` and what is missing.
    """
    n = len(entries["sample_id"])
    if n == 0:
        raise PlotError(f"{source}: the log holds no entries")
    if sample_id is None:
        if epoch is not None or split is not None:
            raise PlotError("--epoch and --split narrow --sample-id; --sample names a row directly")
        row = 0 if sample is None else sample
        if not 0 <= row < n:
            raise PlotError(f"{source}: no entry {row}; the log holds entries 0..{n - 1}")
        return row
    rows = np.flatnonzero(np.asarray(entries["sample_id"]) == sample_id)
    if not rows.size:
        raise PlotError(f"{source}: sample id {sample_id} is not in the log")
    if split is not None:
        rows = rows[np.asarray(entries["split"])[rows] == split]
        if not rows.size:
            raise PlotError(f"{source}: sample id {sample_id} is not logged in split {split!r}")
    epochs = np.asarray(entries["epoch"])[rows]
    want = epochs.max() if epoch is None else epoch
    rows = rows[epochs == want]
    if not rows.size:
        raise PlotError(f"{source}: sample id {sample_id} is not logged at epoch {epoch} "
                        f"(logged epochs: {sorted(set(epochs.tolist()))})")
    if rows.size > 1:
        splits = sorted(set(np.asarray(entries["split"])[rows]))
        raise PlotError(f"{source}: sample id {sample_id} is logged {rows.size} times at epoch {want} "
                        f"(splits {', '.join(splits)}); choose one with --split")
    return int(rows[0])


def read_sample(path: str | os.PathLike, layers: Sequence[int] | None = None, **which) -> dict:
    """Everything plot_raster needs about one logged sample, read through gpusnn.io.spikelog.

    layers: layer numbers to read (0 = input .. L = output; default all); which: the
    sample, sample_id, epoch and split arguments of select_entry. Returns a dict with
    spikes {layer: (step, neuron)}, widths, n_steps, input_shape, class_names, label,
    prediction, and entry, sample_id, split, epoch naming the entry.
    """
    from gpusnn.io.spikelog import open_log
    path = Path(path)
    if not path.is_file():
        raise PlotError(f"{path}: no such spike log")
    with open_log(path) as log:
        entries = {**log.entries, "split": split_names(log.entries["split"])}
        row = select_entry(entries, str(path), **which)
        n_layers = log.n_layers
        layers = list(range(n_layers + 1)) if not layers else sorted(set(layers))
        missing = [l for l in layers if not 0 <= l <= n_layers]
        if missing:
            raise PlotError(f"{path}: no layer {', '.join(map(str, missing))} in the log; it holds layers "
                            f"0 (input) to {n_layers} (output)")
        spikes = {l: tuple(np.asarray(a) for a in log.spikes(l, row)) for l in layers}
        return {"spikes": spikes, "widths": [int(w) for w in log.widths], "n_steps": int(log.n_steps),
                "input_shape": [int(v) for v in log.input_shape], "class_names": list(log.class_names),
                "label": int(entries["label"][row]), "prediction": int(entries["prediction"][row]),
                "entry": row, "sample_id": int(entries["sample_id"][row]), "split": entries["split"][row],
                "epoch": int(entries["epoch"][row])}
