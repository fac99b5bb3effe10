"""The train workflow: a new run or the continuation of a saved one, from options to results.

    prepare_new(cfg, hidden, out)       a fresh run: data, widths from the data, new weights
    prepare_resume(ckpt, changes, out)  a saved run: its config, data (checked unchanged), state
    run_training(run, ...)              train to cfg.train.epochs, saving checkpoints; results dict

A run directory holds one run only (`claim_out_dir`): training into a directory that holds
another run is refused unless it is overwritten (its run files deleted first) or resumed.
The CLI (gpusnn.commands.train) only parses flags, calls these and prints.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from data_tools.datasets import load
from data_tools.progress import PROGRESS
from data_tools.spikes import EncodedDataset
from gpusnn import training
from gpusnn.backends import get_backend, gpu_problem, resolve_name
from gpusnn.backends.protocol import Backend
from gpusnn.config import OptionError, RunConfig, TrainConfig
from gpusnn.errors import CheckpointError, ConfigError, GpusnnError
from gpusnn.io import checkpoint, spikelog
from gpusnn.training import TrainState

log = logging.getLogger(__name__)

RESUME_CHANGES = ("epochs", "backend", "cuda_graph")  # [train] options a resumed run may change
SPIKE_LOGS = ("spikes.h5", "spikes-eval.h5")


def load_for(cfg: RunConfig, data: str | None = None, progress: bool = True) -> EncodedDataset:
    """The dataset of a run (or `data` instead), encoded as the run's config says."""
    t = cfg.train
    return load(data or t.data, cfg.network.n_steps, t.seed, progress, downsample=t.downsample,
                binning=t.binning, encoding=t.encoding)


def with_data_widths(cfg: RunConfig, hidden, n_inputs: int, n_classes: int) -> RunConfig:
    """cfg with widths = (inputs of the data, *hidden, classes of the data), validated."""
    return cfg.replace(network={"widths": (n_inputs, *hidden, n_classes)}).validate()


def check_backend(name: str) -> None:
    """OptionError (train.backend) when cuda is asked for and CuPy sees no usable GPU, so the
    run fails at once instead of with CuPy's own error in the middle."""
    problem = gpu_problem() if name == "cuda" else None
    if problem:
        raise OptionError("train", "backend", f"cuda cannot run here: {problem}; use numpy or emulated")


def check_cuda_graph(train: TrainConfig, distributed: bool = False) -> None:
    """OptionError (train.cuda_graph, the flag --cuda-graph) when cuda_graph is on and the run's
    backend (auto resolved) is not cuda, or the run is data parallel (the captured step holds
    no gradient all-reduce); checked with the options, before any data is loaded."""
    if not train.cuda_graph:
        return
    name = resolve_name(train.backend)
    if name != "cuda":
        resolved = f" (auto: {name} here)" if train.backend == "auto" else ""
        raise OptionError("train", "cuda_graph", f"needs --backend cuda (CUDA graphs are captured by the CUDA "
                                                 f"driver), not --backend {train.backend}{resolved}; "
                                                 f"leave it out (or give --no-cuda-graph) on this machine")
    if distributed:
        raise OptionError("train", "cuda_graph", "cannot be combined with --distributed (the captured step "
                                                 "has no gradient all-reduce)")


def make_backend(name: str):
    """The backend called name (see check_backend)."""
    check_backend(name)
    return get_backend(name)


def data_path(source: str) -> str:
    """What a checkpoint records as the data path: absolute for a file or directory, else the name."""
    p = Path(source)
    return str(p.resolve()) if p.exists() else source


# ----------------------------------------------------------------------------- run directories

def run_files(out: Path) -> list[Path]:
    """The files of a run in directory out: checkpoint.h5, the spike logs, the numbered
    checkpoints (newest first) and temporaries left by killed writers."""
    if not out.is_dir():
        return []
    found = [out / n for n in (checkpoint.LATEST, *SPIKE_LOGS) if (out / n).exists()]
    return found + checkpoint.numbered(out)[::-1] + sorted(out.glob(".*.h5.tmp*"))


def claim_out_dir(out: Path, overwrite: bool, resuming: Path | None = None, extra=()) -> list[Path]:
    """Make sure out may receive this run, before any work: a new run goes into a directory
    without run files (or, with overwrite, one whose run files, and the files of extra that
    lie in out, are deleted now); a resumed run into its own directory or one without run
    files. Returns the files deleted."""
    files = run_files(out)
    if not files or (resuming is not None and out.resolve() == resuming.parent.resolve()):
        return []
    if not overwrite:
        what = ", ".join(p.name for p in files[:3]) + (", ..." if len(files) > 3 else "")
        raise OptionError("run", "out", f"{out} already holds a run ({what}); continue it with --resume {out}, "
                                        f"choose a new --out, or give --overwrite to delete its run files first")
    files += [p for p in map(Path, extra) if p.is_file() and p.resolve().parent == out.resolve()]
    for p in files:
        p.unlink()
    log.warning("--overwrite: deleted %d file(s) of the previous run in %s", len(files), out)
    return files


# ----------------------------------------------------------------------------- new run or resume

@dataclass
class Run:
    """A run ready to train.

    cfg: the validated config (widths from the data); source: the data path checkpoints
    record; resumed_from: the checkpoint continued, or None; data_seconds: wall time spent
    loading, generating or encoding the data; imported_from: the NIR file the network came
    from (gpusnn import), kept by every checkpoint of the run, else ""; comm: the
    communicator of a data-parallel run (gpusnn.distributed), None for one process.
    """

    cfg: RunConfig
    data: EncodedDataset
    backend: Backend
    state: TrainState
    out: Path
    source: str
    resumed_from: Path | None = None
    data_seconds: float = 0.0
    imported_from: str = ""
    comm: object = None


def is_root(comm) -> bool:
    """True on the one process of a run that writes files: rank 0, or a run without comm."""
    return comm is None or comm.rank == 0


def prepare_new(cfg: RunConfig, hidden, out: Path, progress: bool = True, comm=None) -> Run:
    """A fresh run of cfg (widths[0] and widths[-1] are set from the data) into out; comm: the
    rank's communicator of a data-parallel run (connected before this builds the backend)."""
    backend = make_backend(cfg.train.backend)
    t0 = time.perf_counter()
    data = load_for(cfg, progress=progress)
    seconds = time.perf_counter() - t0
    cfg = training.with_input_drive(with_data_widths(cfg, hidden, data.train.n_inputs, data.n_classes), data.train)
    return Run(cfg, data, backend, training.new_state(cfg, backend), out, data_path(cfg.train.data),
               None, seconds, comm=comm)


def resumed_config(saved: RunConfig, changes: dict) -> RunConfig:
    """The saved config with the RESUME_CHANGES given in changes (train options) applied."""
    extra = set(changes) - set(RESUME_CHANGES)
    if extra:
        raise ConfigError(f"options {sorted(extra)} cannot change when resuming; only {RESUME_CHANGES} can")
    return saved.replace(train=changes).validate() if changes else saved


def resume_data(info: checkpoint.CheckpointInfo, progress: bool = True) -> EncodedDataset:
    """Load the run's data (as given, else by its saved absolute path) and check its identity."""
    cfg = info.config
    tried = []
    for source in dict.fromkeys([cfg.train.data, info.data_path]):
        try:
            data = load_for(cfg, source, progress=progress)
        except (GpusnnError, OSError) as e:
            tried.append(f"{source!r}: {e}")
            continue
        if data.identity == info.data_identity:
            return data
        tried.append(f"{source!r} has identity {data.identity}")
    raise CheckpointError(f"{info.path}: the run's data {cfg.train.data!r} (identity {info.data_identity}) "
                          f"cannot be found unchanged: {'; '.join(tried)}")


def read_resume(path: str | Path, changes: dict) -> tuple[checkpoint.Checkpoint, RunConfig]:
    """The checkpoint to continue (a file, or a run directory's newest readable one) and the
    config it continues with. OptionError (train.epochs) when it has more epochs than asked for."""
    saved = checkpoint.read(checkpoint.resolve(path))
    cfg = resumed_config(saved.config, changes)
    if cfg.train.epochs < saved.epoch:
        raise OptionError("train", "epochs", f"{cfg.train.epochs} is fewer than the {saved.epoch} epochs "
                                             f"{saved.path} has done; give --epochs > {saved.epoch} to continue it")
    return saved, cfg


def prepare_resume(saved: checkpoint.Checkpoint, cfg: RunConfig, out: Path, progress: bool = True,
                   comm=None) -> Run:
    """The run saved in checkpoint `saved`, continued with cfg (see read_resume) into out (comm:
    as prepare_new)."""
    backend = make_backend(cfg.train.backend)
    t0 = time.perf_counter()
    data = resume_data(saved.info, progress)
    return Run(cfg, data, backend, saved.train_state(backend), out, saved.info.data_path, saved.path,
               time.perf_counter() - t0, saved.info.imported_from, comm)


# ----------------------------------------------------------------------------- training

def run_training(run: Run, save_every: int = 0, keep: int = 3, log_spikes: str | None = None,
                 log_train: bool = False, progress: bool = True) -> dict | None:
    """Train run to cfg.train.epochs, saving RUN_DIR/checkpoint*.h5 after every epoch (and
    every save_every updates), logging the spikes of the samples log_spikes names into
    RUN_DIR/spikes.h5. Returns the results (see README, `gpusnn train`); in a data-parallel
    run only rank 0 writes files and returns them (None on the other ranks)."""
    cfg, data, backend, state, out = run.cfg, run.data, run.backend, run.state, run.out
    root = is_root(run.comm)
    if save_every < 0:
        raise OptionError("run", "save_every", f"must be >= 0, got {save_every}")
    if keep < 1:
        raise OptionError("run", "keep", f"must be >= 1, got {keep}")
    test_ids = spikelog.parse_ids(log_spikes, data.test.n_samples) if log_spikes else None
    train_ids = spikelog.parse_ids(log_spikes, data.train.n_samples) if log_spikes and log_train else None
    if root:
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_stale_temps(out)
    log_path = out / "spikes.h5"
    if run.resumed_from is not None and root:
        dropped = spikelog.truncate(log_path, state.epoch)
        if dropped:
            log.info("dropped %d spike-log entries past epoch %d of the checkpoint", dropped, state.epoch)
    if run.resumed_from is not None and state.epoch >= cfg.train.epochs:
        log.warning("%s has done %d of %d epochs: nothing to train", run.resumed_from, state.epoch,
                    cfg.train.epochs)
    PROGRESS.info("%s %s on %s (%d train / %d test samples, T=%d) with the %s backend into %s",
                  f"resuming {run.resumed_from} at epoch {state.epoch}, step {state.optim.step}:"
                  if run.resumed_from else "training", "-".join(map(str, cfg.network.widths)), data.name,
                  data.train.n_samples, data.test.n_samples, cfg.network.n_steps, backend.name, out)
    saved_paths = []

    def save(st) -> None:
        if not root:
            return
        saved_paths.append(checkpoint.save_run(out, cfg, st, backend, keep, data.identity, data.name, run.source,
                                               run.imported_from))
        log.info("saved %s", saved_paths[-1])

    def on_batch(st) -> None:
        if save_every and st.optim.step % save_every == 0:
            save(st)

    def on_epoch(st) -> None:
        for ids, split in ((test_ids, "test"), (train_ids, "train")):
            if ids is not None and root:
                spikelog.log_samples(log_path, backend, st.weights, cfg, data, ids, split, st.epoch)
        save(st)

    t0 = time.perf_counter()
    training.fit(backend, state, cfg, data, on_batch=on_batch, on_epoch=on_epoch, progress=progress and root,
                 comm=run.comm)
    if not saved_paths and run.resumed_from is None:
        save(state)
    seconds = time.perf_counter() - t0
    if not root:
        return None
    last = state.history[-1] if state.history else {}
    return {
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
        "epochs": state.epoch, "alpha": cfg.optim.alpha, "lr": cfg.optim.lr, "backend": backend.name,
        "data": data.name, "widths": list(cfg.network.widths), "loss": cfg.method.loss,
        "seconds": seconds, "data_seconds": run.data_seconds,
        "history": state.history, "checkpoint": str(out / checkpoint.LATEST) if saved_paths else None,
        "config": cfg.to_dict(), "resumed_from": str(run.resumed_from) if run.resumed_from else None,
        "spike_log": str(log_path) if test_ids is not None else None,
    }
