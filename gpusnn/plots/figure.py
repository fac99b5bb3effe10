"""Figures without a display: the object-oriented Matplotlib API on the Agg canvas.

Every plotting function in gpusnn.plots returns a `matplotlib.figure.Figure` built here,
so nothing touches pyplot's global state and no display or backend switch is needed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gpusnn.errors import GpusnnError

FORMATS = ("png", "svg", "pdf")
DPI = 110


class PlotError(GpusnnError, ValueError):
    """Plot input that is missing or unusable (the message names the file and what is missing)."""


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of width x height inches on an Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write fig to path; the suffix (.png, .svg or .pdf) picks the format. Returns the path."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(f"{path}: unknown image format {path.suffix!r}; use one of "
                        + ", ".join(f".{f}" for f in FORMATS))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt)
    return path


def thin(n: int, max_points: int, seed: int = 0) -> np.ndarray | None:
    """Indices of at most max_points of n points (uniform, sorted, reproducible), int64 [k];
    None when all n points fit."""
    if n <= max_points:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
