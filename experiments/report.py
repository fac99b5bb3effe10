"""Tables (Markdown, printed) and figures (docs/images/sweep_*.png) from experiments/results/*.json.

Run from the repository root after the experiment scripts:  python experiments/report.py
Every number in docs/results.md comes from this script's output.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gpusnn import sweep
from gpusnn.plots import plot_sweep, save_figure

RESULTS = Path("experiments/results")
IMAGES = Path("docs/images")


def cells(name: str) -> list[dict]:
    """The finished cells of experiments/results/NAME.json ([] when the file does not exist yet)."""
    path = RESULTS / f"{name}.json"
    return [c for c in sweep.load_results(path)["cells"] if c["status"] == "done"] if path.exists() else []


def labelled(cs: list[dict], field: str) -> list[dict]:
    """Cells whose plot label (plot_sweep groups by data, widths, epochs, gradient) also names `field`."""
    return [dict(c, gradient=f"{c['gradient']}, {field} {c[field]}") for c in cs]


def at_epoch(cs: list[dict], epoch: int) -> list[dict]:
    """Cells as they stood after `epoch` epochs (from their history): the same numbers a run
    with --epochs epoch gives, because training does not depend on the total epoch count."""
    return [dict(c, epochs=epoch, test_accuracy=c["history"][epoch - 1]["test_accuracy"]) for c in cs]


def figure(name: str, cs: list[dict], title: str) -> None:
    if cs:
        save_figure(plot_sweep(cs, title=title), IMAGES / f"sweep_{name}.png")
        print(f"\n![{title}](images/sweep_{name}.png)")


def section(title: str, cs: list[dict]) -> None:
    if cs:
        print(f"\n### {title}\n\n{sweep.markdown_table(sweep.summarize(cs))}")


def per_epoch(cs: list[dict]) -> None:
    """Test accuracy (%) after each epoch, mean +- std over seeds, per structure and alpha."""
    if not cs:
        return
    rows = {}
    for c in cs:
        rows.setdefault(("-".join(map(str, c["widths"])), c["alpha"]), []).append(
            [h["test_accuracy"] for h in c["history"]])
    n_ep = max(len(h) for v in rows.values() for h in v)
    print("\n| structure | α | " + " | ".join(f"epoch {e + 1}" for e in range(n_ep)) + " |")
    print("|---|---|" + "---|" * n_ep)
    for (w, a), hs in sorted(rows.items()):
        acc = 100 * np.array(hs)
        std = acc.std(axis=0, ddof=1) if len(hs) > 1 else np.zeros(n_ep)
        print(f"| {w} | {a:g} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(acc.mean(axis=0), std)) + " |")


def health(cs: list[dict]) -> None:
    """Non-finite weights and weights pinned at the w_max clamp, over all cells."""
    bad = [c["key"] for c in cs if not c["weights_finite"]]
    clamp = max((max(c["at_clamp"]) for c in cs), default=0.0)
    print(f"\n{len(cs)} cells; non-finite weights in {len(bad)} {bad}; "
          f"largest share of weights at the w_max clamp in any layer: {100 * clamp:.3f} %")


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    mnist = cells("alpha_mnist_e1") + cells("alpha_mnist_e3")
    section("MNIST (mnist5k, 1,000 test digits), default settings", mnist)
    per_epoch(cells("alpha_mnist_e3"))
    figure("alpha_mnist", mnist, "mnist5k: test accuracy vs alpha (lr 0.005, eps 1e-3, clip 20)")
    small = cells("alpha_mnist_lr0005_e1")
    section("MNIST at lr 0.0005 (chosen on validation), test digits", small)
    figure("alpha_mnist_lr0005", labelled(small, "lr") + labelled(
        [c for c in cells("alpha_mnist_e1") if c["widths"] == [784, 500, 10]], "lr"),
        "mnist5k 784-500-10, 1 epoch: test accuracy vs alpha at two learning rates")
    rec = cells("alpha_mnist_recommended_e1")
    section("MNIST with the recommended eps 1e-2, factor_clip 5 (lr 0.005), test digits", rec)
    gest = cells("alpha_gestures_e3")
    gest = at_epoch(gest, 1) + gest
    section("Synthetic gestures (synth-gestures), default settings", gest)
    per_epoch(cells("alpha_gestures_e3"))
    figure("alpha_gestures", gest, "synth-gestures: test accuracy vs alpha")
    ablation = cells("ablation_mnist") + [c for c in cells("alpha_mnist_e1")
                                          if c["alpha"] in (1.0, 1.5) and c["widths"] == [784, 500, 10]]
    section("Ablation: timing vs rate gradient (mnist5k 784-500-10, 1 epoch, test)", ablation)
    lr = cells("tune_mnist_lr")
    section("Tuning: learning rate (validation split, seed 0)", lr)
    figure("tune_mnist_lr", labelled(lr, "lr"), "mnist5k validation accuracy vs alpha per learning rate")
    ec = cells("tune_mnist_eps_clip") + [c for c in lr if c["lr"] == 0.005]
    section("Tuning: eps and factor_clip at lr 0.005 (validation split, seed 0)", ec)
    health(mnist + small + rec + gest + ablation + lr + ec + cells("robustness"))
    section("Robustness: extreme orders", cells("robustness"))
    times = [c["history"][0]["seconds"] / c["n_train"] * 4000 for c in mnist if c["widths"] == [784, 500, 10]]
    if times:
        print(f"\n784-500-10 training time per 4,000-digit epoch over {len(times)} cells: median "
              f"{np.median(times):.1f} s, min {np.min(times):.1f} s (2 shared cores, nice 10)")


if __name__ == "__main__":
    main()
