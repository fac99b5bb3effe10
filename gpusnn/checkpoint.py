"""HDF5 checkpoints: weights, fractional optimiser memory, config, progress and metrics.

Schema (format "gpusnn-checkpoint", version 1):

    /                attrs: format, version, config (JSON), data_identity, data_name,
                            epoch, step, batches_done
    /layers/<l>/W        float32 [n_pre, n_post]   weights of layer l (1-based)
    /layers/<l>/W_prev   float32 [n_pre, n_post]   W(k-1) of the fractional update
    /layers/<l>/G_prev   float32 [n_pre, n_post]   G(k-1), only with grad_at = "previous"
    /history             attrs: json (list of per-epoch metric dicts)

Files are written atomically: a temporary file in the same directory, flushed and fsynced,
then renamed over the target, so a crash leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .config import RunConfig
from .errors import CheckpointError
from .optimizer import OptimState
from .training import EpochProgress, TrainState

FORMAT = "gpusnn-checkpoint"
VERSION = 1


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about the run it belongs to."""

    config: RunConfig
    data_identity: str
    data_name: str


def save(path: str | os.PathLike, cfg: RunConfig, state: TrainState, backend, data_identity: str = "",
         data_name: str = "") -> Path:
    """Write state atomically to path (HDF5). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format=FORMAT, version=VERSION, config=json.dumps(cfg.to_dict()),
                           data_identity=data_identity, data_name=data_name, epoch=state.epoch,
                           step=state.optim.step, batches_done=state.current.batches_done)
            for l, W in enumerate(state.weights, start=1):
                g = f.create_group(f"layers/{l}")
                g["W"] = np.asarray(backend.asnumpy(W))
                g["W_prev"] = np.asarray(backend.asnumpy(state.optim.W_prev[l - 1]))
                if state.optim.G_prev is not None:
                    g["G_prev"] = np.asarray(backend.asnumpy(state.optim.G_prev[l - 1]))
            f.create_group("history").attrs["json"] = json.dumps(state.history)
            f.create_group("current").attrs["json"] = json.dumps(vars(state.current))
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: could not write checkpoint ({e}); the previous file is untouched") from e
    return path


def load(path: str | os.PathLike, backend) -> tuple[CheckpointInfo, TrainState]:
    """Read a checkpoint onto backend; errors name the file and what is wrong."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable HDF5 file ({e})") from e
    with f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a gpusnn checkpoint (format attribute {f.attrs.get('format')!r})")
        if int(f.attrs["version"]) > VERSION:
            raise CheckpointError(f"{path}: checkpoint version {int(f.attrs['version'])} is newer than this "
                                  f"gpusnn reads ({VERSION}); upgrade gpusnn")
        cfg = RunConfig.from_dict(json.loads(f.attrs["config"]))
        widths = cfg.network.widths
        weights, W_prev, G_prev = [], [], []
        for l in range(1, len(widths)):
            name = f"layers/{l}"
            if name not in f:
                raise CheckpointError(f"{path}: missing dataset {name}/W")
            g = f[name]
            W = g["W"][...]
            if W.shape != (widths[l - 1], widths[l]):
                raise CheckpointError(f"{path}: {name}/W has shape {W.shape}, config says "
                                      f"{(widths[l - 1], widths[l])}")
            if not np.isfinite(W).all():
                raise CheckpointError(f"{path}: {name}/W holds NaN or inf")
            weights.append(backend.asarray(W))
            W_prev.append(backend.asarray(g["W_prev"][...]))
            if "G_prev" in g:
                G_prev.append(backend.asarray(g["G_prev"][...]))
        optim = OptimState(W_prev, G_prev if cfg.optim.grad_at == "previous" else None, int(f.attrs["step"]))
        state = TrainState(weights, optim, int(f.attrs["epoch"]),
                           EpochProgress(**json.loads(f["current"].attrs["json"])),
                           json.loads(f["history"].attrs["json"]))
        info = CheckpointInfo(cfg, str(f.attrs["data_identity"]), str(f.attrs["data_name"]))
    return info, state


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or RUN_DIR/checkpoint.h5 when given a run directory."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint.h5"
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint")
    return p
