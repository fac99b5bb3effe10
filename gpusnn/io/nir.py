"""NIR graphs of gpusnn networks: export a checkpoint's network, import a NIR graph's layers.

NIR (the Neuromorphic Intermediate Representation, package `nir`) describes a network in
continuous time. A gpusnn network of L layers is the chain

    Input [n_0] -> Linear_1 -> IF_1 -> ... -> Linear_L -> IF_L -> Output [n_L]

with Linear weight = W_l.T (NIR weights are [out, in], gpusnn's W_l are [n_pre, n_post]) and
IF r = 1, v_reset = 0, v_threshold = nextafter(float32(theta), -inf). One gpusnn step is one
unit of NIR time, integrated with a single Euler step of dt = 1: v(t) = v(t-1) + I(t) is
exact for dv/dt = R I with R = 1 and dt = 1, since the input I is constant over the step.
NIR fires on v > v_threshold (strict), gpusnn on v >= theta; for float32 v the two agree
exactly when v_threshold is the float32 just below theta. Spikes reach the next layer in the
same step, as in gpusnn: the graph has no Delay nodes. The graph metadata records T, theta,
the readout rule, the training config and the data identity (see docs/nir.md).

Import accepts exactly that chain (Affine with an all-zero bias stands for Linear); any other
node or edge gets a DataFormatError naming the file and the node.
"""
from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import nir
import numpy as np

from gpusnn import __version__
from gpusnn.errors import CheckpointError, DataFormatError
from gpusnn.io.hdf5 import atomic_write

log = logging.getLogger(__name__)

FORMAT = "gpusnn-nir"   # metadata["format"] of graphs gpusnn writes
VERSION = 1
READOUT = ("rate rho_i = (n_i + u_i(T) / theta) / T of output neuron i, with n_i its spike count "
           "over the T steps and u_i(T) its potential after the last step; predicted class = argmax_i rho_i")
TIME = ("one gpusnn step = one unit of NIR time (dt = 1): v(t) = v(t-1) + I(t), fire on "
        "v > v_threshold, then v = v_reset; a spike reaches the next layer in the same step (no Delay)")


@dataclass(frozen=True)
class NirNetwork:
    """A feed-forward nonleaky IF network in gpusnn's terms.

    weights: float32 [n_pre, n_post] per layer; theta: gpusnn's threshold (a neuron fires on
    v >= theta); layers: (linear node, IF node) names per layer in the graph; metadata:
    the graph's metadata (a gpusnn export carries FORMAT, n_steps, theta, config, data).
    """

    weights: list
    theta: float
    layers: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0], *(W.shape[1] for W in self.weights))

    def saved_config(self) -> dict:
        """The RunConfig dict a gpusnn export recorded, or {} for a graph from elsewhere."""
        if self.metadata.get("format") != FORMAT or "config" not in self.metadata:
            return {}
        try:
            d = json.loads(self.metadata["config"])
        except (TypeError, ValueError):
            log.warning("the graph's metadata config is not JSON; using the defaults")
            return {}
        return d if isinstance(d, dict) else {}


# ----------------------------------------------------------------------------- thresholds

def nir_threshold(theta: float) -> np.float32:
    """NIR's v_threshold for gpusnn's theta: the float32 just below float32(theta), so that for
    every float32 v, v > v_threshold exactly when v >= theta."""
    return np.nextafter(np.float32(theta), np.float32(-np.inf))


def gpusnn_threshold(v_threshold: float) -> float:
    """gpusnn's theta for NIR's v_threshold: the smallest float32 above v_threshold, so that for
    every float32 v, v >= theta exactly when v > v_threshold (the inverse of nir_threshold)."""
    x = float(v_threshold)
    f = np.float32(x)
    if float(f) <= x:
        f = np.nextafter(f, np.float32(np.inf))
    return float(f)


# ----------------------------------------------------------------------------- export

def to_graph(weights: list, theta: float, metadata: dict | None = None) -> nir.NIRGraph:
    """The NIR graph of a network. weights: float32 [n_pre, n_post] per layer (host arrays);
    metadata: flat dict of str / int / float values stored on the graph."""
    nodes = {"input": nir.Input(input_type={"input": np.array([weights[0].shape[0]])})}
    edges = []
    prev = "input"
    v_th = nir_threshold(theta)
    for l, W in enumerate(weights, start=1):
        W = np.asarray(W, np.float32)
        n = W.shape[1]
        nodes[f"linear{l}"] = nir.Linear(weight=np.ascontiguousarray(W.T))
        nodes[f"if{l}"] = nir.IF(r=np.ones(n, np.float32), v_threshold=np.full(n, v_th, np.float32),
                                 v_reset=np.zeros(n, np.float32))
        edges += [(prev, f"linear{l}"), (f"linear{l}", f"if{l}")]
        prev = f"if{l}"
    nodes["output"] = nir.Output(output_type={"output": np.array([weights[-1].shape[1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(metadata or {}))


def export_metadata(ck) -> dict:
    """Graph metadata for checkpoint ck (gpusnn.io.checkpoint.Checkpoint): flat str / number values."""
    net = ck.config.network
    return {
        "format": FORMAT, "format_version": VERSION, "producer": f"gpusnn {__version__}",
        "dt": 1.0, "time": TIME, "n_steps": int(net.n_steps), "theta": float(net.theta),
        "v_threshold": "nextafter(float32(theta), -inf): fires on v > v_threshold exactly where gpusnn "
                       "fires on v >= theta",
        "readout": READOUT, "config": json.dumps(ck.config.to_dict()),
        "data_name": ck.info.data_name, "data_identity": ck.info.data_identity,
        "epoch": int(ck.epoch), "step": int(ck.step), "checkpoint": str(ck.path),
    }


def write(path: str | os.PathLike, graph: nir.NIRGraph) -> Path:
    """Write graph to path as a NIR (HDF5) file, atomically. Returns path; CheckpointError
    names the file when it cannot be written (the previous file is then untouched)."""
    buf = io.BytesIO()
    nir.write(buf, graph)
    try:
        return atomic_write(path, buf.getvalue())
    except OSError as e:     # the directory cannot be made (a file in the way, no permission)
        raise CheckpointError(f"{path}: cannot write the NIR file ({e})") from e


# ----------------------------------------------------------------------------- import

def read(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a NIR file; DataFormatError names the file when it is missing or not a NIR graph."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r"):
            pass
    except (OSError, ValueError) as e:
        raise DataFormatError(f"{path}: not a NIR file: not a readable HDF5 file ({e})") from e
    try:
        graph = nir.read(path, type_check=False)     # from_graph checks the shapes, naming the node
    except (KeyError, ValueError, TypeError, AssertionError, AttributeError, OSError) as e:
        raise DataFormatError(f"{path}: not a readable NIR graph ({type(e).__name__}: {e})") from e
    if not isinstance(graph, nir.NIRGraph):
        raise DataFormatError(f"{path}: the file holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


_UNSUPPORTED = {
    "LIF": "a leaky neuron (tau, v_leak); gpusnn neurons are nonleaky IF",
    "CubaLIF": "a leaky neuron with a current synapse; gpusnn neurons are nonleaky IF",
    "LI": "a leaky integrator; gpusnn neurons are nonleaky IF",
    "CubaLI": "a leaky integrator with a current synapse; gpusnn neurons are nonleaky IF",
    "I": "an integrator without threshold; gpusnn layers end in IF neurons",
    "Conv1d": "a convolution; gpusnn layers are fully connected",
    "Conv2d": "a convolution; gpusnn layers are fully connected",
    "SumPool2d": "pooling; gpusnn layers are fully connected",
    "AvgPool2d": "pooling; gpusnn layers are fully connected",
    "Delay": "a delay; in gpusnn a spike reaches the next layer in the same step",
    "NIRGraph": "a nested subgraph; gpusnn reads one flat chain",
    "Scale": "a scaling node; gpusnn layers are Linear -> IF",
    "Flatten": "a reshape; gpusnn reads 1-D inputs only",
    "Threshold": "a bare threshold; gpusnn layers are Linear -> IF",
}
CHAIN = "gpusnn imports Input -> (Linear | Affine with zero bias) -> IF -> ... -> IF -> Output"


def _node_error(where: str, key: str, node, why: str) -> DataFormatError:
    return DataFormatError(f"{where}: node {key!r} ({type(node).__name__}): {why}")


def _values(where: str, key: str, node, name: str, n: int) -> np.ndarray:
    """A per-neuron IF parameter as float64 [n] (a scalar broadcasts)."""
    a = np.asarray(getattr(node, name), np.float64)
    if a.shape not in ((), (n,), (1,)):
        raise _node_error(where, key, node, f"{name} has shape {a.shape}, expected ({n},)")
    if not np.isfinite(a).all():
        raise _node_error(where, key, node, f"{name} holds NaN or inf")
    return np.broadcast_to(a.reshape(-1) if a.ndim else a, (n,))


def _if_threshold(where: str, key: str, node, n: int) -> float:
    """Check an IF node against gpusnn's neuron; return its gpusnn theta."""
    r = _values(where, key, node, "r", n)
    if not (r == 1).all():
        raise _node_error(where, key, node, f"r = {r[r != 1][0]:g} (gpusnn integrates v += I, r = 1)")
    v_reset = _values(where, key, node, "v_reset", n)
    if not (v_reset == 0).all():
        raise _node_error(where, key, node, f"v_reset = {v_reset[v_reset != 0][0]:g} (gpusnn resets to 0)")
    v_th = _values(where, key, node, "v_threshold", n)
    thetas = np.unique([gpusnn_threshold(v) for v in np.unique(v_th)])
    if thetas.size != 1:
        raise _node_error(where, key, node, f"thresholds differ between neurons ({thetas.min():g} .. "
                                            f"{thetas.max():g}); gpusnn has one threshold theta")
    theta = float(thetas[0])
    if not (theta > 0 and np.isfinite(np.float32(theta))):
        raise _node_error(where, key, node, f"v_threshold = {v_th[0]:g} is not representable as gpusnn's "
                                            f"v >= theta with a finite theta > 0")
    return theta


def _linear_weight(where: str, key: str, node, n_in: int) -> np.ndarray:
    """An Affine / Linear node's weight as gpusnn's float32 [n_pre, n_post]."""
    if isinstance(node, nir.Affine):
        bias = np.asarray(node.bias, np.float64)
        if bias.size and not (bias == 0).all():
            raise _node_error(where, key, node, "nonzero bias (gpusnn layers have no bias)")
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise _node_error(where, key, node, f"weight has shape {w.shape}, expected [out, in]")
    if w.shape[1] != n_in:
        raise _node_error(where, key, node, f"weight [out, in] = {list(w.shape)} takes {w.shape[1]} inputs, "
                                            f"the previous layer has {n_in}")
    if not np.isfinite(w).all():
        raise _node_error(where, key, node, f"weight holds {int((~np.isfinite(w)).sum())} NaN or inf value(s)")
    W = np.ascontiguousarray(w.T, np.float32)
    if w.dtype != np.float32 and not (W.T == w).all():
        log.warning("%s: node %r: weights rounded to float32 (gpusnn computes in float32)", where, key)
    return W


def _chain(where: str, graph: nir.NIRGraph) -> list[str]:
    """The node names from the single Input to the single Output; errors name the edge or node."""
    nodes, edges = graph.nodes, [(str(a), str(b)) for a, b in graph.edges]
    for a, b in edges:
        for k in (a, b):
            if k not in nodes:
                raise DataFormatError(f"{where}: edge ({a!r}, {b!r}) names no node {k!r}")
    succ = {k: [] for k in nodes}
    pred = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise DataFormatError(f"{where}: the graph has {len(inputs)} Input and {len(outputs)} Output nodes; "
                              f"{CHAIN}")
    state = {}  # 1 = on the DFS path, 2 = done

    def visit(k: str) -> None:   # depth-first search for an edge back onto the path
        state[k] = 1
        for b in succ[k]:
            if state.get(b) == 1:
                raise _node_error(where, b, nodes[b], f"recurrent edge ({k!r}, {b!r}); gpusnn networks "
                                                      f"are feed-forward")
            if b not in state:
                visit(b)
        state[k] = 2

    for k in [*inputs, *nodes]:
        if k not in state:
            visit(k)
    chain = [inputs[0]]
    while succ[chain[-1]]:
        k = chain[-1]
        if len(succ[k]) > 1:
            raise _node_error(where, k, nodes[k], f"branches to {succ[k]}; {CHAIN}")
        nxt = succ[k][0]
        if len(pred[nxt]) > 1:
            raise _node_error(where, nxt, nodes[nxt], f"merges inputs from {pred[nxt]}; {CHAIN}")
        chain.append(nxt)
    if chain[-1] != outputs[0]:
        raise _node_error(where, chain[-1], nodes[chain[-1]], f"the chain from {inputs[0]!r} ends here "
                                                              f"without reaching {outputs[0]!r}; {CHAIN}")
    stray = [k for k in nodes if k not in chain]
    if stray:
        raise _node_error(where, stray[0], nodes[stray[0]], f"not on the chain from {inputs[0]!r} to "
                                                            f"{outputs[0]!r}; {CHAIN}")
    return chain


def from_graph(graph: nir.NIRGraph, where: str = "NIR graph") -> NirNetwork:
    """The gpusnn network of a NIR graph; DataFormatError (prefixed with where, e.g. the file)
    names the first node gpusnn cannot represent and says why."""
    for key, node in graph.nodes.items():
        kind = type(node).__name__
        if kind in _UNSUPPORTED:
            raise _node_error(where, key, node, f"{_UNSUPPORTED[kind]}; {CHAIN}")
        if not isinstance(node, (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.IF)):
            raise _node_error(where, key, node, f"unsupported node type; {CHAIN}")
    chain = _chain(where, graph)
    nodes = graph.nodes
    shape = np.asarray(nodes[chain[0]].input_type["input"]).reshape(-1)
    if shape.size != 1:
        raise _node_error(where, chain[0], nodes[chain[0]], f"input shape {shape.tolist()}; gpusnn reads 1-D inputs")
    width = int(shape[0])
    body = chain[1:-1]
    if not body or len(body) % 2:
        raise DataFormatError(f"{where}: the chain {' -> '.join(chain)} is not Linear -> IF layers; {CHAIN}")
    weights, layers, thetas = [], [], {}
    for lin, neu in zip(body[::2], body[1::2]):
        if not isinstance(nodes[lin], (nir.Linear, nir.Affine)):
            raise _node_error(where, lin, nodes[lin], f"expected Linear or Affine here; {CHAIN}")
        if not isinstance(nodes[neu], nir.IF):
            raise _node_error(where, neu, nodes[neu], f"expected IF after {lin!r}; {CHAIN}")
        W = _linear_weight(where, lin, nodes[lin], width)
        width = W.shape[1]
        thetas[neu] = _if_threshold(where, neu, nodes[neu], width)
        weights.append(W)
        layers.append((lin, neu))
    first = layers[0][1]
    for neu, theta in thetas.items():
        if theta != thetas[first]:
            raise _node_error(where, neu, nodes[neu], f"threshold {theta:g} differs from {thetas[first]:g} of "
                                                      f"{first!r}; gpusnn has one threshold theta for all layers")
    out = np.asarray(nodes[chain[-1]].output_type["output"]).reshape(-1)
    if out.size != 1 or int(out[0]) != width:
        raise _node_error(where, chain[-1], nodes[chain[-1]], f"output shape {out.tolist()}, the last layer "
                                                              f"has {width} neurons")
    return NirNetwork(weights, thetas[first], layers, _plain(graph.metadata))


def _plain(metadata) -> dict:
    """Metadata as Python values (nir.read returns NumPy scalars and arrays)."""
    out = {}
    for k, v in dict(metadata or {}).items():
        out[str(k)] = v.item() if isinstance(v, np.generic) else v
    return out


def load(path: str | os.PathLike) -> NirNetwork:
    """Read a NIR file into a NirNetwork (errors name the file and the node)."""
    return from_graph(read(path), str(path))
