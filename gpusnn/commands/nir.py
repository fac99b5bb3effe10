"""`gpusnn export` and `gpusnn import`: a network as a NIR graph for other simulators and
neuromorphic hardware, and a NIR graph of Linear -> IF layers as a gpusnn run (docs/nir.md)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gpusnn import training, workflow
from gpusnn.backends import get_backend
from gpusnn.commands._checks import data_source, input_file, output_dir, output_file
from gpusnn.commands._options import RUN_FLAGS, add_run_options, read_toml, toml_options
from gpusnn.config import RunConfig
from gpusnn.errors import CheckpointError, ConfigError, ShapeError
from gpusnn.io import checkpoint
from gpusnn.optimizer import init_state

log = logging.getLogger(__name__)

FROM_GRAPH = ("hidden", "theta")   # run options the graph itself fixes


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's network as a NIR graph",
                       description="Write the network of a checkpoint (or the newest one of a run directory) "
                                   "as a NIR graph Input -> Linear -> IF -> ... -> Output (docs/nir.md).")
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help="checkpoint file or run directory")
    p.add_argument("--nir", required=True, metavar="FILE.nir", help="NIR file to write")
    p.add_argument("--json", help="write the results to this file")
    p.set_defaults(func=run_export)

    p = sub.add_parser("import", help="turn a NIR graph of Linear -> IF layers into a gpusnn run",
                       description="Read a NIR graph of Linear (or zero-bias Affine) -> IF layers and save it as "
                                   "the epoch-0 checkpoint of a run directory, which `gpusnn evaluate` and "
                                   "`gpusnn train --resume` accept. The run options (optimiser, T, seed, ...) "
                                   "default to the config recorded by a gpusnn export, else to gpusnn's defaults; "
                                   "widths and theta come from the graph.")
    p.add_argument("nir_file", metavar="FILE.nir", help="NIR file to read")
    p.add_argument("--out", required=True, metavar="RUN", help="new run directory for the checkpoint")
    add_run_options(p)
    p.add_argument("--json", help="write the results to this file")
    p.set_defaults(func=run_import)


def _nir_io():
    """gpusnn.io.nir, imported on use so that the other commands never need the nir package."""
    try:
        from gpusnn.io import nir as nirio
    except ImportError as e:
        raise ConfigError(f"export and import need the nir package ({e}); pip install nir") from e
    return nirio


def run_export(args) -> dict:
    nirio = _nir_io()
    output_file(args.nir, "--nir")
    if args.json:
        output_file(args.json, "--json")
    path = checkpoint.resolve(args.checkpoint)
    ck = checkpoint.read(path)
    graph = nirio.to_graph(ck.weights, ck.config.network.theta, nirio.export_metadata(ck))
    out = nirio.write(args.nir, graph)
    widths = list(ck.config.network.widths)
    log.info("wrote %s: %s IF network, theta %g (NIR v_threshold %r), T = %d, from %s",
             out, "-".join(map(str, widths)), ck.config.network.theta,
             float(nirio.nir_threshold(ck.config.network.theta)), ck.config.network.n_steps, path)
    return {"nir": str(out), "checkpoint": str(path), "widths": widths, "theta": ck.config.network.theta,
            "v_threshold": float(nirio.nir_threshold(ck.config.network.theta)),
            "n_steps": ck.config.network.n_steps, "epoch": ck.epoch, "step": ck.step}


def import_config(net, args) -> RunConfig:
    """The run's config for net (a gpusnn.io.nir.NirNetwork): the graph's recorded config (or
    the defaults) < --config TOML < flags, with widths and theta from the graph."""
    given = [f"--{d.replace('_', '-')}" for d in FROM_GRAPH if getattr(args, d, None) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: the widths and threshold come from the graph {args.nir_file}")
    d = {k: dict(v) for k, v in net.saved_config().items() if isinstance(v, dict)}
    if args.config:
        doc = read_toml(args.config)
        clash = sorted({"widths", "hidden", "theta"} & set(doc.get("network", {})))
        if clash:
            raise ConfigError(f"--config {args.config}: [network] {', '.join(clash)}: these come from the graph "
                              f"{args.nir_file}")
        options, _ = toml_options(doc, args.config)
        for section, table in options.items():
            d.setdefault(section, {}).update(table)
    for dest, (section, key) in RUN_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            d.setdefault(section, {})[key] = None if value == "none" else value
    if not net.saved_config() and args.data is None:
        raise ConfigError(f"{args.nir_file}: the graph does not record the dataset it is meant for; give "
                          f"--data NAME (the data `gpusnn evaluate` and `gpusnn train --resume` will use)")
    d.setdefault("network", {}).update(widths=list(net.widths), theta=net.theta)
    return RunConfig.from_dict(d).validate()


def run_import(args) -> dict:
    nirio = _nir_io()
    input_file(args.nir_file, "FILE.nir")
    out = output_dir(args.out, "--out")
    if args.json:
        output_file(args.json, "--json")
    if args.data is not None:
        data_source(args.data)
    if out.is_dir() and (checkpoint.numbered(out) or (out / checkpoint.LATEST).exists()):
        raise ConfigError(f"--out {out}: this directory already holds checkpoints; import into a new one")
    net = nirio.load(args.nir_file)
    cfg = import_config(net, args)
    data = workflow.load_for(cfg, progress=args.progress)
    try:
        training.check_compatible(cfg, data)
    except ShapeError as e:
        raise ShapeError(f"{args.nir_file}: {e}") from e
    backend = get_backend("numpy")
    state = training.TrainState(net.weights, init_state(net.weights, cfg.optim, np))
    source = str(Path(args.nir_file).resolve())
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"--out {out}: cannot create the run directory ({e})") from e
    path = checkpoint.save_run(out, cfg, state, backend, 1, data.identity, data.name, workflow.data_path(cfg.train.data),
                               imported_from=source)
    log.info("imported %s: %s IF network, theta %g, T = %d, data %s -> %s", args.nir_file,
             "-".join(map(str, cfg.network.widths)), cfg.network.theta, cfg.network.n_steps, data.name, path)
    return {"checkpoint": str(out / checkpoint.LATEST), "nir": source, "widths": list(cfg.network.widths),
            "theta": cfg.network.theta, "n_steps": cfg.network.n_steps, "data": data.name,
            "data_identity": data.identity, "layers": [list(pair) for pair in net.layers]}
