"""Peers run gpusnn's NIR export: Norse 1.1.0 (`norse.torch.from_nir`) and SpikingJelly 2.0.0
(`import_from_nir` with dt = 1) reproduce the NumPy reference's spikes and potentials bit for
bit (dyadic weights, so sums are exact whatever the summation order). Skipped where torch and
the peer are not installed (the `peers` extra)."""
from __future__ import annotations

import nir
import numpy as np
import pytest

from data_tools.spikes import from_dense
from gpusnn import reference
from gpusnn.io import nir as nirio

pytestmark = pytest.mark.peer
torch = pytest.importorskip("torch")

NETS = [((7, 5, 3), 1.0), ((6, 9, 4, 2), 0.75), ((13, 8, 5), 1.25)]


def exported(tmp_path, rng, widths, theta):
    """(path of the exported NIR file, dyadic weights float32 [n_pre, n_post] per layer)."""
    weights = [(rng.integers(-16, 21, (a, b)) / 16).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    return nirio.write(tmp_path / "net.nir", nirio.to_graph(weights, theta, {"format": nirio.FORMAT})), weights


def run_steps(module, x: np.ndarray):
    """Step a peer module (forward(x_t, state) -> (out, state)) over x [B, T, n]; returns the output
    spikes [B, T, n_out] and the final state."""
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, state = module(torch.from_numpy(x[:, t]), state)
            out.append(z.numpy().copy())
    return np.stack(out, 1), state


@pytest.mark.parametrize("widths, theta", NETS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_norse_from_nir_reproduces_gpusnn(tmp_path, widths, theta, seed):
    norse = pytest.importorskip("norse.torch")
    rng = np.random.default_rng(seed)
    path, weights = exported(tmp_path, rng, widths, theta)
    x = (rng.random((6, 20, widths[0])) < 0.4).astype(np.float32)
    records = reference.forward(weights, from_dense(x.astype(np.int32)), theta)
    module = norse.from_nir(nir.read(path))
    state, hidden = None, {f"if{l}": [] for l in range(1, len(weights) + 1)}
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = module(torch.from_numpy(x[:, t]), state)
            for k in hidden:
                hidden[k].append(state.cache[k].numpy().copy())    # the IF node's spikes of this step
    for l, rec in enumerate(records, start=1):
        np.testing.assert_array_equal(np.stack(hidden[f"if{l}"], 1), rec.spikes.to_dense())
        v = state.state[f"if{l}"][0].v.numpy()
        assert v.dtype == np.float32 and v.tobytes() == rec.u_final.tobytes()
    assert records[-1].counts.sum() > 0


@pytest.mark.parametrize("widths, theta", NETS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spikingjelly_import_with_dt_1_reproduces_gpusnn(tmp_path, widths, theta, seed):
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange.from_nir")
    rng = np.random.default_rng(seed)
    path, weights = exported(tmp_path, rng, widths, theta)
    x = (rng.random((6, 20, widths[0])) < 0.4).astype(np.float32)
    records = reference.forward(weights, from_dense(x.astype(np.int32)), theta)
    out, state = run_steps(sj.import_from_nir(path, dt=1.0), x)
    np.testing.assert_array_equal(out, records[-1].spikes.to_dense())
    for l, rec in enumerate(records, start=1):
        v = state[f"if{l}"][0].numpy()
        assert v.dtype == np.float32 and v.tobytes() == rec.u_final.tobytes()
    assert records[-1].counts.sum() > 0


def test_spikingjelly_needs_dt_1(tmp_path):
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange.from_nir")
    path, _ = exported(tmp_path, np.random.default_rng(0), (7, 5, 3), 1.0)
    with pytest.raises(ValueError, match="r must equal 1 / dt"):
        sj.import_from_nir(path)           # its default dt = 1e-4 wants r = 1e4


def test_where_the_peers_compare_differently(tmp_path):
    """One input line, one neuron, weight w. gpusnn fires on v >= theta = 1; the export's
    v_threshold is the float32 below 1. Norse fires on v > v_threshold like NIR, so it agrees
    with gpusnn for every w; SpikingJelly fires on v >= v_threshold, so at exactly
    w = v_threshold it fires where gpusnn does not (the only float32 v where they differ)."""
    norse = pytest.importorskip("norse.torch")
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange.from_nir")
    below = nirio.nir_threshold(1.0)
    for w, gpusnn_fires, sj_fires in [(np.float32(1.0), True, True), (below, False, True),
                                      (np.nextafter(below, np.float32(0)), False, False)]:
        W = np.array([[w]], np.float32)
        path = nirio.write(tmp_path / "one.nir", nirio.to_graph([W], 1.0))
        x = np.ones((1, 1, 1), np.float32)
        rec = reference.forward([W], from_dense(x.astype(np.int32)), 1.0)[0]
        assert bool(rec.counts[0, 0]) is gpusnn_fires
        norse_out, _ = run_steps(norse.from_nir(nir.read(path)), x)
        sj_out, _ = run_steps(sj.import_from_nir(path, dt=1.0), x)
        assert bool(norse_out[0, 0, 0]) is gpusnn_fires
        assert bool(sj_out[0, 0, 0]) is sj_fires
