"""The kernel backends end to end: a whole training epoch on the emulated backend (and on
cuda where a GPU exists) matches the numpy backend.

Tolerances (stated, and why): the forward pass agrees spike for spike (same float order);
the gradients differ from the reference by float32 summation order (~1e-7 relative), which
the update turns into weight differences up to lr * factor_clip * that. Weights must agree
within 1e-5 (alpha = 1) and 2e-4 (alpha > 1: the fractional factor amplifies them up to
factor_clip times) of the weight scale. Predictions must be equal except at threshold ties:
the mismatches are counted, at most 2 % of the samples, and each must be a near tie (the
two classes' rates within 2 / T in the numpy result).
"""
from __future__ import annotations

import numpy as np
import pytest

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.backends.gpu import GpuBackend
from gpusnn.config import RunConfig
from data_tools.spikes import EncodedDataset, from_dense

BACKENDS = ["emulated", pytest.param("cuda", marks=pytest.mark.gpu)]


def random_dataset(seed: int, n: int = 128, T: int = 16, n_in: int = 2048, C: int = 11) -> EncodedDataset:
    """Bernoulli spikes at 5 % density with random labels (the cost workload of benchmarking.md)."""
    rng = np.random.default_rng(seed)
    X = from_dense((rng.random((n, T, n_in)) < 0.05).astype(np.int32))
    y = rng.integers(0, C, n)
    test = np.arange(min(32, n))
    return EncodedDataset("random", X, y, X.select(test), y[test], C, tuple(map(str, range(C))), f"rand{seed}", {})


def run_epoch(name: str, cfg: RunConfig, data: EncodedDataset):
    backend = get_backend(name)
    state = training.new_state(cfg, backend)
    metrics = training.train_epoch(backend, state, cfg, data, progress=False)
    rho = training.predict(backend, state.weights, data.train, cfg)
    return [np.asarray(backend.asnumpy(W)) for W in state.weights], metrics, rho


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("optim, wtol", [({"alpha": 1.0}, 1e-5), ({"alpha": 1.7, "grad_at": "previous"}, 2e-4)],
                         ids=["alpha1", "alpha1.7-prev"])
def test_epoch_matches_numpy(name, optim, wtol):
    T = 16
    cfg = RunConfig().replace(network={"widths": [2048, 64, 11], "n_steps": T, "theta": 0.5},
                              train={"batch_size": 32, "epochs": 1}, optim=optim)
    data = random_dataset(5)
    W_ref, m_ref, rho_ref = run_epoch("numpy", cfg, data)
    W, m, rho = run_epoch(name, cfg, data)
    for a, b in zip(W, W_ref):
        assert np.abs(a - b).max() <= wtol * np.abs(b).max()
    assert m["spikes_per_sample"][0] > 10 and m["spikes_per_sample"][1] > 1, "the network must be active"
    assert abs(m["train_loss"] - m_ref["train_loss"]) <= 1e-3 * abs(m_ref["train_loss"])
    pred, pred_ref = rho.argmax(1), rho_ref.argmax(1)
    ties = np.nonzero(pred != pred_ref)[0]
    assert len(ties) <= 0.02 * len(pred)
    gaps = np.abs(rho_ref[ties, pred[ties]] - rho_ref[ties, pred_ref[ties]])
    assert np.all(gaps <= 2.0 / T), gaps


@pytest.mark.parametrize("name", BACKENDS)
def test_interface_contract(name):
    """Types and places of what the trainer gets back."""
    backend = GpuBackend(name)
    data = random_dataset(0, n=4, T=4, n_in=64, C=3)
    rng = np.random.default_rng(0)
    weights = [backend.asarray(rng.uniform(-0.3, 0.6, s).astype(np.float32)) for s in ((64, 20), (20, 7), (7, 3))]
    records = backend.forward(weights, data.train, 0.5)
    assert all(isinstance(r.counts, backend.xp.ndarray) and isinstance(r.spikes.grid, backend.xp.ndarray)
               for r in records)
    from gpusnn.config import MethodConfig
    loss, rho, grads = backend.gradients(weights, data.train, records, data.train_labels, 4, 0.5, MethodConfig())
    assert isinstance(loss, backend.xp.ndarray) and loss.dtype == np.float64 and loss.shape == (4,)
    assert isinstance(rho, backend.xp.ndarray) and rho.shape == (4, 3)
    assert [g.shape for g in grads] == [(64, 20), (20, 7), (7, 3)]
    h_loss, h_rho, spikes = backend.host_results(loss, rho, records)
    assert type(h_loss) is np.ndarray and h_loss.dtype == np.float64 and h_loss.shape == (4,)
    assert type(h_rho) is np.ndarray and h_rho.dtype == np.float32 and h_rho.shape == (4, 3)
    assert len(spikes) == 3 and all(type(n) is int for n in spikes)
    assert backend.name == name and get_backend("auto").name in ("numpy", "cuda")


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
def test_gesture_epoch_matches_numpy(name, gesture_cache):
    """A whole epoch on the bundled synthetic gestures (default encoding, 2048-500-11), same
    tolerances as above."""
    from data_tools.datasets import load_dataset
    base = RunConfig()
    t = base.train
    data = load_dataset("synth-gestures", n_steps=base.network.n_steps, downsample=t.downsample,
                        binning=t.binning, mode=t.encoding, cache_dir=gesture_cache, progress=False)
    cfg = base.replace(network={"widths": [2048, 500, 11]}, train={"epochs": 1})
    W_ref, m_ref, rho_ref = run_epoch("numpy", cfg, data)
    W, m, rho = run_epoch(name, cfg, data)
    for a, b in zip(W, W_ref):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()
    assert abs(m["train_accuracy"] - m_ref["train_accuracy"]) <= 0.02
    pred, pred_ref = rho.argmax(1), rho_ref.argmax(1)
    ties = np.nonzero(pred != pred_ref)[0]
    print(f"{len(ties)} of {len(pred)} predictions differ (threshold ties)")
    assert len(ties) <= 0.02 * len(pred)
    gaps = np.abs(rho_ref[ties, pred[ties]] - rho_ref[ties, pred_ref[ties]])
    assert np.all(gaps <= 2.0 / cfg.network.n_steps), gaps
