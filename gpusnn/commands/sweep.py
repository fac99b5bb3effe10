"""`gpusnn sweep`: accuracy vs fractional order over a grid of alphas, structures, seeds and datasets."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gpusnn import executors, sweep, workflow
from gpusnn.commands._checks import data_source, output_dir, output_file
from gpusnn.commands._options import add_run_options, config_from_args
from gpusnn.config import OptionError
from gpusnn.errors import ConfigError
from gpusnn.plots import plot_sweep, save_figure
from gpusnn.plots.figure import FORMATS

log = logging.getLogger(__name__)


def _hidden_set(text: str) -> tuple[int, ...]:
    """'500,200' -> (500, 200)."""
    try:
        widths = tuple(int(w) for w in text.split(",") if w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers like 500,200, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"widths must be positive integers, got {text!r}")
    return widths


def register(sub) -> None:
    # conflict_handler="resolve": --data of the run options is replaced by a multi-valued one
    p = sub.add_parser("sweep", conflict_handler="resolve",
                       help="accuracy vs alpha over a grid of alphas x structures x seeds x datasets",
                       description="Train one network per cell of alphas x hidden sets x seeds x datasets "
                                   "with the other run options fixed; resumable; writes DIR/sweep.json "
                                   "and the accuracy-vs-alpha figure DIR/sweep.png.")
    add_run_options(p)
    g = p.add_argument_group("sweep grid (each axis defaults to the single run option)")
    g.add_argument("--data", dest="datasets", nargs="+", help="datasets, e.g. mnist5k synth-gestures")
    g.add_argument("--alphas", type=float, nargs="+", help="fractional orders, e.g. 0.5 1.0 1.9")
    g.add_argument("--hidden-sets", type=_hidden_set, nargs="+",
                   help="hidden widths per structure, comma-separated: 500 500,200")
    g.add_argument("--seeds", type=int, nargs="+", help="seeds, e.g. 0 1 2")
    g = p.add_argument_group("sweep data cut")
    g.add_argument("--validation", type=int, help="evaluate on the last N training samples instead of the "
                                                  "test split (for tuning)")
    g.add_argument("--limit-train", type=int, help="use only the first N training samples")
    g.add_argument("--limit-test", type=int, help="use only the first N test (or validation) samples")
    g = p.add_argument_group("sweep execution (docs/distributed.md)")
    g.add_argument("--executor", help=f"where cells run: {executors.SPEC_HELP} (default local:JOBS)")
    g.add_argument("--jobs", type=int, default=1, help="cells run in this many local processes (default 1); "
                                                       "the same as --executor local:JOBS")
    g.add_argument("--shard", metavar="I/N",
                   help="run only cells I, I+N, I+2N, ... (0 <= I < N; for job arrays) into their own results "
                        "file, OUT/sweep-shard-I-of-N.json; join the shards with `gpusnn sweep merge`")
    _output_options(p, "results file (default OUT/sweep.json); finished cells in it are skipped")
    p.set_defaults(func=run)
    merge = p.add_subparsers(dest="sweep_command", metavar="merge", required=False).add_parser(
        "merge", help="join sweep results files (e.g. the shards of a job array) into one",
        description="Join sweep results files (e.g. OUT/sweep-shard-*-of-N.json) into OUT/sweep.json, "
                    "draw its figure and print its summary.")
    merge.add_argument("files", nargs="+", help="sweep results files")
    _output_options(merge, "merged results file (default OUT/sweep.json)")
    merge.set_defaults(func=run_merge)


def _output_options(p, results_help: str) -> None:
    g = p.add_argument_group("sweep output")
    g.add_argument("--out", default="runs/sweep", help="folder of sweep.json and sweep.png (default runs/sweep)")
    g.add_argument("--results", help=results_help)
    g.add_argument("--figure", help="accuracy-vs-alpha figure, .png/.svg/.pdf (default OUT/sweep.png)")
    g.add_argument("--json", help="write the summary (mean +- std per setting and alpha) to this file")


def _outputs(args, name: str) -> tuple[Path, Path, Path]:
    """(out dir, results file, figure file), checked writable before any work."""
    out = output_dir(args.out, "--out")
    results = output_file(args.results or out / f"{name}.json", "--results")
    figure = output_file(args.figure or out / f"{name}.png", "--figure", FORMATS)
    return out, results, figure


def run(args) -> dict:
    cfg, hidden = config_from_args(args)
    cut = sweep.DataOptions(args.validation, args.limit_train, args.limit_test)
    grid = sweep.Grid(data=tuple(args.datasets or [cfg.train.data]),
                      hidden_sets=tuple(args.hidden_sets or [tuple(hidden)]),
                      alphas=tuple(args.alphas or [cfg.optim.alpha]),
                      seeds=tuple(args.seeds or [cfg.train.seed]), base=cfg, cut=cut)
    for a in grid.alphas:  # fail before any cell runs
        try:
            cfg.replace(optim={"alpha": a}).optim.validate()
        except OptionError as e:
            raise ConfigError(f"--alphas {a:g}: {e.problem}") from None
    for d in grid.data:
        data_source(d)
    workflow.check_backend(cfg.train.backend)
    for flag, value in (("--validation", args.validation), ("--limit-train", args.limit_train),
                        ("--limit-test", args.limit_test)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer, got {value}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {args.jobs}")
    if args.executor and args.jobs != 1:
        raise ConfigError(f"give --executor or --jobs, not both (--jobs {args.jobs} is --executor local:{args.jobs})")
    executor = args.executor or f"local:{args.jobs}"
    executors.parse(executor)
    shard = sweep.Shard.parse(args.shard) if args.shard else None
    name = "sweep" if shard is None else f"sweep-shard-{shard.index}-of-{shard.count}"
    _, results, figure = _outputs(args, name)
    jobs = grid.jobs() if shard is None else shard.select(grid.jobs())
    log.info("sweep of %d cells%s on %s -> %s", len(jobs), f" (shard {shard})" if shard else "", executor, results)
    doc = sweep.run_sweep(grid, results, executor, shard, progress=args.progress)
    mine = {j["key"] for j in jobs}
    return _report([c for c in doc["cells"] if c["key"] in mine], results, figure,
                   grid=grid.to_dict(), executor=executor, shard=None if shard is None else str(shard))


def run_merge(args) -> dict:
    files = [Path(f) for f in args.files]
    _, results, figure = _outputs(args, "sweep")
    doc = sweep.merge_results(files)
    sweep.write_results(results, doc)
    log.info("merged %d cells of %d files -> %s", len(doc["cells"]), len(files), results)
    return _report(doc["cells"], results, figure, grid=doc["grid"], merged=[str(f) for f in files])


def _report(cells: list[dict], results: Path, figure: Path, **extra) -> dict:
    """Draw the figure of cells and print their summary table; the command's JSON-able result.
    No cells (a shard of a job array with more tasks than cells): a warning, no figure."""
    if cells:
        save_figure(plot_sweep(cells), figure)
    else:
        log.warning("no cells in %s: nothing to plot", results)
        figure = None
    rows = sweep.summarize(cells)
    print(f"test accuracy (%), mean ± std over seeds:\n{sweep.markdown_table(rows)}\n"
          f"results: {results}" + (f", figure: {figure}" if figure else ""))
    return {"results": str(results), "figure": figure and str(figure), "cells": len(cells), "summary": rows, **extra}
