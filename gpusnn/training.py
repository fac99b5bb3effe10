"""Mini-batch training and evaluation on any backend.

Shuffling is a pure function of (seed, epoch): the order of epoch e is
default_rng([seed, 2, e]).permutation(n). A run stopped after any batch therefore resumes
exactly by skipping the batches of the current epoch already done.

Data parallel (comm: a gpusnn.distributed communicator of P ranks): every rank derives the
same order, takes its share (distributed.part) of each global batch, computes its gradient
with the output error divided by the global batch size, and the gradients are summed over
the ranks before the (identical, elementwise) update, so the weights and the optimiser
memory stay the same on every rank. Train metrics and the evaluation (split across the
ranks) are summed the same way. Without comm (or with one rank) nothing changes.

The splits of the EncodedDataset are batch sources (data_tools.loader.BatchSource): a
SpikeTensor held in memory or a StoreSplit that reads and encodes each batch from the event
store. Either way the next PREFETCH batches are made in a background thread
(data_tools.prefetch) while the current one trains; the batches and their order are the same.
On the cuda and emulated backends a StoreSplit's batches are encoded on the device: the
thread reads the raw events (StoreSplit.read) and the trainer bins them with
backend.encode_batch, giving the host encoder's spikes in the static forms the kernels read
(a SpikeGrid, or PaddedSpikes for count encoding) with nothing read back; a split small enough
for the device (RESIDENT_BYTES) is uploaded once per run and binned per batch from there (see
batches).

With cfg.train.cuda_graph (`gpusnn train --cuda-graph`, cuda only) each training batch goes
through graph_step (gpusnn.backends.gpu.graph.GraphStep): copied into static buffers and run as
a captured CUDA graph, one capture per epoch and batch shape. The results are those of
train_batch (same kernels in the same order), so checkpoints do not depend on it.
"""
from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from data_tools.encode import MODES
from data_tools.loader import BatchSource, StoreSplit, spikes_per_step
from data_tools.prefetch import prefetch
from data_tools.progress import PROGRESS, progress_bar
from data_tools.spikes import EncodedDataset, SpikeTensor
from gpusnn import distributed
from gpusnn.backends import Backend
from gpusnn.config import RunConfig
from gpusnn.errors import ConfigError, ShapeError
from gpusnn.optimizer import OptimState, apply_update, init_state

log = logging.getLogger(__name__)

PREFETCH = 2          # batches made ahead in a background thread
EVAL_BATCH = 256      # samples per evaluation batch of a split held in memory


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


def new_state(cfg: RunConfig, backend: Backend) -> TrainState:
    """Fresh weights and optimiser memory for cfg, on backend."""
    weights = [backend.asarray(W) for W in
               init_weights(cfg.network.widths, cfg.network.init_scale, cfg.train.seed)]
    return TrainState(weights, init_state(weights, cfg.optim, backend.xp))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch `epoch` (0-based), int64 [n]."""
    return np.random.default_rng([seed, 2, epoch]).permutation(n)


def with_input_drive(cfg: RunConfig, source: BatchSource) -> RunConfig:
    """cfg with the threshold raised for the input drive of source (the training split): theta *
    sqrt(r / drive_ref) when its mean input spikes per sample and step r exceeds drive_ref (then
    drive_ref becomes None, so the config a run saves is final); else cfg unchanged."""
    ref = cfg.network.drive_ref
    if ref is None:
        return cfg
    r = spikes_per_step(source)
    if r <= ref:
        return cfg
    theta = cfg.network.theta * float(np.sqrt(r / ref))
    log.info("input drive %.0f spikes per sample and step > drive_ref %g: theta %g -> %.4g",
             r, ref, cfg.network.theta, theta)
    return cfg.replace(network={"theta": theta, "drive_ref": None}).validate()


def check_compatible(cfg: RunConfig, data: EncodedDataset) -> None:
    widths = cfg.network.widths
    if widths[0] != data.train.n_inputs:
        raise ShapeError(f"network has {widths[0]} inputs but dataset {data.name} has {data.train.n_inputs}")
    if widths[-1] != data.n_classes:
        raise ShapeError(f"network has {widths[-1]} outputs but dataset {data.name} has {data.n_classes} classes")
    if data.train.n_steps != cfg.network.n_steps:
        raise ShapeError(f"dataset encoded with T={data.train.n_steps}, network expects T={cfg.network.n_steps}")


def train_batch(backend: Backend, state: TrainState, cfg: RunConfig, spikes: SpikeTensor, labels: np.ndarray,
                comm=None, batch_norm: int | None = None):
    """Forward, gradient and fractional update on one mini-batch (or this rank's share of one:
    comm sums the gradients over the ranks, batch_norm is the global batch size).

    Returns (per-sample loss float64 [B], predictions int64 [B], spikes per layer [L]) of these samples.
    """
    net = cfg.network
    records = backend.forward(state.weights, spikes, net.theta, output_spikes=False)
    loss, rho, grads = backend.gradients(state.weights, spikes, records, labels, net.n_steps,
                                         net.theta, cfg.method, batch_norm)
    if comm is not None and comm.size > 1:
        grads = comm.allreduce_sum(grads)
    apply_update(backend, state.weights, grads, state.optim, cfg.optim)
    loss, rho, layer_spikes = backend.host_results(loss, rho, records)   # one copy after the update
    return loss, rho.argmax(axis=1), layer_spikes


def device_spikes(backend: Backend, spikes: SpikeTensor) -> SpikeTensor:
    """spikes (host or device) as the backend's arrays: an upload through backend.asarray,
    which the kernel runtime counts (a view on the numpy backend)."""
    return spikes.to(np).map_arrays(lambda name, a: backend.asarray(a))


# A store-backed split whose events take at most this many device bytes (13 per event: x, y
# int16, p uint8, t int64) is uploaded once per run and binned per batch from the device copy;
# on emulated the "device" is host memory, so its bound stays small.
RESIDENT_BYTES = {"cuda": 8 * 2**30, "emulated": 256 * 2**20}
EVENT_BYTES = 13
UPLOAD_SAMPLES = 256          # samples read and uploaded at a time when a split is made resident
_resident: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # StoreSplit -> {backend: DeviceEvents}


def encodes_on_device(backend: Backend, source: BatchSource) -> bool:
    """Whether the batches of source are encoded by the backend (a backend with encode_batch,
    the cuda and emulated ones, and a source of raw events, a StoreSplit, in a mode the device
    encoder has: data_tools.encode.MODES) rather than on the host."""
    return hasattr(backend, "encode_batch") and isinstance(source, StoreSplit) and source.mode in MODES


def resident_events(backend, source: StoreSplit):
    """The device copy of all of source's events (a DeviceEvents), uploaded on the first call for
    this (source, backend) pair and kept while source lives; None when the split is larger than
    RESIDENT_BYTES[backend.name]. The upload reads UPLOAD_SAMPLES samples at a time, so host
    memory stays O(chunk)."""
    per_backend = _resident.setdefault(source, weakref.WeakKeyDictionary())
    if backend in per_backend:
        return per_backend[backend]
    if source.n_events() * EVENT_BYTES > RESIDENT_BYTES.get(getattr(backend, "name", ""), 0):
        return None
    parts = []
    for a in range(0, source.n_samples, UPLOAD_SAMPLES):
        raw = source.read(np.arange(a, min(a + UPLOAD_SAMPLES, source.n_samples)))
        parts.append(backend.upload_events(raw.columns, raw.offsets, raw.durations, raw.sensor_size))
    store = backend.concat_events(parts) if parts else None
    log.info("%d samples' events held on the %s device (%d events)", source.n_samples, backend.name,
             source.n_events())
    per_backend[backend] = store
    return store


def batches(backend: Backend, source: BatchSource, index_lists, depth: int = PREFETCH, upload: bool = True):
    """(index, spikes as the backend reads them) of each index array in index_lists, in order.

    When the backend encodes (encodes_on_device): from the split's device copy when it fits
    (resident_events: only the B indices go up per batch), else the split's raw events read
    ahead by a background thread (depth batches; 0 = in this thread), uploaded and binned on
    the device by this thread; the batches are device SpikeGrids (binary) or PaddedSpikes
    (count encoding). Otherwise the host's spike tensors made ahead the same way (and passed
    through the backend's stage() where it has one: the numpy backend's dense counts) and
    uploaded by device_spikes (upload=False: left on the host, for a step that stages its
    input itself, graph_step). Either way the spikes are the same.
    """
    if not encodes_on_device(backend, source):
        stage = getattr(backend, "stage", lambda spikes: spikes)     # the numpy backend's dense counts, made ahead
        for idx, host in prefetch(((idx, stage(source.select(idx))) for idx in index_lists), depth,
                                  low_priority=True):
            yield idx, device_spikes(backend, host) if upload else host
        return
    store = resident_events(backend, source)
    if store is not None:
        for idx in index_lists:
            yield idx, backend.encode_samples(store, idx, source.n_steps, **source.encoding)
        return
    for idx, raw in prefetch(((idx, source.read(idx)) for idx in index_lists), depth, low_priority=True):
        yield idx, backend.encode_batch(raw.columns, raw.offsets, raw.durations, source.n_steps,
                                        sensor_size=raw.sensor_size, **source.encoding)


def graph_step(backend: Backend, state: TrainState, cfg: RunConfig):
    """The per-batch step of cfg.train.cuda_graph: a GraphStep (cuda only, else ConfigError),
    called as step(spikes, labels) -> train_batch's results."""
    from gpusnn.backends.gpu.graph import GraphStep
    return GraphStep(backend, state, cfg)


def train_epoch(backend: Backend, state: TrainState, cfg: RunConfig, data: EncodedDataset,
                on_batch: Callable[[TrainState], None] | None = None, progress: bool = True,
                comm=None) -> dict:
    """Train one epoch (or the rest of a partly done one); returns its train metrics (over all ranks)."""
    comm = comm or distributed.SingleComm()
    n = data.train.n_samples
    bs = cfg.train.batch_size
    order = epoch_order(cfg.train.seed, state.epoch, n)
    starts = list(range(0, n, bs))
    cur = state.current
    if not cur.spikes:
        cur.spikes = [0] * (len(cfg.network.widths) - 1)
    bar = progress_bar(total=len(starts), initial=cur.batches_done, enabled=progress,
               desc=f"epoch {state.epoch + 1}/{cfg.train.epochs}", unit="batch", leave=False)
    t0 = time.perf_counter()
    todo = [order[s:s + bs] for s in starts[cur.batches_done:]]
    shares = [distributed.part(idx, comm.rank, comm.size) for idx in todo]
    if cfg.train.cuda_graph and comm.size > 1:
        raise ConfigError("--cuda-graph cannot be combined with --distributed (the captured step has no "
                          "gradient all-reduce)")
    step = graph_step(backend, state, cfg) if cfg.train.cuda_graph else None
    for (mine, spikes), idx in zip(batches(backend, data.train, shares, upload=step is None), todo):
        labels = data.train_labels[mine]
        if step is None:
            loss, pred, layer_spikes = train_batch(backend, state, cfg, spikes, labels, comm, len(idx))
        else:
            loss, pred, layer_spikes = step(spikes, labels)
        totals = comm.allreduce_sum([np.array([loss.sum(), (pred == labels).sum(), *layer_spikes], np.float64)])[0]
        cur.loss_sum += float(totals[0])
        cur.correct += int(totals[1])
        cur.seen += len(idx)
        cur.spikes = [a + int(b) for a, b in zip(cur.spikes, totals[2:])]
        cur.batches_done += 1
        cur.seconds += time.perf_counter() - t0          # includes the wait for this batch
        bar.update(1)
        bar.set_postfix(loss=f"{cur.loss_sum / cur.seen:.3f}", acc=f"{cur.correct / cur.seen:.3f}")
        if on_batch is not None:
            on_batch(state)
        t0 = time.perf_counter()
    bar.close()
    return {"train_loss": cur.loss_sum / max(cur.seen, 1), "train_accuracy": cur.correct / max(cur.seen, 1),
            "seconds": cur.seconds, "spikes_per_sample": [c / max(cur.seen, 1) for c in cur.spikes]}


def predict(backend: Backend, weights, spikes: BatchSource, cfg: RunConfig, batch_size: int | None = None,
            indices: np.ndarray | None = None) -> np.ndarray:
    """Output rates rho, float32 [N, C], of the samples indices (default all N) in batches
    (default: EVAL_BATCH samples for a split in memory, the training batch size for one read
    from a store)."""
    from gpusnn import reference as ref
    bs = batch_size or (EVAL_BATCH if isinstance(spikes, SpikeTensor) else cfg.train.batch_size)
    out = []
    ids = np.arange(spikes.n_samples) if indices is None else np.asarray(indices, np.int64)
    index_lists = [ids[s:s + bs] for s in range(0, ids.size, bs)]
    for _, batch in batches(backend, spikes, index_lists):
        recs = backend.forward(weights, batch, cfg.network.theta, output_spikes=False)
        counts = np.asarray(backend.asnumpy(recs[-1].counts))
        u = np.asarray(backend.asnumpy(recs[-1].u_final))
        out.append(ref.readout(counts, u, cfg.network.theta, cfg.network.n_steps))
    return np.concatenate(out) if out else np.zeros((0, cfg.network.widths[-1]), np.float32)


def evaluate(backend: Backend, weights, spikes: BatchSource, labels: np.ndarray, cfg: RunConfig,
             comm=None) -> dict:
    """Accuracy, mean loss and predictions int64 [N] of weights on a labelled set of N samples.

    With comm each rank predicts its share (distributed.part) and the sums are reduced, so every
    rank returns the whole set's results.
    """
    from gpusnn import reference as ref
    comm = comm or distributed.SingleComm()
    n = len(labels)
    mine = distributed.part(np.arange(n), comm.rank, comm.size)
    rho = predict(backend, weights, spikes, cfg, indices=mine if comm.size > 1 else None)
    loss, _ = ref.loss_and_delta(rho, labels[mine], cfg.method, cfg.network.n_steps)
    pred = np.zeros(n, np.int64)
    pred[mine] = rho.argmax(axis=1)
    loss_sum, pred = comm.allreduce_sum([np.array([loss.sum()])])[0][0], comm.allreduce_sum([pred])[0]
    return {"accuracy": float((pred == labels).mean()) if n else 0.0,
            "loss": float(loss_sum / n) if n else 0.0, "predictions": pred}


def fit(backend: Backend, state: TrainState, cfg: RunConfig, data: EncodedDataset,
        on_batch: Callable[[TrainState], None] | None = None,
        on_epoch: Callable[[TrainState], None] | None = None, progress: bool = True,
        comm=None) -> TrainState:
    """Train until state.epoch == cfg.train.epochs, evaluating on the test split after each epoch
    (comm: data parallel over its ranks, see the module docstring)."""
    check_compatible(cfg, data)
    while state.epoch < cfg.train.epochs:
        metrics = train_epoch(backend, state, cfg, data, on_batch, progress, comm)
        if comm is not None:
            distributed.check_same(comm, [backend.asnumpy(W) for W in state.weights + state.optim.W_prev],
                                   f"weights after epoch {state.epoch + 1}")
        t0 = time.perf_counter()
        ev = evaluate(backend, state.weights, data.test, data.test_labels, cfg, comm)
        metrics.update(epoch=state.epoch + 1, test_loss=ev["loss"], test_accuracy=ev["accuracy"],
                       eval_seconds=time.perf_counter() - t0)
        state.history.append(metrics)
        state.epoch += 1
        state.current = EpochProgress()
        (PROGRESS if progress else log).info(  # a progress line unless progress is off (sweep cells)
            "epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s", metrics["epoch"],
            metrics["train_loss"], metrics["train_accuracy"], metrics["test_loss"], metrics["test_accuracy"],
            metrics["seconds"])
        if on_epoch is not None:
            on_epoch(state)
    return state
