"""Mini-batch training and evaluation on any backend.

Shuffling is a pure function of (seed, epoch): the order of epoch e is
default_rng([seed, e]).permutation(n). A run stopped after any batch therefore resumes
exactly by skipping the batches of the current epoch already done.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from data_tools.spikes import EncodedDataset, SpikeTensor
from gpusnn.config import RunConfig
from gpusnn.errors import ShapeError
from gpusnn.optimizer import OptimState, apply_update, init_state

log = logging.getLogger(__name__)


def init_weights(widths, init_scale: float, seed: int) -> list[np.ndarray]:
    """Uniform weights in +-init_scale * sqrt(3 / n_pre), float32 [n_pre, n_post] per layer."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for n_pre, n_post in zip(widths[:-1], widths[1:]):
        a = init_scale * np.sqrt(3.0 / n_pre)
        out.append(rng.uniform(-a, a, size=(n_pre, n_post)).astype(np.float32))
    return out


@dataclass
class EpochProgress:
    """Running sums of the epoch in progress (so a mid-epoch checkpoint resumes exactly)."""

    batches_done: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    spikes: list = field(default_factory=list)  # per layer: total spikes so far


@dataclass
class TrainState:
    """Everything that changes during training. weights are backend arrays [n_pre, n_post];
    epoch counts completed epochs; history holds one metrics dict per completed epoch."""

    weights: list
    optim: OptimState
    epoch: int = 0
    current: EpochProgress = field(default_factory=EpochProgress)
    history: list = field(default_factory=list)


def new_state(cfg: RunConfig, backend) -> TrainState:
    """Fresh weights and optimiser memory for cfg, on backend."""
    weights = [backend.asarray(W) for W in
               init_weights(cfg.network.widths, cfg.network.init_scale, cfg.train.seed)]
    return TrainState(weights, init_state(weights, cfg.optim, backend.xp))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch `epoch` (0-based), int64 [n]."""
    return np.random.default_rng([seed, 2, epoch]).permutation(n)


def check_compatible(cfg: RunConfig, data: EncodedDataset) -> None:
    widths = cfg.network.widths
    if widths[0] != data.train.n_inputs:
        raise ShapeError(f"network has {widths[0]} inputs but dataset {data.name} has {data.train.n_inputs}")
    if widths[-1] != data.n_classes:
        raise ShapeError(f"network has {widths[-1]} outputs but dataset {data.name} has {data.n_classes} classes")
    if data.train.n_steps != cfg.network.n_steps:
        raise ShapeError(f"dataset encoded with T={data.train.n_steps}, network expects T={cfg.network.n_steps}")


def train_batch(backend, state: TrainState, cfg: RunConfig, spikes: SpikeTensor, labels: np.ndarray):
    """Forward, gradient and fractional update on one mini-batch.

    Returns (per-sample loss float64 [B], predictions int64 [B], spikes per layer [L]).
    """
    net = cfg.network
    records = backend.forward(state.weights, spikes, net.theta)
    loss, rho, grads = backend.gradients(state.weights, spikes, records, labels, net.n_steps,
                                         net.theta, cfg.method)
    apply_update(backend, state.weights, grads, state.optim, cfg.optim)
    pred = np.asarray(backend.asnumpy(rho)).argmax(axis=1)
    layer_spikes = [int(r.counts.sum()) for r in records]  # one scalar per layer leaves the device
    return np.asarray(loss, np.float64), pred, layer_spikes


def device_spikes(backend, spikes: SpikeTensor) -> SpikeTensor:
    """The same tensor with its arrays on the backend's device."""
    if backend.xp is np:
        return spikes
    return SpikeTensor(backend.asarray(spikes.indptr), backend.asarray(spikes.ids),
                       spikes.n_samples, spikes.n_steps, spikes.n_inputs,
                       None if spikes.counts is None else backend.asarray(spikes.counts))


def train_epoch(backend, state: TrainState, cfg: RunConfig, data: EncodedDataset,
                on_batch: Callable[[TrainState], None] | None = None, progress: bool = True) -> dict:
    """Train one epoch (or the rest of a partly done one); returns its train metrics."""
    n = data.train.n_samples
    bs = cfg.train.batch_size
    order = epoch_order(cfg.train.seed, state.epoch, n)
    starts = list(range(0, n, bs))
    cur = state.current
    if not cur.spikes:
        cur.spikes = [0] * (len(cfg.network.widths) - 1)
    bar = tqdm(total=len(starts), initial=cur.batches_done, disable=not progress,
               desc=f"epoch {state.epoch + 1}/{cfg.train.epochs}", unit="batch", leave=False)
    for s in starts[cur.batches_done:]:
        t0 = time.perf_counter()
        idx = order[s:s + bs]
        spikes = device_spikes(backend, data.train.select(idx))
        labels = data.train_labels[idx]
        loss, pred, layer_spikes = train_batch(backend, state, cfg, spikes, labels)
        cur.loss_sum += float(loss.sum())
        cur.correct += int((pred == labels).sum())
        cur.seen += len(idx)
        cur.spikes = [a + b for a, b in zip(cur.spikes, layer_spikes)]
        cur.batches_done += 1
        cur.seconds += time.perf_counter() - t0
        bar.update(1)
        bar.set_postfix(loss=f"{cur.loss_sum / cur.seen:.3f}", acc=f"{cur.correct / cur.seen:.3f}")
        if on_batch is not None:
            on_batch(state)
    bar.close()
    return {"train_loss": cur.loss_sum / max(cur.seen, 1), "train_accuracy": cur.correct / max(cur.seen, 1),
            "seconds": cur.seconds, "spikes_per_sample": [c / max(cur.seen, 1) for c in cur.spikes]}


def predict(backend, weights, spikes: SpikeTensor, cfg: RunConfig, batch_size: int = 256) -> np.ndarray:
    """Output rates rho, float32 [N, C], in batches."""
    from gpusnn import reference as ref
    out = []
    for s in range(0, spikes.n_samples, batch_size):
        idx = np.arange(s, min(s + batch_size, spikes.n_samples))
        recs = backend.forward(weights, device_spikes(backend, spikes.select(idx)), cfg.network.theta)
        counts = np.asarray(backend.asnumpy(recs[-1].counts))
        u = np.asarray(backend.asnumpy(recs[-1].u_final))
        out.append(ref.readout(counts, u, cfg.network.theta, cfg.network.n_steps))
    return np.concatenate(out) if out else np.zeros((0, cfg.network.widths[-1]), np.float32)


def evaluate(backend, weights, spikes: SpikeTensor, labels: np.ndarray, cfg: RunConfig) -> dict:
    """Accuracy, mean loss and predictions of weights on a labelled set."""
    from gpusnn import reference as ref
    rho = predict(backend, weights, spikes, cfg)
    loss, _ = ref.loss_and_delta(rho, labels, cfg.method, cfg.network.n_steps)
    pred = rho.argmax(axis=1)
    return {"accuracy": float((pred == labels).mean()) if len(labels) else 0.0,
            "loss": float(loss.mean()) if len(labels) else 0.0, "predictions": pred}


def fit(backend, state: TrainState, cfg: RunConfig, data: EncodedDataset,
        on_batch: Callable[[TrainState], None] | None = None,
        on_epoch: Callable[[TrainState], None] | None = None, progress: bool = True) -> TrainState:
    """Train until state.epoch == cfg.train.epochs, evaluating on the test split after each epoch."""
    check_compatible(cfg, data)
    while state.epoch < cfg.train.epochs:
        metrics = train_epoch(backend, state, cfg, data, on_batch, progress)
        t0 = time.perf_counter()
        ev = evaluate(backend, state.weights, data.test, data.test_labels, cfg)
        metrics.update(epoch=state.epoch + 1, test_loss=ev["loss"], test_accuracy=ev["accuracy"],
                       eval_seconds=time.perf_counter() - t0)
        state.history.append(metrics)
        state.epoch += 1
        state.current = EpochProgress()
        log.info("epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s",
                 metrics["epoch"], metrics["train_loss"], metrics["train_accuracy"],
                 metrics["test_loss"], metrics["test_accuracy"], metrics["seconds"])
        if on_epoch is not None:
            on_epoch(state)
    return state
