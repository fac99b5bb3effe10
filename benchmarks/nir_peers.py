"""How exactly other simulators run gpusnn's NIR export of a trained network (not a test).

Trains (or takes) a gpusnn checkpoint, exports it with `gpusnn export`, runs the test split
through the NumPy reference and through each installed peer's NIR import, and counts where
they disagree: samples whose spike trains differ in any layer, differing spikes, the largest
difference of the final potentials, and predictions (argmax of (n + u(T) / theta) / T). The
trained float32 weights are run as they are (a peer sums in another order, so potentials may
differ in the last bits) and rounded to multiples of 2^-10 (dyadic: every sum is exact, so
any disagreement is a semantic one).

usage: PYTHONPATH=. python benchmarks/nir_peers.py [--checkpoint RUN | --hidden H] [--samples N] [--out FILE.json]
Needs torch and the peers (pip install ".[peers]"; snnTorch optional).
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, versions
from gpusnn import reference, workflow
from gpusnn.cli import main as gpusnn_main
from gpusnn.io import checkpoint
from gpusnn.io import nir as nirio

log = logging.getLogger("nir_peers")


def peer_versions() -> dict:
    """Versions of the NIR packages and peers this interpreter has (absent ones left out)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ("nir", "nirtorch", "norse", "spikingjelly", "snntorch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def step_module(module, x: np.ndarray, observe) -> tuple[list, object]:
    """Step a NIR-imported torch module (forward(x_t, state) -> (out, state)) over x float32
    [B, T, n_in]; observe(out, state) -> list of per-layer spike arrays [B, n] of the step.
    Returns (per-layer spikes [B, T, n], final state)."""
    import torch
    state, steps = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = module(torch.from_numpy(x[:, t]), state)
            steps.append(observe(out, state))
    return [np.stack([s[l] for s in steps], 1) for l in range(len(steps[0]))], state


def peer_runs(path: Path, n_layers: int) -> dict:
    """name -> run(x float32 [B, T, n_in]) -> (spikes per layer [B, T, n] or None where the peer
    does not show them, final potentials per layer [B, n]), for every installed peer."""
    import nir
    layers = [f"if{l}" for l in range(1, n_layers + 1)]
    runs = {}
    try:
        import norse.torch as norse

        def run_norse(x):
            spikes, st = step_module(norse.from_nir(nir.read(path)), x,
                                     lambda out, st: [st.cache[k].numpy().copy() for k in layers])
            return spikes, [st.state[k][0].v.numpy() for k in layers]
        runs["norse"] = run_norse
    except ImportError as e:
        log.warning("norse not installed: %s", e)
    try:
        from spikingjelly.activation_based.nir_exchange.from_nir import import_from_nir

        def run_sj(x):
            spikes, st = step_module(import_from_nir(path, dt=1.0), x, lambda out, st: [out.numpy().copy()])
            return [None] * (n_layers - 1) + spikes, [st[k][0].numpy() for k in layers]
        runs["spikingjelly"] = run_sj
    except ImportError as e:
        log.warning("spikingjelly not installed: %s", e)
    try:
        from snntorch.import_nir import import_from_nir as snn_import

        def run_snntorch(x):
            spikes, _ = step_module(snn_import(nir.read(path)), x, lambda out, st: [out.numpy().copy()])
            return [None] * (n_layers - 1) + spikes, None
        runs["snntorch"] = run_snntorch
    except ImportError as e:
        log.warning("snntorch not installed: %s", e)
    return runs


def compare(weights, theta, T, x, labels, path) -> dict:
    """Reference vs every peer on input x int32 [B, T, n_in] with labels int [B]; weights float32
    [n_pre, n_post] per layer; path: their NIR export."""
    from data_tools.spikes import from_dense
    recs = reference.forward(weights, from_dense(x), theta)
    pred = reference.readout(recs[-1].counts, recs[-1].u_final, theta, T).argmax(1)
    out = {"spikes_per_sample": [float(r.counts.sum()) / x.shape[0] for r in recs]}
    for name, run in peer_runs(path, len(weights)).items():
        t0 = time.perf_counter()
        try:
            spikes, u = run(x.astype(np.float32))
        except Exception as e:   # a peer that cannot run the graph is a result, not a crash
            out[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        same = np.ones(x.shape[0], bool)
        diff_spikes = 0
        for s, r in zip(spikes, recs):
            if s is None:
                continue
            d = s.astype(bool) != r.spikes.to_dense().astype(bool)
            same &= ~d.reshape(x.shape[0], -1).any(1)
            diff_spikes += int(d.sum())
        counts = spikes[-1].sum(1).astype(np.int32)
        peer_pred = (reference.readout(counts, u[-1], theta, T) if u is not None else counts).argmax(1)
        out[name] = {
            "samples_identical": int(same.sum()), "samples": int(x.shape[0]),
            "layers_compared": [l + 1 for l, s in enumerate(spikes) if s is not None],
            "differing_spikes": diff_spikes,
            "max_abs_u_difference": None if u is None else
            max(float(np.abs(a - r.u_final).max()) for a, r in zip(u, recs)),
            "u_bitwise_equal": None if u is None else all(a.tobytes() == r.u_final.tobytes() for a, r in zip(u, recs)),
            "predictions_agree": int((peer_pred == pred).sum()),
            "peer_test_accuracy": float((peer_pred == labels).mean()),
            "gpusnn_test_accuracy": float((pred == labels).mean()),
            "seconds": time.perf_counter() - t0,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="gpusnn checkpoint or run directory (default: train 784-HIDDEN-10 "
                                         "on mnist5k for 1 epoch)")
    ap.add_argument("--hidden", type=int, default=500, help="hidden width of the trained network (default 500)")
    ap.add_argument("--samples", type=int, default=1000, help="test samples compared (default 1000)")
    ap.add_argument("--out", default=str(RESULTS / "nir_peers.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="nir-peers-"))
    train_cmd = None
    if args.checkpoint is None:
        train_cmd = ["-q", "train", "--data", "mnist5k", "--hidden", str(args.hidden), "--epochs", "1",
                     "--backend", "numpy", "--out", str(tmp / "run")]
        assert gpusnn_main(train_cmd) == 0
        args.checkpoint = str(tmp / "run")
    ck = checkpoint.read(checkpoint.resolve(args.checkpoint))
    cfg = ck.config
    data = workflow.load_for(cfg, progress=False)
    test = data.test
    n = min(args.samples, test.n_samples)
    x = test.to_dense()[:n]
    labels = np.asarray(data.test_labels)[:n]
    T, theta = cfg.network.n_steps, cfg.network.theta
    results = {"machine": "shared 2-core CPU development machine (loaded by other jobs); CPU only",
               "versions": {**versions(), **peer_versions()}, "checkpoint": str(ck.path),
               "widths": list(cfg.network.widths),
               "T": T, "theta": theta, "data": data.name, "test_samples": n,
               "train_command": None if train_cmd is None else "gpusnn " + " ".join(train_cmd),
               "command": "PYTHONPATH=. python benchmarks/nir_peers.py"}
    assert gpusnn_main(["-q", "export", str(ck.path), "--nir", str(tmp / "trained.nir")]) == 0
    results["trained_float32"] = compare(ck.weights, theta, T, x, labels, tmp / "trained.nir")
    dyadic = [(np.round(W * 1024) / 1024).astype(np.float32) for W in ck.weights]
    nirio.write(tmp / "dyadic.nir", nirio.to_graph(dyadic, theta))
    results["rounded_to_2^-10"] = compare(dyadic, theta, T, x, labels, tmp / "dyadic.nir")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
