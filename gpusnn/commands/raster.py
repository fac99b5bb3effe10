"""`gpusnn raster`: spike raster of one sample from an HDF5 spike log."""
from __future__ import annotations

from pathlib import Path

from gpusnn.commands._checks import output_file
from gpusnn.plots import DEFAULT_MAX_POINTS
from gpusnn.plots.figure import FORMATS, PlotError

LOG_NAMES = ("spikes.h5", "spikes-eval.h5")  # the spike logs of a run directory, in this order


def register(sub) -> None:
    p = sub.add_parser("raster", help="spike raster of one logged sample",
                       description="Input events and every layer's spikes of one sample of a spike log "
                                   "(gpusnn train --log-spikes), as stacked panels over time steps.")
    p.add_argument("log", metavar="LOG", help="spike log (HDF5) written by gpusnn train --log-spikes or evaluate "
                                            "--log-spikes, or a run directory (its spikes.h5, else spikes-eval.h5)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sample", type=int, metavar="I", help="entry I of the log (0-based row; default 0)")
    which.add_argument("--sample-id", type=int, metavar="ID", help="the entry of dataset sample ID")
    p.add_argument("--epoch", type=int, help="with --sample-id: the epoch (default: the last one logged)")
    p.add_argument("--split", choices=("train", "test"),
                   help="with --sample-id: the split, when the id is logged for both")
    p.add_argument("--layers", type=int, nargs="+", metavar="L",
                   help="layers to draw: 0 = input, 1..L = network layers, L = output (default: all)")
    p.add_argument("--time-range", type=int, nargs=2, metavar=("FIRST", "LAST"),
                   help="steps to draw, inclusive (default: the whole window)")
    p.add_argument("--frames", type=int, default=0, metavar="N",
                   help="also draw N accumulated 2-D frames of the input sensor (default 0)")
    p.add_argument("--max-points", type=int, default=DEFAULT_MAX_POINTS, metavar="N",
                   help=f"thin a panel with more spikes to N, with a note (default {DEFAULT_MAX_POINTS:,})")
    p.add_argument("--out", required=True, help="image file to write (.png, .svg or .pdf)")
    p.add_argument("--json", help="write the results (entry, spikes per panel) to this file")
    p.set_defaults(func=run)


def spike_log(path: str) -> Path:
    """path, or for a run directory the spike log in it."""
    p = Path(path)
    if not p.is_dir():
        return p
    for name in LOG_NAMES:
        if (p / name).is_file():
            return p / name
    raise PlotError(f"{p}: a run directory without a spike log ({' or '.join(LOG_NAMES)}); "
                    f"train or evaluate with --log-spikes N to write one")


def run(args) -> dict:
    from gpusnn.plots import plot_raster, save_figure
    from gpusnn.plots.raster import check_time_range, crop, layer_name
    from gpusnn.plots.sources import read_sample
    output_file(args.out, "--out", FORMATS)
    args.log = str(spike_log(args.log))
    s = read_sample(args.log, args.layers, sample=args.sample, sample_id=args.sample_id,
                    epoch=args.epoch, split=args.split)
    tr = check_time_range(args.time_range, s["n_steps"])
    title = f"{args.log}: entry {s['entry']} (sample {s['sample_id']}, {s['split']}, epoch {s['epoch']})"
    fig = plot_raster(s["spikes"], s["widths"], s["n_steps"], input_shape=s["input_shape"],
                      class_names=s["class_names"], label=s["label"], prediction=s["prediction"],
                      time_range=tr, n_frames=args.frames, max_points=args.max_points, title=title)
    out = save_figure(fig, args.out)
    print(f"wrote {out}")
    n_layers = len(s["widths"]) - 1
    counts = {layer_name(l, n_layers): len(crop(*sp, tr)[0]) for l, sp in s["spikes"].items()}
    return {"figure": str(out), "log": args.log, "time_range": list(tr), "spikes": counts,
            "thinned": [name for name, n in counts.items() if n > args.max_points],
            **{k: s[k] for k in ("entry", "sample_id", "split", "epoch", "label", "prediction")}}
