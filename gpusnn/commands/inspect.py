"""`gpusnn inspect FILE`: summarise a checkpoint or spike log (and recognise event files)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from gpusnn.errors import CheckpointError
from gpusnn.io import checkpoint, spikelog
from gpusnn.io.hdf5 import open_h5

EVENT_FIELDS = {"x", "y", "p", "t"}


def register(sub) -> None:
    p = sub.add_parser("inspect", help="summarise a checkpoint or spike log",
                       description="Print what a gpusnn checkpoint or spike log holds (config, epochs, "
                                   "weights, metrics; entries and spike counts). Event stores and AEDAT "
                                   "files are recognised and referred to `gpusnn data inspect`.")
    p.add_argument("file", help="checkpoint (.h5), run directory, spike log (.h5) or event file")
    p.add_argument("--json", help="write the summary to this file")
    p.set_defaults(func=run)


def _stats(a: np.ndarray) -> dict:
    return {"shape": list(a.shape), "mean": float(a.mean()), "std": float(a.std()),
            "min": float(a.min()), "max": float(a.max())}


def checkpoint_summary(path: Path) -> dict:
    """Config, data, progress, per-layer weight statistics and metrics of a checkpoint."""
    ck = checkpoint.read(path)
    with h5py.File(path, "r") as f:
        created = str(f.attrs.get("created", ""))
    return {"kind": "checkpoint", "file": str(path), "format": checkpoint.FORMAT, "version": ck.version,
            "created": created, "epoch": ck.epoch, "step": ck.step, "batches_done": ck.progress.batches_done,
            "config": ck.config.to_dict(), "data": {"name": ck.info.data_name, "identity": ck.info.data_identity,
                                                    "path": ck.info.data_path},
            "layers": [{"layer": l, "W": _stats(W), "G_prev": ck.G_prev is not None}
                       for l, W in enumerate(ck.weights, start=1)],
            "rng": {k: v["entropy"] for k, v in ck.rng.items()}, "history": ck.history}


def spikelog_summary(path: Path) -> dict:
    """Entries, epochs, accuracy of the logged predictions and stored spikes per group."""
    with spikelog.open_log(path) as lg:
        e = lg.entries
        storage = lg.storage()
        n = max(lg.n_entries, 1)
        groups = {g: {**s, "per_entry": s["events"] / n, "bytes_per_entry": s["bytes"] / n}
                  for g, s in storage.items() if g != "entries"}
        return {"kind": "spikelog", "file": str(path), "format": spikelog.FORMAT,
                "version": int(lg.attrs["version"]), "n_entries": lg.n_entries, "n_steps": lg.n_steps,
                "widths": lg.widths.tolist(), "input_shape": list(lg.input_shape), "class_names": lg.class_names,
                "epochs": np.unique(e["epoch"]).tolist(), "samples": np.unique(e["sample_id"]).tolist(),
                "splits": sorted({k for k, v in spikelog.SPLITS.items() if (e["split"] == v).any()}),
                "accuracy": float((e["label"] == e["prediction"]).mean()) if lg.n_entries else None,
                "groups": groups, "file_bytes": path.stat().st_size}


def _foreign_hdf5(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format", "")
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        names = set()
        f.visititems(lambda name, obj: names.update(
            [name.rsplit("/", 1)[-1]] + list(obj.dtype.names or ()) if isinstance(obj, h5py.Dataset) else []))
    if "event" in fmt.lower() or "events" in names or EVENT_FIELDS <= names:
        return {"kind": "event-store", "file": str(path), "format": fmt,
                "message": f"{path} is an HDF5 event store ({fmt or 'events'}); use `gpusnn data inspect {path}`"}
    raise CheckpointError(f"{path}: an HDF5 file but neither a gpusnn checkpoint nor a spike log "
                          f"(root attribute format = {fmt!r})")


def summary(path: str | Path) -> dict:
    """What FILE is and what it holds; CheckpointError when gpusnn cannot tell."""
    path = Path(path)
    if path.is_dir():
        path = checkpoint.resolve(path)
    elif not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if h5py.is_hdf5(path):
        with open_h5(path, "gpusnn checkpoint or spike log") as f:
            fmt = f.attrs.get("format")
        if fmt == checkpoint.FORMAT:
            return checkpoint_summary(path)
        if fmt == spikelog.FORMAT:
            return spikelog_summary(path)
        return _foreign_hdf5(path)
    with open(path, "rb") as fh:
        head = fh.read(32)
    if head.startswith(b"#!AER-DAT"):
        version = head[len(b"#!AER-DAT"):].split(b"\r")[0].split(b"\n")[0].decode("ascii", "replace")
        return {"kind": "aedat", "file": str(path), "format": f"AEDAT {version}",
                "message": f"{path} is an AEDAT {version} event file; use `gpusnn data inspect {path}`"}
    raise CheckpointError(f"{path}: not a gpusnn checkpoint or spike log (not HDF5, not AEDAT)")


def render(s: dict) -> list[str]:
    """Human-readable lines of a summary."""
    if "message" in s:
        return [s["message"]]
    if s["kind"] == "checkpoint":
        c = s["config"]
        lines = [f"{s['file']}: gpusnn checkpoint v{s['version']} ({s['created']})",
                 f"  network {'-'.join(map(str, c['network']['widths']))}, T={c['network']['n_steps']}, "
                 f"alpha={c['optim']['alpha']}, lr={c['optim']['lr']}, seed={c['train']['seed']}",
                 f"  data {s['data']['name']} (identity {s['data']['identity']}, {s['data']['path']})",
                 f"  epoch {s['epoch']} of {c['train']['epochs']}, step {s['step']}, "
                 f"{s['batches_done']} batches into the next epoch"]
        lines += [f"  layer {L['layer']}: W {L['W']['shape']} mean {L['W']['mean']:+.4f} std {L['W']['std']:.4f} "
                  f"range [{L['W']['min']:+.3f}, {L['W']['max']:+.3f}]" for L in s["layers"]]
        lines += ["  epoch  train_loss  train_acc  test_loss  test_acc  seconds"]
        lines += [f"  {h['epoch']:5d}  {h['train_loss']:10.4f}  {h['train_accuracy']:9.4f}  {h['test_loss']:9.4f}  "
                  f"{h['test_accuracy']:8.4f}  {h['seconds']:7.2f}" for h in s["history"]]
        return lines
    lines = [f"{s['file']}: gpusnn spike log v{s['version']}, {s['n_entries']} entries "
             f"({len(s['samples'])} samples, splits {s['splits']}, epochs {s['epochs']}), T={s['n_steps']}, "
             f"widths {s['widths']}, input shape {s['input_shape']}",
             f"  accuracy of the logged predictions: {s['accuracy']}"]
    lines += [f"  {g:10s} {v['events']:9d} spikes, {v['per_entry']:9.1f} per entry, "
              f"{v['bytes_per_entry']:9.1f} bytes per entry" for g, v in s["groups"].items()]
    return lines


def run(args) -> dict:
    s = summary(args.file)
    print("\n".join(render(s)))
    return s
