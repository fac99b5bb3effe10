"""`gpusnn plot training|sweep`: training curves of a run, accuracy vs alpha of a sweep."""
from __future__ import annotations

from pathlib import Path

from gpusnn.commands._checks import output_file
from gpusnn.plots.figure import FORMATS, PlotError

SWEEP_RESULTS = "sweep.json"  # the results file in a sweep directory (gpusnn sweep --out DIR)


def register(sub) -> None:
    p = sub.add_parser("plot", help="plot training curves or sweep results",
                       description="Draw a figure from a training run or a sweep results file.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    t = kinds.add_parser("training", help="loss and accuracy per epoch (train and test)",
                         description="Loss and accuracy per epoch of a training run, train and test.")
    t.add_argument("run", metavar="RUN_OR_CKPT",
                   help="run directory, checkpoint file, or the JSON written by gpusnn train --json")
    t.set_defaults(func=run_training)
    s = kinds.add_parser("sweep", help="test accuracy vs alpha, one line per structure",
                         description="Test accuracy vs fractional order alpha, one line per "
                                     "(data, widths, epochs, gradient); error bars over seeds.")
    s.add_argument("results", metavar="RESULTS", help="sweep results JSON (format gpusnn-sweep), or a sweep "
                                                      "directory (its sweep.json)")
    s.set_defaults(func=run_sweep)
    for q in (t, s):
        q.add_argument("--out", required=True, help="image file to write (.png, .svg or .pdf)")
        q.add_argument("--title", help="figure title (default: from the run or the sweep)")
        q.add_argument("--json", help="write the results (what was drawn) to this file")


def run_training(args) -> dict:
    from gpusnn.plots import plot_training, save_figure
    from gpusnn.plots.sources import load_history
    output_file(args.out, "--out", FORMATS)
    history, title, loss = load_history(args.run)
    out = save_figure(plot_training(history, args.title or title, loss), args.out)
    print(f"wrote {out}")
    return {"figure": str(out), "source": args.run, "epochs": len(history)}


def run_sweep(args) -> dict:
    from gpusnn.plots import plot_sweep, save_figure
    from gpusnn.plots.sources import load_sweep
    output_file(args.out, "--out", FORMATS)
    results = Path(args.results)
    if results.is_dir():
        results = results / SWEEP_RESULTS
        if not results.is_file():
            raise PlotError(f"{args.results}: a directory without {SWEEP_RESULTS}; give a sweep results file "
                            f"or the --out directory of gpusnn sweep")
    args.results = str(results)
    cells = load_sweep(args.results)
    out = save_figure(plot_sweep(cells, args.title or ""), args.out)
    print(f"wrote {out}")
    done = sum(c.get("status", "done") == "done" and c.get("test_accuracy") is not None for c in cells)
    return {"figure": str(out), "source": args.results, "cells": len(cells), "cells_drawn": done}
