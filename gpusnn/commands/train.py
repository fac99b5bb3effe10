"""`gpusnn train`: train a network with FO-STDGD and save checkpoints and a summary."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import checkpoint, datasets, training
from ..backends import get_backend
from ..options import add_run_options, config_from_args, with_data_widths

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network with FO-STDGD",
                       description="Train a nonleaky IF network with FO-STDGD on the given data.")
    add_run_options(p)
    p.add_argument("--out", default="runs/latest", help="run directory for checkpoints and summary "
                                                         "(default runs/latest)")
    p.add_argument("--json", help="write the results (metrics per epoch, final accuracy) to this file")
    p.set_defaults(func=run)


def run(args) -> dict:
    cfg, hidden = config_from_args(args)
    cfg.validate()
    t0 = time.perf_counter()
    data = datasets.load(cfg.train.data, cfg.network.n_steps, cfg.train.seed, progress=args.progress)
    cfg = with_data_widths(cfg, hidden, data.train.n_inputs, data.n_classes)
    backend = get_backend(cfg.train.backend)
    out = Path(args.out)
    state = training.new_state(cfg, backend)
    log.info("training %s on %s (%d train / %d test samples, T=%d) with the %s backend",
             "-".join(map(str, cfg.network.widths)), data.name, data.train.n_samples,
             data.test.n_samples, cfg.network.n_steps, backend.name)

    def save(st):
        checkpoint.save(out / "checkpoint.h5", cfg, st, backend, data.identity, data.name)

    training.fit(backend, state, cfg, data, on_epoch=save, progress=args.progress)
    if not state.history:
        save(state)
    last = state.history[-1] if state.history else {}
    return {
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
        "epochs": state.epoch, "alpha": cfg.optim.alpha, "lr": cfg.optim.lr, "backend": backend.name,
        "data": data.name, "widths": list(cfg.network.widths), "seconds": time.perf_counter() - t0,
        "history": state.history, "checkpoint": str(out / "checkpoint.h5"), "config": cfg.to_dict(),
    }
