"""Per-epoch training curves and accuracy-vs-alpha sweep plots."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from gpusnn.plots.figure import PlotError, new_figure

SPLIT_STYLE = {"train": dict(color="tab:blue", marker="o"), "test": dict(color="tab:orange", marker="s")}
SPLIT_LABEL = {"train": "train (running mean over the epoch)", "test": "test (after the epoch)"}
LOSS_NAMES = {"ce": "softmax cross-entropy", "mse": "mean squared error of the rates"}
SWEEP_KEYS = ("data", "widths", "epochs", "gradient")


def _series(history: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, value) of the epochs that recorded `key` (float64 [k] each)."""
    rows = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
    return np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float)


def plot_training(history: Sequence[dict], title: str = "", loss: str | None = None):
    """Loss and accuracy per epoch, train and test, in two panels sharing the epoch axis.

    history: per-epoch dicts with 'epoch' (1-based) and any of train_loss, test_loss
    (mean loss per sample) and train_accuracy, test_accuracy (fractions 0..1). The train
    values are running means over the epoch's batches (the weights change during the
    epoch), the test values are measured after it, and the legend says so. loss: the
    method's loss option ("ce" or "mse"), named on the loss panel. Returns a matplotlib Figure.
    """
    if not history:
        raise PlotError("the run has no completed epoch to plot")
    fig = new_figure(9.0, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for split, style in SPLIT_STYLE.items():
            x, y = _series(history, f"{split}_{metric}")
            if len(x):
                ax.plot(x, y, label=SPLIT_LABEL[split], **style)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize())
    if loss is not None:
        ax_loss.set_title(f"Loss ({LOSS_NAMES.get(loss, loss)}, mean per sample)")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return fig


def _group_label(key: tuple, names: Sequence[str]) -> str:
    """The parts of a group key named in names, in words: 'mnist5k, 784-500-10, 1 epoch, timing gradient'."""
    epochs = f"{key[2]} epoch" + ("" if key[2] == 1 else "s")
    parts = {"data": str(key[0]), "widths": "-".join(map(str, key[1])), "epochs": epochs,
             "gradient": f"{key[3]} gradient" if key[3] in ("timing", "rate") else str(key[3])}
    return ", ".join(parts[k] for k in names)


def _seeds_label(counts: Sequence[int]) -> str:
    n = sorted(set(counts))
    if n == [1]:
        return "1 seed"
    return f"mean of {n[0]} seeds" if len(n) == 1 else f"mean of {n[0]}-{n[-1]} seeds"


def sweep_groups(cells: Sequence[dict]) -> dict[tuple, dict[float, list[float]]]:
    """Finished cells grouped by (data, widths, epochs, gradient), then alpha: test accuracies."""
    groups: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        if c.get("status", "done") != "done" or c.get("test_accuracy") is None:
            continue
        key = (c.get("data"), tuple(c.get("widths") or ()), c.get("epochs"), c.get("gradient"))
        groups[key][float(c["alpha"])].append(float(c["test_accuracy"]))
    return groups


def plot_sweep(cells: Sequence[dict], title: str = ""):
    """Test accuracy vs fractional order alpha, one line per (data, widths, epochs, gradient).

    cells: sweep result dicts with data, widths, epochs, gradient, alpha, seed, status and
    test_accuracy (fraction 0..1); only cells with status 'done' are drawn. y is the mean
    over seeds; error bars show the sample standard deviation over seeds where a point has
    > 1 seed, and the legend's title says so. Legend entries name what differs between the
    lines and how many seeds each point averages. Returns a matplotlib Figure.
    """
    groups = sweep_groups(cells)
    if not groups:
        raise PlotError("no finished sweep cell with a test accuracy to plot")
    keys = sorted(groups, key=str)
    varying = [name for i, name in enumerate(SWEEP_KEYS) if len({k[i] for k in keys}) > 1]
    common = [name for name in SWEEP_KEYS if name not in varying]
    fig = new_figure(7.0, 4.2)
    ax = fig.subplots()
    any_std = False
    for key in keys:
        alphas = sorted(groups[key])
        accs = [groups[key][a] for a in alphas]
        mean = np.array([np.mean(v) for v in accs])
        std = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in accs])
        any_std |= bool(std.any())
        ax.errorbar(alphas, mean, yerr=std if std.any() else None, marker="o", capsize=3,
                    label=", ".join(filter(None, [_group_label(key, varying), _seeds_label([len(v) for v in accs])])))
    alphas = sorted({a for k in keys for a in groups[k]})
    if len(alphas) <= 12:
        ax.set_xticks(alphas)
    ax.set_xlabel("fractional order alpha")
    ax.set_ylabel("test accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="error bars: std over seeds" if any_std else None, title_fontsize=8)
    ax.set_title(title or "Test accuracy vs alpha" + (f" ({_group_label(keys[0], common)})" if common else ""))
    return fig
