"""HDF5 checkpoints: weights, fractional optimiser memory, config, data identity, random
state, progress and metrics history. Full schema and rationale: docs/checkpoints.md.

Schema (format "gpusnn-checkpoint", version 1; l = 1..L layers, L = len(widths) - 1):

    /                 attrs: format, version, gpusnn_version, created (ISO 8601 UTC),
                             config (RunConfig as JSON text), epoch (completed epochs),
                             step (optimiser updates k done), batches_done (of the epoch
                             in progress), imported_from (the NIR file the weights were
                             imported from, "" for a run trained from scratch; optional)
    /config/<section> attrs: every option of RunConfig.<section> (None stored as "none");
                             a browsable copy, the JSON text in /.attrs["config"] is read
    /data             attrs: name, identity (hash of the encoded split), path (absolute
                             path of --data when it is a file or directory, else the name)
    /layers/<l>/W       float32 [n_pre, n_post]  weights W(k)
    /layers/<l>/W_prev  float32 [n_pre, n_post]  W(k-1) of the fractional update
    /layers/<l>/G_prev  float32 [n_pre, n_post]  G(k-1), only with grad_at = "previous"
                 attrs: step (= /.attrs["step"], the update counter k the memory belongs to)
    /progress         attrs: batches_done, loss_sum, correct, seen, seconds (the epoch in
                             progress); dataset spikes int64 [L] (spikes so far per layer)
    /rng              attrs: seed, note; /rng/<name> attrs: entropy (int64 seed sequence),
                             bit_generator, state (JSON of bit_generator.state)
    /history          compound table, one row per completed epoch: epoch int64, train_loss,
                      train_accuracy, test_loss, test_accuracy, seconds, eval_seconds
                      float64, spikes_per_sample float64 [L] (spikes per sample per layer)

Random state: gpusnn keeps no live generator between batches. Weight init, the sample
order of every epoch and the rate coding are pure functions of the seed (see RNG_STREAMS),
so the seeds plus the initial bit-generator states fully determine a resumed run.

Every file is built in memory and written atomically (atomic_write): a hidden temporary
file in the same directory, flushed and fsynced, renamed over the target, directory fsynced. A crash at any
moment leaves the previous checkpoint intact and never leaves a partial file under a
checkpoint name.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from data_tools.processes import alive
from gpusnn import __version__
from gpusnn.backends import Backend
from gpusnn.config import RunConfig
from gpusnn.errors import CheckpointError, GpusnnError
from gpusnn.io.hdf5 import (
    TMP_MARK,
    atomic_write,
    check_format,
    fsync_dir,
    hdf5_image,
    open_h5,
)
from gpusnn.optimizer import OptimState
from gpusnn.training import EpochProgress, TrainState

log = logging.getLogger(__name__)

FORMAT = "gpusnn-checkpoint"
VERSION = 1
LATEST = "checkpoint.h5"
NUMBERED = re.compile(r"^checkpoint-e(\d+)-s(\d+)\.h5$")

# name -> seed sequence (as a function of seed and epoch) of every generator a run uses
RNG_STREAMS: dict[str, Callable[[int, int], list[int]]] = {
    "weight_init": lambda seed, epoch: [seed, 1],        # training.init_weights
    "shuffle": lambda seed, epoch: [seed, 2, epoch],     # training.epoch_order of this epoch
    "encoding": lambda seed, epoch: [seed, 7919],        # mnist.encode_images rate coding
}
RNG_NOTE = ("no generator lives across batches: weight init, each epoch's sample order and the "
            "rate coding are drawn from numpy default_rng(entropy) with the entropy below; state is "
            "the bit generator's state right after seeding (the rate coding consumes its generator "
            "when the data is encoded, which a resumed run repeats from the same seed)")

HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds",
                   "eval_seconds", "spikes_per_sample")


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about the run it belongs to."""

    config: RunConfig
    data_identity: str
    data_name: str
    data_path: str = ""
    path: Path | None = None
    imported_from: str = ""


@dataclass(frozen=True)
class Checkpoint:
    """Everything in a checkpoint file, as host (NumPy) arrays.

    weights, W_prev, G_prev: float32 [n_pre, n_post] per layer (G_prev None unless
    grad_at = "previous"); epoch: completed epochs; step: optimiser updates done;
    history: one metrics dict per completed epoch; rng: name -> {entropy, bit_generator, state}.
    """

    path: Path
    version: int
    config: RunConfig
    info: CheckpointInfo
    epoch: int
    step: int
    weights: list
    W_prev: list
    G_prev: list | None
    progress: EpochProgress
    history: list
    rng: dict

    def metrics(self) -> dict[str, np.ndarray]:
        """The history as columns: name -> array [n_epochs] ([n_epochs, L] for spikes_per_sample)."""
        return {name: np.asarray([row[name] for row in self.history]) for name in _history_names(self.history)}

    def train_state(self, backend: Backend) -> TrainState:
        """A TrainState with every array on backend (copies)."""
        on = [backend.asarray(a) for a in self.weights]
        optim = OptimState([backend.asarray(a) for a in self.W_prev],
                           None if self.G_prev is None else [backend.asarray(a) for a in self.G_prev], self.step)
        progress = EpochProgress(**{**vars(self.progress), "spikes": list(self.progress.spikes)})
        return TrainState(on, optim, self.epoch, progress, [dict(h) for h in self.history])


# ----------------------------------------------------------------------------- writing

def _attr(value):
    return "none" if value is None else value


def _history_names(history: list) -> list[str]:
    extra = sorted({k for row in history for k in row} - set(HISTORY_COLUMNS))
    return [*HISTORY_COLUMNS, *extra] if history else list(HISTORY_COLUMNS)


def history_table(history: list, n_layers: int) -> np.ndarray:
    """Metrics dicts -> structured array [n_epochs]; lists become float64 [L] fields.

    A column missing from a row is NaN (-1 for integer columns).
    """
    names = _history_names(history)
    dtype = []
    for name in names:
        vals = [row[name] for row in history if name in row]
        if name == "spikes_per_sample" or (vals and isinstance(vals[0], (list, tuple, np.ndarray))):
            dtype.append((name, "f8", (len(vals[0]) if vals else n_layers,)))
        elif name == "epoch" or (vals and all(isinstance(v, (int, np.integer)) for v in vals)):
            dtype.append((name, "i8"))
        else:
            dtype.append((name, "f8"))
    table = np.zeros(len(history), dtype=dtype)
    for name in names:
        table[name] = -1 if table.dtype[name].kind == "i" else np.nan
        for i, row in enumerate(history):
            if name in row:
                table[name][i] = row[name]
    return table


def history_rows(table: np.ndarray) -> list[dict]:
    """Structured array [n_epochs] -> metrics dicts (Python ints, floats and lists)."""
    return [{name: row[name].tolist() for name in table.dtype.names} for row in table]


def rng_record(seed: int, epoch: int) -> dict:
    """Seed sequence and initial bit-generator state of every stream (see RNG_STREAMS)."""
    out = {}
    for name, entropy in RNG_STREAMS.items():
        ent = entropy(seed, epoch)
        bg = np.random.default_rng(ent).bit_generator
        out[name] = {"entropy": ent, "bit_generator": type(bg).__name__, "state": bg.state}
    return out


def _write(f: h5py.File, cfg: RunConfig, state: TrainState, backend: Backend, data: dict, imported_from: str) -> None:
    host = backend.asnumpy
    f.attrs.update(format=FORMAT, version=VERSION, gpusnn_version=__version__,
                   created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   config=json.dumps(cfg.to_dict()), epoch=state.epoch, step=state.optim.step,
                   batches_done=state.current.batches_done, imported_from=imported_from)
    for section, options in cfg.to_dict().items():
        f.create_group(f"config/{section}").attrs.update({k: _attr(v) for k, v in options.items()})
    f.create_group("data").attrs.update(data)
    for l, W in enumerate(state.weights, start=1):
        g = f.create_group(f"layers/{l}")
        g.attrs["step"] = state.optim.step
        g["W"] = np.asarray(host(W))
        g["W_prev"] = np.asarray(host(state.optim.W_prev[l - 1]))
        if state.optim.G_prev is not None:
            g["G_prev"] = np.asarray(host(state.optim.G_prev[l - 1]))
    cur = state.current
    p = f.create_group("progress")
    p.attrs.update(batches_done=cur.batches_done, loss_sum=cur.loss_sum, correct=cur.correct,
                   seen=cur.seen, seconds=cur.seconds)
    p["spikes"] = np.asarray(cur.spikes, np.int64)
    r = f.create_group("rng")
    r.attrs.update(seed=cfg.train.seed, note=RNG_NOTE)
    for name, rec in rng_record(cfg.train.seed, state.epoch).items():
        r.create_group(name).attrs.update(entropy=np.asarray(rec["entropy"], np.int64),
                                          bit_generator=rec["bit_generator"], state=json.dumps(rec["state"]))
    f["history"] = history_table(state.history, len(state.weights))


def save(path: str | os.PathLike, cfg: RunConfig, state: TrainState, backend: Backend, data_identity: str = "",
         data_name: str = "", data_path: str = "", imported_from: str = "") -> Path:
    """Write state (arrays on backend) atomically to path as one HDF5 checkpoint. Returns path."""
    data = {"identity": data_identity, "name": data_name, "path": data_path or data_name}
    return atomic_write(path, hdf5_image(lambda f: _write(f, cfg, state, backend, data, imported_from)))


def numbered_name(epoch: int, step: int) -> str:
    """File name of the checkpoint after `epoch` completed epochs and `step` updates."""
    return f"checkpoint-e{epoch}-s{step}.h5"


def numbered(run_dir: str | os.PathLike) -> list[Path]:
    """The numbered checkpoints in run_dir, oldest first (by step, then epoch)."""
    found = []
    for p in Path(run_dir).iterdir():
        m = NUMBERED.match(p.name)
        if m:
            found.append(((int(m.group(2)), int(m.group(1))), p))
    return [p for _, p in sorted(found)]


def save_run(run_dir: str | os.PathLike, cfg: RunConfig, state: TrainState, backend: Backend, keep: int = 3,
             data_identity: str = "", data_name: str = "", data_path: str = "",
             imported_from: str = "") -> Path:
    """Save RUN_DIR/checkpoint-e<epoch>-s<step>.h5, make RUN_DIR/checkpoint.h5 the same file
    (an atomically replaced hard link, or a copy where links fail) and keep the newest
    `keep` numbered files. Returns the numbered path."""
    if keep < 1:
        raise CheckpointError(f"{run_dir}: keep must be >= 1 checkpoint, got {keep}")
    run_dir = Path(run_dir)
    path = save(run_dir / numbered_name(state.epoch, state.optim.step), cfg, state, backend,
                data_identity, data_name, data_path, imported_from)
    latest = run_dir / LATEST
    tmp = latest.with_name(f".{LATEST}{TMP_MARK}{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, latest)
        fsync_dir(run_dir)
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_write(latest, path.read_bytes())
    for old in numbered(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def remove_stale_temps(run_dir: str | os.PathLike) -> list[Path]:
    """Delete temporary files left in run_dir by writers that were killed. Returns them."""
    gone = []
    pat = re.compile(rf"^\..+\.h5{re.escape(TMP_MARK)}(\d+)$")
    for p in Path(run_dir).glob(".*"):
        m = pat.match(p.name)
        if m and not alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone




# ----------------------------------------------------------------------------- reading

def _dataset(f: h5py.File, path: Path, name: str) -> np.ndarray:
    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise CheckpointError(f"{path}: missing dataset /{name}")
    return f[name][...]


def _group(f: h5py.File, path: Path, name: str) -> h5py.Group:
    if name not in f or not isinstance(f[name], h5py.Group):
        raise CheckpointError(f"{path}: missing group /{name}")
    return f[name]


def _attrs(obj, path: Path, *names: str) -> list:
    missing = [n for n in names if n not in obj.attrs]
    if missing:
        raise CheckpointError(f"{path}: missing attribute(s) {missing} on {obj.name}")
    return [obj.attrs[n] for n in names]


def _matrix(f: h5py.File, path: Path, name: str, shape: tuple[int, int]) -> np.ndarray:
    a = _dataset(f, path, name)
    if a.shape != shape:
        raise CheckpointError(f"{path}: /{name} has shape {a.shape}, the config's widths say {shape}")
    if a.dtype.kind != "f":
        raise CheckpointError(f"{path}: /{name} has dtype {a.dtype}, expected float32")
    if not np.isfinite(a).all():
        raise CheckpointError(f"{path}: /{name} holds {int((~np.isfinite(a)).sum())} NaN or inf value(s)")
    return a.astype(np.float32, copy=False)


def read(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint file into host arrays; CheckpointError names the file
    and the problem (not HDF5, other format, newer version, missing dataset or attribute,
    shapes that disagree with the config, NaN or inf)."""
    path = Path(path)
    with open_h5(path) as f:
        version = check_format(f, path, FORMAT, VERSION)
        cfg_text, epoch, step = _attrs(f, path, "config", "epoch", "step")
        try:
            cfg = RunConfig.from_dict(json.loads(cfg_text)).validate()
        except (GpusnnError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: bad config attribute ({e})") from e
        widths = cfg.network.widths
        weights, W_prev, G_prev = [], [], []
        for l in range(1, len(widths)):
            shape = (widths[l - 1], widths[l])
            weights.append(_matrix(f, path, f"layers/{l}/W", shape))
            W_prev.append(_matrix(f, path, f"layers/{l}/W_prev", shape))
            if cfg.optim.grad_at == "previous":
                G_prev.append(_matrix(f, path, f"layers/{l}/G_prev", shape))
        name, identity, dpath = (str(a) for a in _attrs(_group(f, path, "data"), path, "name", "identity", "path"))
        keys = ("batches_done", "loss_sum", "correct", "seen", "seconds")
        progress = EpochProgress(**{k: v.item() for k, v in zip(keys, _attrs(_group(f, path, "progress"), path, *keys))})
        progress.spikes = _dataset(f, path, "progress/spikes").tolist()
        if progress.spikes and len(progress.spikes) != len(widths) - 1:
            raise CheckpointError(f"{path}: /progress/spikes has {len(progress.spikes)} layers, "
                                  f"the config has {len(widths) - 1}")
        history = history_rows(_dataset(f, path, "history"))
        rng = {k: dict(zip(("entropy", "bit_generator", "state"),
                           _attrs(g, path, "entropy", "bit_generator", "state")))
               for k, g in _group(f, path, "rng").items()}
        for rec in rng.values():
            rec.update(entropy=rec["entropy"].tolist(), bit_generator=str(rec["bit_generator"]),
                       state=json.loads(rec["state"]))
        imported_from = str(f.attrs.get("imported_from", ""))
    info = CheckpointInfo(cfg, identity, name, dpath, path, imported_from)
    return Checkpoint(path, version, cfg, info, int(epoch), int(step), weights, W_prev,
                      G_prev if cfg.optim.grad_at == "previous" else None, progress, history, rng)


def load(path: str | os.PathLike, backend: Backend) -> tuple[CheckpointInfo, TrainState]:
    """Read a checkpoint onto backend (numpy, emulated or cuda arrays)."""
    ck = read(path)
    return ck.info, ck.train_state(backend)


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file as given, or for a run directory the newest checkpoint in it that
    reads back completely (checkpoint.h5 or a numbered one; temporary files never count)."""
    p = Path(path)
    if not p.is_dir():
        if not p.exists():
            raise CheckpointError(f"{p}: no such checkpoint")
        return p
    candidates = [c for c in [p / LATEST, *numbered(p)] if c.exists()]
    if not candidates:
        raise CheckpointError(f"{p}: no checkpoint in this run directory")
    ordered = sorted(candidates, key=_progress_key, reverse=True)
    problems = []
    for i, c in enumerate(ordered):
        try:
            read(c)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        for later in ordered[i + 1:]:  # unreadable headers sort last, yet such a file may be the newest
            if _progress_key(later) == (-1,):
                try:
                    read(later)
                except CheckpointError as e:
                    problems.append(str(e))
        for problem in problems:
            log.warning("skipping an unreadable checkpoint, using %s instead: %s", c.name, problem)
        return c
    raise CheckpointError(f"{p}: none of {len(candidates)} checkpoint file(s) reads back completely: "
                          + "; ".join(problems))


def _progress_key(path: Path) -> tuple:
    """(step, epoch, is checkpoint.h5) from the file's root attributes; (-1,) when unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs["step"]), int(f.attrs["epoch"]), path.name == LATEST
    except (OSError, KeyError, ValueError, TypeError):
        return (-1,)
