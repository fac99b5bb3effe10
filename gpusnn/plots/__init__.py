"""Plots of what a network did, as Matplotlib Figures (Agg canvas, no display needed).

    plot_raster(spikes, widths, n_steps, ...)   one sample: input events, layer spikes, frames
    plot_training(history)                      loss and accuracy per epoch, train and test
    plot_sweep(cells)                           test accuracy vs alpha, one line per structure
    save_figure(fig, path)                      .png, .svg or .pdf by suffix

gpusnn.plots.sources reads the inputs of these from files (spike logs, checkpoints, run
summaries, sweep results); the `gpusnn raster` and `gpusnn plot` commands join the two.
The names load on first use, so importing this package (as every CLI call does) does
not import Matplotlib.
"""
from importlib import import_module

DEFAULT_MAX_POINTS = 200_000  # spikes drawn per raster panel before thinning

_API = {"plot_raster": "raster", "plot_training": "curves", "plot_sweep": "curves",
        "save_figure": "figure", "PlotError": "figure", "FORMATS": "figure"}
__all__ = ["DEFAULT_MAX_POINTS", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
