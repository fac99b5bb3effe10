"""NIR export and import (gpusnn.io.nir, `gpusnn export` / `gpusnn import`).

The exported file is read back with nir.read and run by a small NIR interpreter written here
from the NIR definitions alone (IF: dv/dt = R I integrated by Euler steps of dt = 1, a spike
when v > v_threshold, then v = v_reset; Linear: y = W x with W [out, in]; every node sees its
source's output of the same step). Weights are dyadic (multiples of 1/16) so every sum is
exact in any precision and spike trains and potentials must agree bit for bit with the
NumPy reference forward; the networks are non-square, so a missed transpose fails.
"""
from __future__ import annotations

import gzip
import json

import h5py
import nir
import numpy as np
import pytest

from data_tools.mnist import mnist5k_arrays
from data_tools.spikes import from_dense
from gpusnn import reference
from gpusnn.backends import get_backend
from gpusnn.cli import main
from gpusnn.config import RunConfig
from gpusnn.errors import DataFormatError
from gpusnn.io import checkpoint
from gpusnn.io import nir as nirio
from gpusnn.optimizer import init_state
from gpusnn.training import TrainState

NETS = [((7, 5, 3), 1.0), ((6, 9, 4, 2), 0.75), ((11, 2), 1.5)]


def dyadic_weights(rng, widths) -> list[np.ndarray]:
    """float32 [n_pre, n_post] per layer, multiples of 1/16 in [-1, 1.25]."""
    return [(rng.integers(-16, 21, (a, b)) / 16).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]


def save_ckpt(path, weights, theta, T, seed=3, grad_at="current"):
    widths = (weights[0].shape[0], *(W.shape[1] for W in weights))
    cfg = RunConfig().replace(network={"widths": widths, "theta": theta, "n_steps": T},
                              train={"seed": seed, "data": "synth-data"}, optim={"grad_at": grad_at})
    state = TrainState([W.copy() for W in weights], init_state(weights, cfg.optim, np))
    return checkpoint.save(path, cfg.validate(), state, get_backend("numpy"), "abc123", "synth-data", "synth-data")


# ----------------------------------------------------------------------------- the interpreter

def interpret(graph: nir.NIRGraph, x: np.ndarray) -> dict:
    """Run a NIR graph on input x float [B, T, n_in]: {IF node: (spikes bool [B, T, n], v [B, n])}.

    Each step visits the nodes in topological order, so a node gets its source's output of
    the same step. Only Input, Linear, Affine, IF and Output are interpreted.
    """
    preds = {k: [a for a, b in graph.edges if b == k] for k in graph.nodes}
    order, seen = [], set()
    while len(order) < len(graph.nodes):
        for k in graph.nodes:
            if k not in seen and all(p in seen for p in preds[k]):
                order.append(k)
                seen.add(k)
    B, T, _ = x.shape
    v = {k: np.zeros((B, np.asarray(n.r).size)) for k, n in graph.nodes.items() if isinstance(n, nir.IF)}
    spikes = {k: np.zeros((B, T, a.shape[1]), bool) for k, a in v.items()}
    dt = 1.0
    for t in range(T):
        out = {}
        for k in order:
            node = graph.nodes[k]
            inp = sum(out[p] for p in preds[k]) if preds[k] else None
            if isinstance(node, nir.Input):
                out[k] = x[:, t].astype(np.float64)
            elif isinstance(node, nir.Affine):
                out[k] = inp @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias, np.float64)
            elif isinstance(node, nir.Linear):
                out[k] = inp @ np.asarray(node.weight, np.float64).T
            elif isinstance(node, nir.IF):
                v[k] = v[k] + dt * np.asarray(node.r, np.float64) * inp
                z = v[k] > np.asarray(node.v_threshold, np.float64)
                v[k] = np.where(z, np.asarray(node.v_reset, np.float64), v[k])
                spikes[k][:, t] = z
                out[k] = z.astype(np.float64)
            elif isinstance(node, nir.Output):
                out[k] = inp
            else:
                raise AssertionError(f"the test interpreter has no rule for {type(node).__name__}")
    return {k: (spikes[k], v[k]) for k in v}


@pytest.mark.parametrize("widths, theta", NETS)
@pytest.mark.parametrize("seed", [0, 1])
def test_exported_graph_runs_spike_exact_with_the_reference(tmp_path, widths, theta, seed):
    rng = np.random.default_rng(seed)
    weights = dyadic_weights(rng, widths)
    T, B = 16, 5
    ck_path = save_ckpt(tmp_path / "c.h5", weights, theta, T)
    assert main(["-q", "export", str(ck_path), "--nir", str(tmp_path / "n.nir")]) == 0
    graph = nir.read(tmp_path / "n.nir")
    x = (rng.random((B, T, widths[0])) < 0.4).astype(np.int32)
    records = reference.forward(weights, from_dense(x), theta)
    got = interpret(graph, x)
    assert len(got) == len(records)
    for l, rec in enumerate(records, start=1):
        spikes, v = got[f"if{l}"]
        np.testing.assert_array_equal(spikes, rec.spikes.to_dense().astype(bool))
        np.testing.assert_array_equal(v.astype(np.float32), rec.u_final)
        assert v.astype(np.float32).tobytes() == rec.u_final.tobytes()
    assert sum(rec.counts.sum() for rec in records) > 0


def test_ties_at_theta_are_exercised_and_need_the_nextafter_threshold(tmp_path):
    """With v_threshold = theta the strict comparison would miss every v == theta: the spike-exact
    test above would then fail, so it really checks the threshold rule."""
    rng = np.random.default_rng(5)
    weights = dyadic_weights(rng, (7, 5, 3))
    x = (rng.random((8, 16, 7)) < 0.4).astype(np.int32)
    records = reference.forward(weights, from_dense(x), 1.0)
    naive = nirio.to_graph(weights, 1.0)
    for node in naive.nodes.values():
        if isinstance(node, nir.IF):
            node.v_threshold = np.full_like(node.v_threshold, 1.0)
    got = interpret(naive, x)
    assert not np.array_equal(got["if1"][0], records[0].spikes.to_dense().astype(bool))


def test_exported_file_layout_and_metadata(tmp_path):
    rng = np.random.default_rng(2)
    weights = dyadic_weights(rng, (6, 9, 4))
    ck_path = save_ckpt(tmp_path / checkpoint.LATEST, weights, 0.75, 12, seed=7)   # a run directory
    assert main(["-q", "export", str(tmp_path), "--nir", str(tmp_path / "n.nir"),
                 "--json", str(tmp_path / "e.json")]) == 0
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["widths"] == [6, 9, 4] and res["checkpoint"] == str(ck_path)
    g = nir.read(tmp_path / "n.nir")
    assert set(g.nodes) == {"input", "linear1", "if1", "linear2", "if2", "output"}
    assert g.edges == [("input", "linear1"), ("linear1", "if1"), ("if1", "linear2"), ("linear2", "if2"),
                       ("if2", "output")]
    assert not any(isinstance(n, nir.Delay) for n in g.nodes.values())
    for l, W in enumerate(weights, start=1):
        assert g.nodes[f"linear{l}"].weight.shape == W.T.shape
        np.testing.assert_array_equal(g.nodes[f"linear{l}"].weight, W.T)
        node = g.nodes[f"if{l}"]
        assert (node.r == 1).all() and (node.v_reset == 0).all()
        assert node.v_threshold.dtype == np.float32
        assert (node.v_threshold == np.nextafter(np.float32(0.75), np.float32(-1))).all()
    m = g.metadata
    assert m["format"] == nirio.FORMAT and m["n_steps"] == 12 and m["theta"] == 0.75 and m["dt"] == 1.0
    assert "argmax" in m["readout"] and "u_i(T) / theta" in m["readout"]
    assert m["data_name"] == "synth-data" and m["data_identity"] == "abc123"
    assert json.loads(m["config"]) == checkpoint.read(ck_path).config.to_dict()


@pytest.mark.parametrize("theta", [1.0, 0.3, 1.7, 2.0 ** -20, 123.456, 3e38])
def test_threshold_rule_is_exact_on_neighbouring_floats(theta):
    th = np.float32(theta)
    v_th = nirio.nir_threshold(theta)
    assert v_th < th and np.nextafter(v_th, np.float32(np.inf)) == th
    assert nirio.gpusnn_threshold(v_th) == float(th)
    vs = [th, np.nextafter(th, np.float32(np.inf)), v_th, np.nextafter(v_th, np.float32(-np.inf)), np.float32(0)]
    for v in vs:
        assert bool(v > v_th) == bool(v >= th)


def test_threshold_from_a_float64_v_threshold():
    """A foreign float64 v_threshold between two float32s: theta is the float32 above it, so
    v >= theta is v > v_threshold for every float32 v."""
    x = 0.1   # float64, not a float32
    theta = np.float32(nirio.gpusnn_threshold(x))
    below = np.nextafter(theta, np.float32(-np.inf))
    assert float(below) <= x < float(theta)
    assert nirio.gpusnn_threshold(1.0) == float(np.nextafter(np.float32(1), np.float32(2)))


@pytest.mark.parametrize("grad_at", ["current", "previous"])
def test_import_of_export_round_trips_weights_exactly(tmp_path, grad_at):
    rng = np.random.default_rng(9)
    weights = [rng.standard_normal((6, 9)).astype(np.float32), rng.standard_normal((9, 4)).astype(np.float32)]
    ck_path = save_ckpt(tmp_path / "c.h5", weights, 0.3, 10, grad_at=grad_at)
    assert main(["-q", "export", str(ck_path), "--nir", str(tmp_path / "n.nir")]) == 0
    net = nirio.load(tmp_path / "n.nir")
    assert net.widths == (6, 9, 4)
    assert np.float32(net.theta) == np.float32(0.3)
    for W, got in zip(weights, net.weights):
        assert got.dtype == np.float32 and got.shape == W.shape
        assert got.tobytes() == W.tobytes()
    assert net.saved_config() == checkpoint.read(ck_path).config.to_dict()
    assert net.layers == [("linear1", "if1"), ("linear2", "if2")]


def test_affine_with_zero_bias_is_a_linear_layer():
    W = np.arange(12, dtype=np.float32).reshape(3, 4) / 8        # [out 3, in 4]
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([4])}),
                            "fc": nir.Affine(weight=W, bias=np.zeros(3, np.float32)),
                            "lif": nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
                            "out": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False)
    net = nirio.from_graph(g)
    np.testing.assert_array_equal(net.weights[0], W.T)
    assert net.theta == float(np.nextafter(np.float32(0.5), np.float32(1)))
    assert net.saved_config() == {}


# ----------------------------------------------------------------------------- bad graphs

def chain(*body, n_in=4, extra_edges=(), edges=None):
    """A graph Input -> body... -> Output of (name, node) pairs, edges in order unless given."""
    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])})}
    nodes.update(dict(body))
    last = body[-1][1]
    n_out = (np.asarray(last.weight).shape[0] if hasattr(last, "weight") else np.asarray(last.v_threshold).size
             if hasattr(last, "v_threshold") else n_in)
    nodes["out"] = nir.Output(output_type={"output": np.array([n_out])})
    names = list(nodes)
    if edges is None:
        edges = list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=nodes, edges=[*edges, *extra_edges], type_check=False)


def lin(n_in=4, n_out=3, value=0.5):
    return nir.Linear(weight=np.full((n_out, n_in), value, np.float32))


def IF(n=3, r=1.0, v_th=0.9, v_reset=0.0):
    return nir.IF(r=np.full(n, r, np.float32), v_threshold=np.full(n, v_th, np.float32),
                  v_reset=np.full(n, v_reset, np.float32))


def lif(n=3):
    return nir.LIF(tau=np.full(n, 10.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def conv():
    return nir.Conv2d(input_shape=np.array([5, 5]), weight=np.ones((2, 1, 3, 3)), stride=1, padding=0, dilation=1,
                      groups=1, bias=np.zeros(2))


BAD_GRAPHS = {
    "lif": (lambda: chain(("fc1", lin()), ("lif1", lif())), "'lif1' (LIF): a leaky neuron"),
    "conv": (lambda: chain(("conv1", conv()), ("if1", IF())), "'conv1' (Conv2d): a convolution"),
    "delay": (lambda: chain(("fc1", lin()), ("d1", nir.Delay(delay=np.ones(3))), ("if1", IF())),
              "'d1' (Delay): a delay"),
    "bias": (lambda: chain(("aff1", nir.Affine(weight=np.ones((3, 4), np.float32), bias=np.full(3, 0.25))),
                           ("if1", IF())), "'aff1' (Affine): nonzero bias"),
    "recurrent": (lambda: chain(("fc1", lin()), ("if1", IF()), ("fc2", lin(3, 3)), ("if2", IF()),
                                extra_edges=[("if2", "fc2")]), "recurrent edge ('if2', 'fc2')"),
    "self loop": (lambda: chain(("fc1", lin()), ("if1", IF()), extra_edges=[("if1", "if1")]),
                  "recurrent edge ('if1', 'if1')"),
    "negative threshold": (lambda: chain(("fc1", lin()), ("if1", IF(v_th=-0.5))),
                           "'if1' (IF): v_threshold = -0.5 is not representable"),
    "nan threshold": (lambda: chain(("fc1", lin()), ("if1", IF(v_th=np.nan))), "'if1' (IF): v_threshold holds NaN"),
    "r": (lambda: chain(("fc1", lin()), ("if1", IF(r=2.0))), "'if1' (IF): r = 2"),
    "v_reset": (lambda: chain(("fc1", lin()), ("if1", IF(v_reset=0.5))), "'if1' (IF): v_reset = 0.5"),
    "thresholds within a layer": (
        lambda: chain(("fc1", lin()), ("if1", nir.IF(r=np.ones(3), v_threshold=np.array([0.5, 0.5, 0.75]),
                                                     v_reset=np.zeros(3)))),
        "'if1' (IF): thresholds differ between neurons"),
    "thresholds across layers": (lambda: chain(("fc1", lin()), ("if1", IF()), ("fc2", lin(3, 2)),
                                               ("if2", IF(2, v_th=0.5))),
                                 "'if2' (IF): threshold 0.5 differs from 0.9 of 'if1'"),
    "linear after linear": (lambda: chain(("fc1", lin()), ("fc2", lin(3, 3))), "'fc2' (Linear): expected IF"),
    "no neuron at the end": (lambda: chain(("fc1", lin()), ("if1", IF()), ("fc2", lin(3, 2))),
                             "is not Linear -> IF layers"),
    "if first": (lambda: chain(("if0", IF(4)), ("if1", IF(4))), "'if0' (IF): expected Linear or Affine"),
    "wrong fan-in": (lambda: chain(("fc1", lin(5, 3)), ("if1", IF())), "'fc1' (Linear): weight [out, in] = [3, 5]"),
    "nan weight": (lambda: chain(("fc1", lin(value=np.nan)), ("if1", IF())), "'fc1' (Linear): weight holds 12 NaN"),
    "branch": (lambda: chain(("fc1", lin()), ("if1", IF()), ("fc2", lin()),
                             edges=[("in", "fc1"), ("fc1", "if1"), ("if1", "out"), ("in", "fc2")]),
               "'in' (Input): branches to ['fc1', 'fc2']"),
    "two outputs": (lambda: nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([4])}),
                                                "fc1": lin(), "if1": IF(),
                                                "o1": nir.Output(output_type={"output": np.array([3])}),
                                                "o2": nir.Output(output_type={"output": np.array([3])})},
                                         edges=[("in", "fc1"), ("fc1", "if1"), ("if1", "o1"), ("if1", "o2")],
                                         type_check=False), "1 Input and 2 Output nodes"),
    "stray node": (lambda: chain(("fc1", lin()), ("if1", IF()), ("spare", IF()),
                                 edges=[("in", "fc1"), ("fc1", "if1"), ("if1", "out")]),
                   "'spare' (IF): not on the chain"),
    "2-d input": (lambda: nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([2, 2])}),
                                              "fc1": lin(), "if1": IF(),
                                              "out": nir.Output(output_type={"output": np.array([3])})},
                                       edges=[("in", "fc1"), ("fc1", "if1"), ("if1", "out")], type_check=False),
                  "'in' (Input): input shape [2, 2]"),
    "dangling edge": (lambda: chain(("fc1", lin()), ("if1", IF()), extra_edges=[("if1", "ghost")]),
                      "names no node 'ghost'"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_every_unsupported_graph_gets_an_error_naming_the_node(case):
    build, message = BAD_GRAPHS[case]
    with pytest.raises(DataFormatError) as e:
        nirio.from_graph(build(), "g.nir")
    assert str(e.value).startswith("g.nir: ")
    assert message in str(e.value)


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_bad_graphs_read_from_files_get_the_same_error(tmp_path, case):
    build, message = BAD_GRAPHS[case]
    nir.write(tmp_path / "bad.nir", build())
    with pytest.raises(DataFormatError) as e:
        nirio.load(tmp_path / "bad.nir")
    assert str(e.value).startswith(f"{tmp_path / 'bad.nir'}: ") and message in str(e.value)


def test_bad_graph_files_exit_2_naming_file_and_node(tmp_path, capsys):
    nir.write(tmp_path / "lif.nir", BAD_GRAPHS["lif"][0]())
    rc = main(["import", str(tmp_path / "lif.nir"), "--out", str(tmp_path / "r"), "--data", "mnist5k"])
    assert rc == 2
    assert f"{tmp_path / 'lif.nir'}: node 'lif1' (LIF)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    (tmp_path / "text.nir").write_text("not hdf5")
    assert main(["import", str(tmp_path / "text.nir"), "--out", str(tmp_path / "r")]) == 2
    assert "text.nir: not a NIR file" in capsys.readouterr().err
    with h5py.File(tmp_path / "empty.nir", "w"):
        pass
    assert main(["import", str(tmp_path / "empty.nir"), "--out", str(tmp_path / "r")]) == 2
    assert "empty.nir: not a readable NIR graph" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.nir"), "--out", str(tmp_path / "r")]) == 2
    assert "missing.nir: no such file" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--nir", str(tmp_path / "x.nir")]) == 2
    assert "nothing: no such checkpoint" in capsys.readouterr().err
    save_ckpt(tmp_path / "c.h5", dyadic_weights(np.random.default_rng(0), (4, 3)), 1.0, 5)
    (tmp_path / "afile").write_text("")
    assert main(["export", str(tmp_path / "c.h5"), "--nir", str(tmp_path / "afile" / "x.nir")]) == 2
    assert "x.nir: cannot be created" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "lif.nir"), "--out", str(tmp_path / "afile")]) == 2
    assert "afile: exists and is not a directory" in capsys.readouterr().err


# ----------------------------------------------------------------------------- CLI with real data

def write_idx(path, arr, magic):
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(gzip.compress(head + arr.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist")
    Xtr, ytr, Xte, yte = mnist5k_arrays()
    write_idx(d / "train-images-idx3-ubyte.gz", Xtr[:200].reshape(-1, 28, 28), 0x803)
    write_idx(d / "train-labels-idx1-ubyte.gz", ytr[:200], 0x801)
    write_idx(d / "t10k-images-idx3-ubyte.gz", Xte[:100].reshape(-1, 28, 28), 0x803)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", yte[:100], 0x801)
    return d


def run_json(tmp_path, name, *argv) -> tuple[int, dict]:
    out = tmp_path / f"{name}.json"
    rc = main(["-q", *argv, "--json", str(out)])
    return rc, (json.loads(out.read_text()) if rc == 0 else {})


def test_trained_run_exports_imports_evaluates_and_resumes(idx_dir, tmp_path):
    rc, trained = run_json(tmp_path, "train", "train", "--data", str(idx_dir), "--epochs", "1", "--hidden", "12",
                           "--steps", "6", "--lr", "0.02", "--seed", "4", "--out", str(tmp_path / "a"))
    assert rc == 0
    assert main(["-q", "export", str(tmp_path / "a"), "--nir", str(tmp_path / "a.nir")]) == 0
    rc, imp = run_json(tmp_path, "import", "import", str(tmp_path / "a.nir"), "--out", str(tmp_path / "b"))
    assert rc == 0 and imp["widths"] == [784, 12, 10]
    a = checkpoint.read(checkpoint.resolve(tmp_path / "a"))
    b = checkpoint.read(checkpoint.resolve(tmp_path / "b"))
    for Wa, Wb, Pb in zip(a.weights, b.weights, b.W_prev):
        assert Wa.tobytes() == Wb.tobytes() and Pb.tobytes() == Wb.tobytes()   # fresh memory: W_prev = W
    assert (b.epoch, b.step, b.history) == (0, 0, [])
    assert b.config.to_dict() == a.config.to_dict()
    assert b.info.data_identity == a.info.data_identity
    assert b.info.imported_from == str((tmp_path / "a.nir").resolve()) and a.info.imported_from == ""
    rc, ev_a = run_json(tmp_path, "eva", "evaluate", str(tmp_path / "a"))
    rc2, ev_b = run_json(tmp_path, "evb", "evaluate", str(tmp_path / "b"))
    assert rc == rc2 == 0 and ev_b["same_data_as_training"] is True
    assert (ev_b["test_accuracy"], ev_b["test_loss"]) == (ev_a["test_accuracy"], ev_a["test_loss"])
    assert ev_a["test_accuracy"] == trained["test_accuracy"]
    rc, res = run_json(tmp_path, "resume", "train", "--resume", str(tmp_path / "b"), "--epochs", "1")
    assert rc == 0 and res["epochs"] == 1 and len(res["history"]) == 1
    c = checkpoint.read(checkpoint.resolve(tmp_path / "b"))
    assert c.epoch == 1 and c.step == 200 // 32 + 1
    assert c.info.imported_from == b.info.imported_from
    assert any(not np.array_equal(W0, W1) for W0, W1 in zip(b.weights, c.weights))


def test_foreign_graph_needs_data_and_takes_run_options(idx_dir, tmp_path, capsys):
    rng = np.random.default_rng(11)
    W = (rng.integers(-4, 5, (784, 10)) / 64).astype(np.float32)
    nirio.write(tmp_path / "f.nir", nirio.to_graph([W], 0.5))    # no metadata: not from a gpusnn run
    assert main(["import", str(tmp_path / "f.nir"), "--out", str(tmp_path / "r")]) == 2
    assert "does not record the dataset it is meant for; give --data NAME" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "f.nir"), "--out", str(tmp_path / "r"), "--data", str(idx_dir),
                 "--hidden", "5"]) == 2
    assert "--hidden: the widths and threshold come from the graph" in capsys.readouterr().err
    rc, imp = run_json(tmp_path, "imp", "import", str(tmp_path / "f.nir"), "--out", str(tmp_path / "r"),
                       "--data", str(idx_dir), "--steps", "5", "--alpha", "1.4", "--lr", "0.03")
    assert rc == 0 and imp["n_steps"] == 5 and imp["widths"] == [784, 10]
    ck = checkpoint.read(checkpoint.resolve(tmp_path / "r"))
    assert (ck.config.optim.alpha, ck.config.optim.lr, ck.config.network.n_steps) == (1.4, 0.03, 5)
    assert ck.config.network.theta == 0.5 and ck.weights[0].tobytes() == W.tobytes()
    rc, ev = run_json(tmp_path, "ev", "evaluate", str(tmp_path / "r"))
    assert rc == 0 and ev["same_data_as_training"] is True and ev["n_test"] == 100
    assert main(["import", str(tmp_path / "f.nir"), "--out", str(tmp_path / "r"), "--data", str(idx_dir)]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


def test_graph_that_does_not_fit_the_data_is_refused(idx_dir, tmp_path, capsys):
    rng = np.random.default_rng(12)
    nirio.write(tmp_path / "s.nir", nirio.to_graph(dyadic_weights(rng, (7, 5, 3)), 1.0))
    assert main(["import", str(tmp_path / "s.nir"), "--out", str(tmp_path / "r"), "--data", str(idx_dir)]) == 2
    assert f"{tmp_path / 's.nir'}: network has 7 inputs but dataset" in capsys.readouterr().err
