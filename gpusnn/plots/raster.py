"""Spike rasters of one sample: input events, every layer's spikes, and DVS frames.

Spikes come as arrays, one pair per layer l (0 = input, 1..L = network layers, L = output):
step int [n] (time steps 1..T) and neuron int [n] (ids 0..widths[l]-1). Input ids follow
the spike log's layout id = (p * H + y) * W + x for input_shape [P, H, W], so polarity
p = id // (H * W) (DVS: 1 = ON, 0 = OFF).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.gridspec import GridSpec
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from gpusnn.errors import ShapeError
from gpusnn.plots import DEFAULT_MAX_POINTS
from gpusnn.plots.figure import PlotError, new_figure, thin

POLARITY_COLOURS = {0: "tab:blue", 1: "tab:red"}  # OFF, ON
WIDTH_IN = 9.0


def layer_name(layer: int, n_layers: int) -> str:
    """'input' for layer 0, 'output' for layer n_layers, else 'hidden l'."""
    return "input" if layer == 0 else "output" if layer == n_layers else f"hidden {layer}"


def class_name(class_names: Sequence[str], c: int | None) -> str:
    """The name of class c, or its number when it has no name; '?' when c is None."""
    if c is None:
        return "?"
    return str(class_names[c]) if 0 <= c < len(class_names) else str(c)


def check_time_range(time_range: tuple[int, int] | None, n_steps: int) -> tuple[int, int]:
    """(first, last) step, both inclusive; the whole window 1..n_steps when None."""
    if time_range is None:
        return 1, n_steps
    a, b = (int(v) for v in time_range)
    if not 1 <= a <= b <= n_steps:
        raise PlotError(f"time range {a}..{b} is not inside the window 1..{n_steps} (first <= last)")
    return a, b


def crop(step: np.ndarray, neuron: np.ndarray, time_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The spikes with first <= step <= last (time_range inclusive)."""
    step, neuron = np.asarray(step), np.asarray(neuron)
    keep = (step >= time_range[0]) & (step <= time_range[1])
    return step[keep], neuron[keep]


def frame_images(step: np.ndarray, ids: np.ndarray, input_shape: Sequence[int], time_range: tuple[int, int],
                 n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Input events summed over n_frames equal time bins of time_range.

    Returns (images float32 [n_frames, H, W]: ON - OFF counts when P == 2, else all counts;
    edges int [n_frames + 1]: frame k holds steps edges[k] .. edges[k + 1] - 1).
    """
    P, H, W = input_shape
    a, b = time_range
    n_frames = min(n_frames, b - a + 1)
    edges = np.linspace(a, b + 1, n_frames + 1).round().astype(int)
    frame = np.searchsorted(edges, step, side="right") - 1
    pixel = ids % (H * W)
    sign = np.where(ids // (H * W) == 1, 1.0, -1.0) if P == 2 else np.ones(len(ids))
    images = np.zeros((n_frames, H * W), np.float32)
    np.add.at(images, (frame, pixel), sign)
    return images.reshape(n_frames, H, W), edges


def _draw_frames(fig, spec, images: np.ndarray, edges: np.ndarray, polar: bool) -> None:
    grid = spec.subgridspec(1, len(images))
    vmax = max(float(np.abs(images).max()), 1.0)
    cmap, vmin = ("bwr", -vmax) if polar else ("Greys", 0.0)
    axes = []
    for k, img in enumerate(images):
        ax = fig.add_subplot(grid[0, k])
        axes.append(ax)
        shown = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"steps {edges[k]}-{edges[k + 1] - 1}", fontsize=8)
    bar = fig.colorbar(shown, ax=axes, shrink=0.9, pad=0.01)
    bar.set_label("ON - OFF events\nper pixel" if polar else "events per pixel", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _scatter(ax, step, neuron, n_neurons: int, n_steps: int, height_in: float, **kw) -> None:
    """Draw spikes as short vertical ticks sized to the neuron rows and time steps."""
    row_pt = height_in * 72 * 0.8 / max(n_neurons, 1)
    step_pt = WIDTH_IN * 72 * 0.85 / max(n_steps, 1)
    ax.scatter(step, neuron, marker="|", s=float(np.clip(row_pt, 1.5, 8)) ** 2,
               linewidths=float(np.clip(step_pt * 0.5, 0.3, 3)), rasterized=True, **kw)


def _note_thinning(ax, shown: int, total: int) -> None:
    ax.text(0.995, 0.97, f"thinned: {shown:,} of {total:,} spikes shown (--max-points)",
            transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox=dict(facecolor="lightyellow", edgecolor="0.6", alpha=0.9))


def _panel_height(layer: int, n_layers: int, n_neurons: int) -> float:
    if layer == 0:
        return 2.6
    if layer == n_layers:
        return max(1.2, 0.17 * n_neurons + 0.4)
    return 1.8


def plot_raster(spikes: Mapping[int, tuple[np.ndarray, np.ndarray]], widths: Sequence[int], n_steps: int, *,
                input_shape: Sequence[int] | None = None, class_names: Sequence[str] = (),
                label: int | None = None, prediction: int | None = None,
                time_range: tuple[int, int] | None = None, n_frames: int = 0,
                max_points: int = DEFAULT_MAX_POINTS, title: str = ""):
    """One sample's spikes as stacked panels sharing the time axis (steps).

    spikes: {layer: (step, neuron)} for the layers to draw (0 = input, len(widths) - 1 =
    output), each int [n]; widths: neurons per layer [n_inputs, n_1, ..., n_L]; n_steps: T;
    input_shape: [P, H, W] of the input (polarity colours, frames); class_names: the output
    neurons' names; label, prediction: class indices for the title; time_range: (first,
    last) steps drawn, inclusive; n_frames: accumulated 2-D input frames above the panels
    (needs layer 0 and a 2-D input_shape); max_points: per panel, more spikes are thinned
    uniformly at random and a note says so. Returns a matplotlib Figure.
    """
    n_layers = len(widths) - 1
    layers = sorted(spikes)
    if not layers:
        raise PlotError("no layers to draw")
    if layers[0] < 0 or layers[-1] > n_layers:
        raise PlotError(f"layers {layers} requested; this network has layers 0 (input) to {n_layers} (output)")
    P, H, W = input_shape if input_shape is not None else (1, 1, widths[0])
    if P * H * W != widths[0]:
        raise ShapeError(f"input shape {P}x{H}x{W} does not hold the {widths[0]} input lines")
    tr = check_time_range(time_range, n_steps)
    cropped = {l: crop(*spikes[l], tr) for l in layers}
    for l, (_, neuron) in cropped.items():
        if neuron.size and (neuron.min() < 0 or neuron.max() >= widths[l]):
            raise ShapeError(f"{layer_name(l, n_layers)} spikes name neurons outside 0..{widths[l] - 1}")

    show_frames = n_frames > 0
    if show_frames and (0 not in cropped or H == 1 or W == 1):
        raise PlotError(f"frames need the input layer (0) and a 2-D input shape; got layers {layers} and "
                        f"input shape {P}x{H}x{W}")
    heights = ([1.8] if show_frames else []) + [_panel_height(l, n_layers, widths[l]) for l in layers]
    fig = new_figure(WIDTH_IN, sum(heights) + 0.7)
    gs = GridSpec(len(heights), 1, figure=fig, height_ratios=heights)
    if show_frames:
        images, edges = frame_images(*cropped[0], (P, H, W), tr, n_frames)
        _draw_frames(fig, gs[0], images, edges, polar=P == 2)

    first = None
    for i, l in enumerate(layers):
        ax = fig.add_subplot(gs[i + show_frames], sharex=first)
        first = first or ax
        step, neuron = cropped[l]
        total = len(step)
        idx = thin(total, max_points)
        if idx is not None:
            step, neuron = step[idx], neuron[idx]
            _note_thinning(ax, len(idx), total)
        h = heights[i + show_frames]
        name = layer_name(l, n_layers)
        ax.set_title(f"{name}: {total:,} spikes", loc="left", fontsize=9)
        if l == 0:
            pol = neuron // (H * W)
            for p in range(P):
                sel = pol == p
                _scatter(ax, step[sel], neuron[sel], widths[0], n_steps, h,
                         color=POLARITY_COLOURS.get(p, "k") if P == 2 else "k",
                         label=("OFF", "ON")[p] if P == 2 else None)
            if P == 2:
                ax.legend(loc="upper left", fontsize=8, markerscale=1.5, framealpha=0.9)
            ax.set_ylabel("input id")
        else:
            _scatter(ax, step, neuron, widths[l], n_steps, h, color="k")
            ax.set_ylabel("class" if l == n_layers else "neuron")
        ax.set_ylim(-0.5, widths[l] - 0.5)
        if l == n_layers and l > 0:
            _label_classes(ax, widths[l], class_names, label, prediction)
        if i < len(layers) - 1:
            ax.tick_params(labelbottom=False)
    first.set_xlim(tr[0] - 0.5, tr[1] + 0.5)
    first.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time step")

    outcome = "" if label is None or prediction is None else (" (correct)" if label == prediction else " (wrong)")
    heading = f"label: {class_name(class_names, label)}    prediction: {class_name(class_names, prediction)}{outcome}"
    fig.suptitle(f"{title}\n{heading}" if title else heading, fontsize=11)
    return fig


def _label_classes(ax, n_classes: int, class_names: Sequence[str], label, prediction) -> None:
    """Class names on the output panel's y axis; the true label's and prediction's rows shaded."""
    ax.set_yticks(range(n_classes), [class_name(class_names, c) for c in range(n_classes)], fontsize=8)
    handles = []
    if label is not None:
        ax.axhspan(label - 0.5, label + 0.5, color="tab:green", alpha=0.18, lw=0)
        handles.append(Patch(color="tab:green", alpha=0.35, label="true label"))
    if prediction is not None and prediction != label:
        ax.axhspan(prediction - 0.5, prediction + 0.5, color="tab:red", alpha=0.18, lw=0)
        handles.append(Patch(color="tab:red", alpha=0.35, label="prediction"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
