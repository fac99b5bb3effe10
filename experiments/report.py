"""Tables (Markdown, printed) and figures (docs/images/sweep_*.png) from experiments/results/*.json
and the benchmark suite's benchmarks/results/training.json.

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
BENCH = Path("benchmarks/results/training.json")  # the benchmark suite's (performance engineer's) file
SAME = ("data", "widths", "alpha", "seed", "epochs", "gradient", "lr", "eps", "factor_clip", "w_max",
        "evaluated_on", "n_train", "n_test")


def cells(name: str) -> list[dict]:
    """The finished cells of experiments/results/NAME.json ([] when the file does not exist yet).
    Cells that differ only in their key (re-runs after the run config gained fields) count once:
    the newest copy is kept."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return []
    out = {}
    for c in sweep.load_results(path)["cells"]:
        if c["status"] == "done":
            out[json.dumps([c.get(f) for f in SAME])] = c
    return list(out.values())


def h(cs: list[dict], *widths: int) -> list[dict]:
    """Cells whose hidden widths are `widths`."""
    return [c for c in cs if tuple(c["widths"][1:-1]) == widths]


def labelled(cs: list[dict], text: str) -> list[dict]:
    """Cells whose plot label (plot_sweep groups by data, widths, epochs, gradient) also says `text`."""
    return [dict(c, gradient=f"{c['gradient']}, {text}") for c in cs]


def at_epoch(cs: list[dict], epoch: int) -> list[dict]:
    """Cells as they stood after `epoch` epochs (from their history): the same numbers a run
    with --epochs epoch gives, because training does not depend on the total epoch count."""
    return [dict(c, epochs=epoch, test_accuracy=c["history"][epoch - 1]["test_accuracy"])
            for c in cs if len(c["history"]) >= epoch]


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
        rows.setdefault(("-".join(map(str, c["widths"])), c["alpha"], c["gradient"]), []).append(
            [h["test_accuracy"] for h in c["history"]])
    n_ep = max(len(h) for v in rows.values() for h in v)
    print("\n| structure | α | gradient | " + " | ".join(f"epoch {e + 1}" for e in range(n_ep)) + " | n |")
    print("|---|---|---|" + "---|" * n_ep + "---|")
    for (w, a, g), hs in sorted(rows.items()):
        hs = [x for x in hs if len(x) == n_ep]
        acc = 100 * np.array(hs)
        std = acc.std(axis=0, ddof=1) if len(hs) > 1 else np.zeros(n_ep)
        print(f"| {w} | {a:g} | {g} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(acc.mean(axis=0), std))
              + f" | {len(hs)} |")


def gains(cs: list[dict]) -> None:
    """Per setting: the best alpha, alpha 1.9 vs alpha 1 (relative, from the seed means), and
    whether the mean curve rises: the number of neighbouring alpha pairs where it falls."""
    rows = sweep.summarize(cs)
    print("\n| setting | best α (mean) | α=1 | α=1.9 | α=1.9 vs α=1, relative | falls between neighbouring α |")
    print("|---|---|---|---|---|---|")
    for g in dict.fromkeys(r["group"] for r in rows):
        rs = {r["alpha"]: r for r in rows if r["group"] == g}
        best = max(rs.values(), key=lambda r: r["mean"])
        falls = [f"{a:g}→{b:g}" for a, b in zip(sorted(rs), sorted(rs)[1:]) if rs[b]["mean"] < rs[a]["mean"]]
        rel = (f"{100 * (rs[1.9]['mean'] / rs[1.0]['mean'] - 1):+.1f} %" if 1.0 in rs and 1.9 in rs else "")
        one = f"{100 * rs[1.0]['mean']:.1f}" if 1.0 in rs else ""
        nine = f"{100 * rs[1.9]['mean']:.1f}" if 1.9 in rs else ""
        print(f"| {g} | {best['alpha']:g} ({100 * best['mean']:.1f}) | {one} | {nine} | {rel} | "
              f"{', '.join(falls) or 'none'} |")


def paired(rate: list[dict], timing: list[dict]) -> None:
    """Rate minus timing test accuracy per seed (same seed = same encoding and initial weights)."""
    t = {(c["alpha"], c["seed"]): c for c in timing}
    print("\n| α | epoch | rate − timing, mean ± std over seeds (points) | seeds where rate > / = / < timing |")
    print("|---|---|---|---|")
    for a in sorted({c["alpha"] for c in rate}):
        pairs = [(c, t[a, c["seed"]]) for c in rate if c["alpha"] == a and (a, c["seed"]) in t]
        for e in (1, len(pairs[0][0]["history"]) if pairs else 1):
            d = 100 * np.array([r["history"][e - 1]["test_accuracy"] - q["history"][e - 1]["test_accuracy"]
                                for r, q in pairs])
            if len(d):
                print(f"| {a:g} | {e} | {d.mean():+.1f} ± {d.std(ddof=1) if len(d) > 1 else 0:.1f} (n={len(d)}) | "
                      f"{(d > 0).sum()} / {(d == 0).sum()} / {(d < 0).sum()} |")


def health(cs: list[dict]) -> None:
    """Non-finite weights and weights pinned at the w_max clamp, over all cells."""
    bad = [c["key"] for c in cs if not c["weights_finite"]]
    clamp = max((max(c["at_clamp"]) for c in cs), default=0.0)
    print(f"\n{len(cs)} cells; non-finite weights in {len(bad)} {bad}; "
          f"largest share of weights at the w_max clamp in any layer: {100 * clamp:.3f} %")


def epochs_to(history_sets: list[list[float]], target: float) -> list[int | None]:
    """For each run's per-epoch accuracies, the first epoch (1-based) reaching target, else None."""
    return [next((i + 1 for i, a in enumerate(hs) if a >= target), None) for hs in history_sets]


def efficiency(gest: list[dict], mnist: list[dict]) -> None:
    """Per-epoch time from the benchmark suite; accuracy per epoch of the BPTT peers
    (experiments/bptt_peer.py) vs gpusnn's at the same data, structure and T; epochs to reach
    given test accuracies."""
    if BENCH.exists():
        b = json.loads(BENCH.read_text())
        w = b["workload"]
        print(f"\n### Benchmark suite, training cost per epoch ({BENCH}, {b['machine']['date']})\n\n"
              f"{'-'.join(map(str, w['widths']))}, {w['samples']} random samples at input density "
              f"{w['density']}, batch {w['batch']}, {w['threads']} thread, gpusnn backend {w['backend']}; "
              f"peers: {w['peers']}.\n")
        print("| T | gpusnn s/epoch | snnTorch s/epoch | SpikingJelly s/epoch | snnTorch / gpusnn | SpikingJelly / gpusnn |")
        print("|---|---|---|---|---|---|")
        for r in b["rows"]:
            print(f"| {r['T']} | {r['gpusnn']['epoch_s']:.3f} | {r['snntorch']['epoch_s']:.3f} | "
                  f"{r['spikingjelly']['epoch_s']:.3f} | {r['snntorch_over_gpusnn_time']:.2f} | "
                  f"{r['spikingjelly_over_gpusnn_time']:.2f} |")
    else:
        print(f"\n{BENCH} not there: no benchmark-suite timing")
    path = RESULTS / "bptt_peer.json"
    peers = json.loads(path.read_text())["cells"] if path.exists() else []
    print("\n### Test accuracy per epoch: gpusnn (FO-STDGD, defaults) vs the BPTT peers, same data and T = 20\n")
    rows = []
    for data, ours in (("synth-gestures", gest), ("mnist5k", mnist)):
        for a in (1.0, 1.5, 1.9):
            hs = [[x["test_accuracy"] for x in c["history"]] for c in h(ours, 500) if c["alpha"] == a]
            if hs:
                rows.append((data, f"gpusnn α={a:g}", hs, [[x["seconds"] for x in c["history"]] for c in h(ours, 500)
                                                          if c["alpha"] == a]))
        for tr in ("snntorch", "spikingjelly"):
            ps = [c for c in peers if c["data"] == data and c["trainer"] == tr]
            if ps:
                rows.append((data, tr, [[x["test_accuracy"] for x in c["history"]] for c in ps],
                             [[x["seconds"] for x in c["history"]] for c in ps]))
    n_ep = max((len(x) for r in rows for x in r[2]), default=0)
    print("| data (1 hidden layer of 500) | trainer | " + " | ".join(f"epoch {e + 1}" for e in range(n_ep))
          + " | n | s/epoch here (median) |")
    print("|---|---|" + "---|" * n_ep + "---|---|")
    for data, name, hs, secs in rows:
        acc = 100 * np.array(hs)
        std = acc.std(axis=0, ddof=1) if len(hs) > 1 else np.zeros(acc.shape[1])
        print(f"| {data} | {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(acc.mean(0), std))
              + f" | {len(hs)} | {np.median(secs):.1f} |")
    print("\nEpochs to reach a test accuracy (per seed; '-' = not within the budget):\n")
    targets = {"synth-gestures": (0.6, 0.7, 0.75, 0.8, 0.85), "mnist5k": (0.8, 0.85, 0.9)}
    print("| data | trainer | " + " | ".join(f"≥{int(100 * t)} %" for t in sorted({t for v in targets.values() for t in v}))
          + " |")
    allt = sorted({t for v in targets.values() for t in v})
    print("|---|---|" + "---|" * len(allt))
    for data, name, hs, _ in rows:
        print(f"| {data} | {name} | " + " | ".join(
            (",".join("-" if e is None else str(e) for e in epochs_to(hs, t)) if t in targets[data] else "")
            for t in allt) + " |")


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    mnist = cells("alpha_mnist_e5")
    gest = cells("alpha_gestures_e5")
    m_both = at_epoch(mnist, 1) + mnist
    g_both = at_epoch(gest, 1) + gest

    print("## Current defaults (lr 0.005, eps 1e-2, factor_clip 5, w_max 4), test split")
    section("MNIST (mnist5k, 1,000 test digits), epoch 1 and epoch 5 of the 5-epoch runs", m_both)
    gains(m_both)
    per_epoch(mnist)
    figure("alpha_mnist", m_both, "mnist5k: test accuracy vs alpha (lr 0.005, eps 1e-2, clip 5)")
    section("Synthetic gestures (synth-gestures v2, 202 test samples), epoch 1 and epoch 5", g_both)
    gains(g_both)
    per_epoch(gest)
    figure("alpha_gestures", g_both, "synth-gestures: test accuracy vs alpha (lr 0.005, eps 1e-2, clip 5)")

    print("\n## Ablation: timing vs rate gradient (1 hidden layer, 5-epoch runs; test)")
    for data, ours, name in (("mnist5k", mnist, "ablation_mnist"), ("synth-gestures", gest, "ablation_gestures")):
        rate = cells(name)
        alphas = {c["alpha"] for c in rate}
        timing = [c for c in h(ours, 500) if c["alpha"] in alphas]
        section(f"{data}: epoch 1 and epoch 5", at_epoch(rate + timing, 1) + rate + timing)
        per_epoch(rate + timing)
        paired(rate, timing)
        figure(name, at_epoch(rate + timing, 1) + rate + timing,
               f"{data} 1 hidden layer: timing vs rate gradient")

    print("\n## What the curve depends on: previous defaults (eps 1e-3, factor_clip 20) and lr, test split")
    prev = cells("prev_alpha_mnist_e1") + cells("prev_alpha_mnist_e3")
    section("MNIST, previous defaults", prev)
    gains(prev)
    per_epoch(cells("prev_alpha_mnist_e3"))
    small = cells("prev_alpha_mnist_lr0005_e1")
    section("MNIST, previous defaults at lr 0.0005 (chosen on validation)", small)
    gains(small)
    pab = cells("prev_ablation_mnist") + [c for c in h(cells("prev_alpha_mnist_e1"), 500) if c["alpha"] in (1.0, 1.5)]
    section("Ablation at the previous defaults (784-500-10, 1 epoch)", pab)
    lrs = cells("lr_sensitivity")
    lrs_both = at_epoch([c for c in lrs if c["data"] == "synth-gestures"], 1) + lrs
    section("Current defaults at lr 0.0005 (sensitivity check, test split)", lrs_both)
    gains(lrs_both)
    settings = (labelled(h(at_epoch(mnist, 1), 500), "lr 0.005, eps 1e-2, clip 5 (now)")
                + labelled([c for c in lrs if c["data"] == "mnist5k"], "lr 0.0005, eps 1e-2, clip 5")
                + labelled(h(cells("prev_alpha_mnist_e1"), 500), "lr 0.005, eps 1e-3, clip 20 (before)")
                + labelled(small, "lr 0.0005, eps 1e-3, clip 20"))
    figure("settings_mnist", settings, "mnist5k 784-500-10, 1 epoch: test accuracy vs alpha per setting")

    print("\n## Tuning (validation split of mnist5k, seed 0, 784-500-10, 1 epoch)")
    lr = cells("tune_mnist_lr")
    section("learning rate (eps 1e-3, clip 20)", lr)
    figure("tune_mnist_lr", labelled(lr, "lr"), "mnist5k validation accuracy vs alpha per learning rate")
    ec = cells("tune_mnist_eps_clip") + [c for c in lr if c["lr"] == 0.005]
    section("eps and factor_clip at lr 0.005", ec)

    print("\n## Robustness and weight health")
    section("extreme orders, current defaults (784-500-10, seed 0, 1 epoch, test)", cells("robustness"))
    health(mnist + gest + cells("ablation_mnist") + cells("ablation_gestures") + cells("robustness")
           + cells("lr_sensitivity"))
    health(prev + small + pab + lr + ec)

    print("\n## Efficiency")
    efficiency(gest, mnist)


if __name__ == "__main__":
    main()
