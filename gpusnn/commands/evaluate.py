"""`gpusnn evaluate`: accuracy and loss of a saved checkpoint on a dataset's test split,
optionally logging the spikes of chosen test samples."""
from __future__ import annotations

import time
from pathlib import Path

from gpusnn import datasets, training
from gpusnn.backends import get_backend
from gpusnn.errors import ShapeError
from gpusnn.io import checkpoint, spikelog


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on the test split",
                       description="Evaluate a checkpoint written by `gpusnn train`.")
    p.add_argument("checkpoint", help="checkpoint file (RUN_DIR/checkpoint.h5) or run directory")
    p.add_argument("--data", help="dataset (default: the one the run was trained on)")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "cuda", "emulated"))
    p.add_argument("--log-spikes", metavar="N|IDS",
                   help="log input events and spikes of the first N test samples, or of comma-separated "
                        "test sample ids, into the spike log (--log)")
    p.add_argument("--log", metavar="FILE", help="spike log to create or append to "
                                                 "(default: spikes-eval.h5 beside the checkpoint)")
    p.add_argument("--json", help="write the results to this file")
    p.set_defaults(func=run)


def run(args) -> dict:
    t0 = time.perf_counter()
    path = checkpoint.resolve(args.checkpoint)
    backend = get_backend(args.backend)
    info, state = checkpoint.load(path, backend)
    cfg = info.config
    data = datasets.load_for(cfg, args.data, progress=args.progress)
    if data.test.n_inputs != cfg.network.widths[0]:
        raise ShapeError(f"{path}: network expects {cfg.network.widths[0]} inputs, "
                         f"data {data.name} has {data.test.n_inputs}")
    ev = training.evaluate(backend, state.weights, data.test, data.test_labels, cfg)
    log_path = None
    if args.log_spikes:
        log_path = Path(args.log) if args.log else path.parent / "spikes-eval.h5"
        ids = spikelog.parse_ids(args.log_spikes, data.test.n_samples)
        spikelog.log_samples(log_path, backend, state.weights, cfg, data, ids, "test", state.epoch)
    return {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"], "n_test": int(len(data.test_labels)),
            "data": data.name, "same_data_as_training": data.identity == info.data_identity,
            "epochs": state.epoch, "backend": backend.name, "checkpoint": str(path),
            "spike_log": None if log_path is None else str(log_path), "seconds": time.perf_counter() - t0}
