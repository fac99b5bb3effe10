"""`gpusnn train`: train a network with FO-STDGD, saving checkpoints (and spike logs), or
resume a saved run with --resume."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from gpusnn import datasets, training
from gpusnn.backends import get_backend
from gpusnn.commands._options import add_run_options, config_from_args, with_data_widths
from gpusnn.errors import CheckpointError, ConfigError, GpusnnError
from gpusnn.io import checkpoint, spikelog

log = logging.getLogger(__name__)

RESUME_ALLOWED = ("epochs", "backend")  # run options that may accompany --resume


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network with FO-STDGD",
                       description="Train a nonleaky IF network with FO-STDGD on the given data, or resume "
                                   "a saved run (--resume).")
    add_run_options(p)
    g = p.add_argument_group("checkpoints, resume and spike logs")
    g.add_argument("--out", help="run directory for checkpoints, spike log and summary (default runs/latest; "
                                 "with --resume, the checkpoint's directory)")
    g.add_argument("--resume", metavar="CKPT",
                   help="continue the run saved in CKPT (a checkpoint file or run directory) to --epochs "
                        "epochs in total, with its saved config, data and seed")
    g.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also save a checkpoint every N batches (default 0: at the end of each epoch only)")
    g.add_argument("--keep", type=int, default=3, metavar="K", help="numbered checkpoints kept (default 3)")
    g.add_argument("--log-spikes", metavar="N|IDS",
                   help="log input events and spikes of the first N test samples, or of comma-separated "
                        "test sample ids, at each epoch's evaluation into RUN_DIR/spikes.h5")
    g.add_argument("--log-train", action="store_true",
                   help="with --log-spikes, also log the same sample ids of the train split each epoch")
    g.add_argument("--json", help="write the results (metrics per epoch, final accuracy) to this file")
    p.set_defaults(func=run)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def resumed_config(args: argparse.Namespace, saved, path: Path):
    """The saved RunConfig with --epochs / --backend applied; any other run option given is a ConfigError."""
    probe = argparse.ArgumentParser(add_help=False)
    add_run_options(probe)
    run_dests = vars(probe.parse_args([]))
    given = [d for d in run_dests if getattr(args, d, None) is not None and d not in RESUME_ALLOWED]
    if given:
        raise ConfigError(f"{', '.join(map(_flag, given))}: these come from the checkpoint {path} when resuming; "
                          f"with --resume only {', '.join(map(_flag, RESUME_ALLOWED))} and output options "
                          f"(--out, --save-every, --keep, --log-spikes, --json) may be given")
    changes = {d: getattr(args, d) for d in RESUME_ALLOWED if getattr(args, d, None) is not None}
    return saved.replace(train=changes).validate() if changes else saved


def resume_data(info: checkpoint.CheckpointInfo, progress: bool):
    """Load the run's data (as given, else by its saved absolute path) and check its identity."""
    cfg = info.config
    tried = []
    for source in dict.fromkeys([cfg.train.data, info.data_path]):
        try:
            data = datasets.load_for(cfg, source, progress=progress)
        except (GpusnnError, OSError) as e:
            tried.append(f"{source!r}: {e}")
            continue
        if data.identity == info.data_identity:
            return data
        tried.append(f"{source!r} has identity {data.identity}")
    raise CheckpointError(f"{info.path}: the run's data {cfg.train.data!r} (identity {info.data_identity}) "
                          f"cannot be found unchanged: {'; '.join(tried)}")


def data_path(source: str) -> str:
    """What a checkpoint records as the data path: absolute for a file or directory, else the name."""
    p = Path(source)
    return str(p.resolve()) if p.exists() else source


def run(args) -> dict:
    t0 = time.perf_counter()
    resume = checkpoint.resolve(args.resume) if args.resume else None
    if resume is not None:
        saved = checkpoint.read(resume)
        cfg = resumed_config(args, saved.config, resume)
        info = saved.info
        data = resume_data(info, args.progress)
        backend = get_backend(cfg.train.backend)
        state = saved.train_state(backend)
        out = Path(args.out) if args.out else resume.parent
        source = info.data_path
    else:
        cfg, hidden = config_from_args(args)
        cfg.validate()
        data = datasets.load_for(cfg, progress=args.progress)
        cfg = training.with_input_drive(with_data_widths(cfg, hidden, data.train.n_inputs, data.n_classes), data.train)
        backend = get_backend(cfg.train.backend)
        state = training.new_state(cfg, backend)
        out = Path(args.out or "runs/latest")
        source = data_path(cfg.train.data)
    if args.save_every < 0 or args.keep < 1:
        raise ConfigError(f"--save-every must be >= 0 and --keep >= 1, got {args.save_every} and {args.keep}")
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.remove_stale_temps(out)
    log_path = out / "spikes.h5"
    test_ids = train_ids = None
    if args.log_spikes:
        test_ids = spikelog.parse_ids(args.log_spikes, data.test.n_samples)
        if args.log_train:
            train_ids = spikelog.parse_ids(args.log_spikes, data.train.n_samples)
    if resume is not None:
        dropped = spikelog.truncate(log_path, state.epoch)
        if dropped:
            log.info("dropped %d spike-log entries past epoch %d of the checkpoint", dropped, state.epoch)
    log.info("%s %s on %s (%d train / %d test samples, T=%d) with the %s backend",
             f"resuming {resume} at epoch {state.epoch}, step {state.optim.step}:" if resume else "training",
             "-".join(map(str, cfg.network.widths)), data.name, data.train.n_samples,
             data.test.n_samples, cfg.network.n_steps, backend.name)
    saved_paths = []

    def save(st) -> None:
        saved_paths.append(checkpoint.save_run(out, cfg, st, backend, args.keep, data.identity, data.name, source))

    def on_batch(st) -> None:
        if args.save_every and st.optim.step % args.save_every == 0:
            save(st)

    def on_epoch(st) -> None:
        for ids, split in ((test_ids, "test"), (train_ids, "train")):
            if ids is not None:
                spikelog.log_samples(log_path, backend, st.weights, cfg, data, ids, split, st.epoch)
        save(st)

    training.fit(backend, state, cfg, data, on_batch=on_batch, on_epoch=on_epoch, progress=args.progress)
    if not saved_paths and resume is None:
        save(state)
    last = state.history[-1] if state.history else {}
    return {
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
        "epochs": state.epoch, "alpha": cfg.optim.alpha, "lr": cfg.optim.lr, "backend": backend.name,
        "data": data.name, "widths": list(cfg.network.widths), "seconds": time.perf_counter() - t0,
        "history": state.history, "checkpoint": str(out / checkpoint.LATEST), "config": cfg.to_dict(),
        "resumed_from": str(resume) if resume else None,
        "spike_log": str(log_path) if test_ids is not None else None,
    }
