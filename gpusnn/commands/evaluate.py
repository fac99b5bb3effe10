"""`gpusnn evaluate`: accuracy and loss of a saved checkpoint on a dataset's test split,
optionally logging the spikes of chosen test samples."""
from __future__ import annotations

import logging
import time

from gpusnn import training, workflow
from gpusnn.commands._checks import data_source, output_file
from gpusnn.errors import ShapeError
from gpusnn.io import checkpoint, spikelog

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on the test split",
                       description="Evaluate a checkpoint written by `gpusnn train`.")
    p.add_argument("checkpoint", help="checkpoint file (RUN_DIR/checkpoint.h5) or run directory")
    p.add_argument("--data", help="dataset (default: the one the run was trained on)")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "cuda", "emulated"),
                   help="auto = cuda when a GPU is usable, else numpy (default auto)")
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
    if args.data:
        data_source(args.data)
    if args.log_spikes:
        spikelog.parse_ids(args.log_spikes, 2**62)  # the syntax, before any work
        log_path = output_file(args.log or path.parent / "spikes-eval.h5", "--log")
    backend = workflow.make_backend(args.backend)
    info, state = checkpoint.load(path, backend)
    cfg = info.config
    data = workflow.load_for(cfg, args.data, progress=args.progress)
    widths = cfg.network.widths
    if (data.test.n_inputs, data.n_classes) != (widths[0], widths[-1]):
        raise ShapeError(f"{path}: the network {'-'.join(map(str, widths))} does not fit the data {data.name} "
                         f"({data.test.n_inputs} inputs, {data.n_classes} classes)")
    ev = training.evaluate(backend, state.weights, data.test, data.test_labels, cfg)
    correct = int((ev["predictions"] == data.test_labels).sum())
    print(f"{path} on {data.name}: test accuracy {100 * ev['accuracy']:.1f} % ({correct}/{len(data.test_labels)}), "
          f"test loss {ev['loss']:.4f} ({cfg.method.loss}), epoch {state.epoch}")
    if data.identity != info.data_identity:
        log.warning("%s: evaluated on other data than it was trained on (%s)", path, data.name)
    if args.log_spikes:
        ids = spikelog.parse_ids(args.log_spikes, data.test.n_samples)
        spikelog.log_samples(log_path, backend, state.weights, cfg, data, ids, "test", state.epoch)
        print(f"spike log: {log_path}")
    return {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"], "loss": cfg.method.loss,
            "n_test": int(len(data.test_labels)), "correct": correct,
            "data": data.name, "same_data_as_training": data.identity == info.data_identity,
            "epochs": state.epoch, "backend": backend.name, "checkpoint": str(path),
            "spike_log": str(log_path) if args.log_spikes else None, "seconds": time.perf_counter() - t0}
