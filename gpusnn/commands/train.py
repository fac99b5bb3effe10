"""`gpusnn train`: train a network with FO-STDGD, saving checkpoints (and spike logs), or
resume a saved run with --resume. The workflow is gpusnn.workflow; this module parses, checks
paths and prints."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from gpusnn import distributed, workflow
from gpusnn.backends import resolve_name
from gpusnn.commands._checks import data_source, output_dir
from gpusnn.commands._options import (
    RUN_FLAGS,
    add_run_options,
    config_from_args,
    nonnegative_int,
    positive_int,
)
from gpusnn.errors import ConfigError
from gpusnn.io import spikelog


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
                        "epochs in total, with its saved config, data and seed (only --epochs, --backend and --cuda-graph may change)")
    g.add_argument("--overwrite", action="store_true",
                   help="train into an --out that holds another run, deleting that run's checkpoints and "
                        "spike logs first (without it such an --out is refused)")
    g.add_argument("--save-every", type=nonnegative_int, default=0, metavar="N",
                   help="also save a checkpoint every N batches (default 0: at the end of each epoch only)")
    g.add_argument("--keep", type=positive_int, default=3, metavar="K", help="numbered checkpoints kept (default 3)")
    g.add_argument("--log-spikes", metavar="N|IDS",
                   help="log input events and spikes of the first N test samples, or of comma-separated "
                        "test sample ids, at each epoch's evaluation into RUN_DIR/spikes.h5")
    g.add_argument("--log-train", action="store_true",
                   help="with --log-spikes, also log the same sample ids of the train split each epoch")
    g.add_argument("--json", help="write the results (metrics per epoch, final accuracy) to this file")
    g = p.add_argument_group("GPU step")
    g.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="run each training step as one captured CUDA graph (--backend cuda only; same results; "
                        "default off: its gain is not yet measured on a GPU); --no-cuda-graph turns a saved "
                        "run's off when resuming")
    g = p.add_argument_group("data-parallel training (docs/distributed.md)")
    g.add_argument("--distributed", action="store_true",
                   help="one rank of `mpiexec -n P gpusnn train --distributed ...`: each rank trains on its share "
                        "of every batch, gradients summed over MPI (cuda backend: NCCL, one GPU per rank); "
                        "rank 0 alone writes files")
    g.add_argument("--comm-timeout", type=float, default=distributed.DEFAULT_TIMEOUT, metavar="S",
                   help="with --distributed: abort all ranks when one collective waits longer than S seconds "
                        f"(default {distributed.DEFAULT_TIMEOUT:g})")
    p.set_defaults(func=run)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def resume_changes(args: argparse.Namespace, path) -> dict:
    """The [train] options --resume may change (--epochs, --backend) as given; any other run
    option given is a ConfigError naming the flags."""
    given = [d for d in (*RUN_FLAGS, "hidden", "config") if getattr(args, d, None) is not None
             and d not in workflow.RESUME_CHANGES]
    if given:
        raise ConfigError(f"{', '.join(map(_flag, given))}: these come from the checkpoint {path} when resuming; "
                          f"with --resume only {', '.join(map(_flag, workflow.RESUME_CHANGES))} and output "
                          f"options (--out, --save-every, --keep, --log-spikes, --json) may be given")
    return {d: getattr(args, d) for d in workflow.RESUME_CHANGES if getattr(args, d, None) is not None}


def connect(args, backend: str, stack: contextlib.ExitStack):
    """With --distributed, this rank's communicator (connected before the backend is built:
    NCCL picks the rank's GPU), guarded for the rest of stack; None without."""
    if not args.distributed:
        return None
    workflow.check_backend(backend)
    return stack.enter_context(distributed.guard(distributed.connect(resolve_name(backend), args.comm_timeout)))


def run(args) -> dict | None:
    """Train (or resume); with --distributed as one rank of the job (None on ranks other than 0,
    which write nothing)."""
    with contextlib.ExitStack() as stack:
        return _run(args, stack)


def _run(args, stack: contextlib.ExitStack) -> dict | None:
    if args.log_spikes:
        spikelog.parse_ids(args.log_spikes, 2**62)  # the syntax, before any work
    extra = [Path(args.json)] if args.json else []
    if args.resume:
        saved, cfg = workflow.read_resume(args.resume, resume_changes(args, args.resume))
        workflow.check_cuda_graph(cfg.train, args.distributed)
        comm = connect(args, cfg.train.backend, stack)
        out = output_dir(args.out or saved.path.parent, "--out")
        if args.overwrite and out.resolve() == saved.path.parent.resolve():
            raise ConfigError(f"--overwrite would delete the run {out} that --resume continues")
        if workflow.is_root(comm):
            workflow.claim_out_dir(out, args.overwrite, resuming=saved.path, extra=extra)
        run_ = workflow.prepare_resume(saved, cfg, out, args.progress, comm)
    else:
        cfg, hidden = config_from_args(args)
        data_source(cfg.train.data)
        workflow.check_backend(cfg.train.backend)
        workflow.check_cuda_graph(cfg.train, args.distributed)
        comm = connect(args, cfg.train.backend, stack)
        out = output_dir(args.out or "runs/latest", "--out")
        if workflow.is_root(comm):
            workflow.claim_out_dir(out, args.overwrite, extra=extra)
        run_ = workflow.prepare_new(cfg, hidden, out, args.progress, comm)
    res = workflow.run_training(run_, args.save_every, args.keep, args.log_spikes, args.log_train, args.progress)
    if res is not None and res["test_accuracy"] is not None:
        print(f"epoch {res['epochs']}: test accuracy {100 * res['test_accuracy']:.1f} %, test loss "
              f"{res['test_loss']:.4f} ({res['loss']}); training {res['seconds']:.1f} s, data "
              f"{res['data_seconds']:.1f} s; checkpoint {res['checkpoint'] or 'unchanged'}")
    return res
