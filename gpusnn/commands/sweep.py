"""`gpusnn sweep`: accuracy vs fractional order over a grid of alphas, structures, seeds and datasets."""
from __future__ import annotations

import logging
from pathlib import Path

from gpusnn import executors, sweep
from gpusnn.commands._options import add_run_options, config_from_args
from gpusnn.errors import ConfigError
from gpusnn.plots import plot_sweep, save_figure

log = logging.getLogger(__name__)


def _hidden_set(text: str) -> tuple[int, ...]:
    """'500,200' -> (500, 200)."""
    try:
        widths = tuple(int(w) for w in text.split(",") if w)
    except ValueError:
        raise ConfigError(f"hidden set must be comma-separated integers like 500,200, got {text!r}") from None
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


def run(args) -> dict:
    cfg, hidden = config_from_args(args)
    cfg.validate()
    cut = sweep.DataOptions(args.validation, args.limit_train, args.limit_test)
    grid = sweep.Grid(data=tuple(args.datasets or [cfg.train.data]),
                      hidden_sets=tuple(args.hidden_sets or [tuple(hidden)]),
                      alphas=tuple(args.alphas or [cfg.optim.alpha]),
                      seeds=tuple(args.seeds or [cfg.train.seed]), base=cfg, cut=cut)
    for a in grid.alphas:  # fail before any cell runs
        cfg.replace(optim={"alpha": a}).optim.validate()
    if args.executor and args.jobs != 1:
        raise ConfigError(f"give --executor or --jobs, not both (--jobs {args.jobs} is --executor local:{args.jobs})")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    executor = args.executor or f"local:{args.jobs}"
    executors.parse(executor)  # fail before any cell runs
    out = Path(args.out)
    shard = sweep.Shard.parse(args.shard) if args.shard else None
    name = "sweep" if shard is None else f"sweep-shard-{shard.index}-of-{shard.count}"
    results = Path(args.results) if args.results else out / f"{name}.json"
    jobs = grid.jobs() if shard is None else shard.select(grid.jobs())
    log.info("sweep of %d cells%s on %s -> %s", len(jobs), f" (shard {shard})" if shard else "", executor, results)
    doc = sweep.run_sweep(grid, results, executor, shard, progress=args.progress)
    mine = {j["key"] for j in jobs}
    return _report([c for c in doc["cells"] if c["key"] in mine], results, args, out, f"{name}.png",
                   grid=grid.to_dict(), executor=executor, shard=None if shard is None else str(shard))


def run_merge(args) -> dict:
    out = Path(args.out)
    results = Path(args.results) if args.results else out / "sweep.json"
    doc = sweep.merge_results(args.files)
    sweep.write_results(results, doc)
    log.info("merged %d cells of %d files -> %s", len(doc["cells"]), len(args.files), results)
    return _report(doc["cells"], results, args, out, "sweep.png", grid=doc["grid"], merged=list(args.files))


def _report(cells: list[dict], results: Path, args, out: Path, figure_name: str, **extra) -> dict:
    """Draw the figure of cells, log their summary table; the command's JSON-able result.
    No cells (a shard of a job array with more tasks than cells): a warning, no figure."""
    figure = Path(args.figure) if args.figure else out / figure_name
    if cells:
        save_figure(plot_sweep(cells), figure)
    else:
        log.warning("no cells in %s: nothing to plot", results)
        figure = None
    rows = sweep.summarize(cells)
    log.info("accuracy (%%), mean ± std over seeds:\n%s", sweep.markdown_table(rows))
    return {"results": str(results), "figure": figure and str(figure), "cells": len(cells), "summary": rows, **extra}
