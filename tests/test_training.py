"""The training loop (gpusnn.training): epoch order, batching, fit and evaluate, checked
against invariants and against a hand-run of the same steps with the reference functions."""
from __future__ import annotations

import numpy as np
import pytest

from data_tools.spikes import EncodedDataset, from_dense
from gpusnn import reference as ref
from gpusnn import training
from gpusnn.backends import Backend, get_backend
from gpusnn.config import RunConfig
from gpusnn.errors import ShapeError

N_IN, C, T = 30, 3, 8


def grouped_dataset(seed: int, n_train: int = 22, n_test: int = 9) -> EncodedDataset:
    """A learnable task: inputs of group c (10 lines) spike with p = 0.5 in samples of class
    c, every other line with p = 0.05. Binary spikes, T = 8."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, C, n)
        p = np.full((n, 1, N_IN), 0.05)
        for c in range(C):
            p[y == c, :, 10 * c:10 * (c + 1)] = 0.5
        return from_dense((rng.random((n, T, N_IN)) < p).astype(np.int32)), y

    (X, y), (Xt, yt) = split(n_train), split(n_test)
    return EncodedDataset("grouped", X, y, Xt, yt, C, ("a", "b", "c"), f"grouped{seed}", {})


def tiny_cfg(**train) -> RunConfig:
    return RunConfig().replace(network={"widths": (N_IN, 16, C), "n_steps": T},
                               optim={"lr": 0.05},
                               train={"batch_size": 8, "epochs": 2, "seed": 7, "backend": "numpy", **train}).validate()


class Recording:
    """A numpy backend that records the batches it is given (a Backend by delegation)."""

    def __init__(self):
        self.inner = get_backend("numpy")
        self.name, self.xp = self.inner.name, self.inner.xp
        self.batch_sizes, self.labels = [], []
        self.asarray, self.asnumpy = self.inner.asarray, self.inner.asnumpy

    def forward(self, weights, spikes, theta, output_spikes=True):
        self.batch_sizes.append(spikes.n_samples)
        return self.inner.forward(weights, spikes, theta, output_spikes)

    def gradients(self, weights, spikes, records, labels, T, theta, method, batch_norm=None):
        self.labels.append(np.asarray(labels))
        return self.inner.gradients(weights, spikes, records, labels, T, theta, method, batch_norm)

    def host_results(self, loss, rho, records):
        return self.inner.host_results(loss, rho, records)

    def update(self, W, *, W_prev, G, G_prev, step, optim):
        self.inner.update(W, W_prev=W_prev, G=G, G_prev=G_prev, step=step, optim=optim)


def hand_run(cfg: RunConfig, data: EncodedDataset):
    """The same training with reference functions only: weights per epoch end, per-epoch
    mean train loss."""
    net, n = cfg.network, data.train.n_samples
    W = training.init_weights(net.widths, net.init_scale, cfg.train.seed)
    W_prev, step = [w.copy() for w in W], 0
    ends, losses = [], []
    for epoch in range(cfg.train.epochs):
        order = np.random.default_rng([cfg.train.seed, 2, epoch]).permutation(n)
        total = 0.0
        for s in range(0, n, cfg.train.batch_size):
            idx = order[s:s + cfg.train.batch_size]
            x, y = data.train.select(idx), data.train_labels[idx]
            recs = ref.forward(W, x, net.theta)
            rho = ref.readout(recs[-1].counts, recs[-1].u_final, net.theta, T)
            loss, delta = ref.loss_and_delta(rho, y, cfg.method, T)
            deltas = ref.backward_deltas(W, recs, delta, net.theta, T)
            inputs = [x] + [r.spikes for r in recs[:-1]]
            G = [ref.weight_gradient(a, r, d, net.theta, cfg.method.gradient) for a, r, d in zip(inputs, recs, deltas)]
            new = [ref.fractional_update(w, W_prev=wp, G=g, G_prev=None, step=step, optim=cfg.optim)
                   for w, wp, g in zip(W, W_prev, G)]
            W_prev, W, step = W, new, step + 1
            total += float(loss.sum())
        ends.append([w.copy() for w in W])
        losses.append(total / n)
    return ends, losses, step


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    a = training.epoch_order(3, 1, 50)
    np.random.seed(0)
    np.random.random(100)                       # global NumPy state must not matter
    np.testing.assert_array_equal(training.epoch_order(3, 1, 50), a)
    assert sorted(a.tolist()) == list(range(50)) and a.dtype == np.int64
    assert not np.array_equal(training.epoch_order(3, 2, 50), a)
    assert not np.array_equal(training.epoch_order(4, 1, 50), a)
    # the documented formula: checkpoints store no order, so resuming relies on it
    np.testing.assert_array_equal(a, np.random.default_rng([3, 2, 1]).permutation(50))
    assert training.epoch_order(3, 0, 0).size == 0


def test_init_weights_are_seeded_uniform_in_the_documented_bound():
    ws = training.init_weights((30, 16, 3), 0.5, seed=1)
    assert [w.shape for w in ws] == [(30, 16), (16, 3)] and all(w.dtype == np.float32 for w in ws)
    for w, n_pre in zip(ws, (30, 16)):
        bound = 0.5 * np.sqrt(3.0 / n_pre)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    np.testing.assert_array_equal(training.init_weights((30, 16, 3), 0.5, seed=1)[0], ws[0])
    assert not np.array_equal(training.init_weights((30, 16, 3), 0.5, seed=2)[0], ws[0])


def test_an_epoch_visits_every_sample_once_in_order_with_a_short_last_batch():
    cfg, data = tiny_cfg(), grouped_dataset(1)
    backend = Recording()
    assert isinstance(backend, Backend)
    state = training.new_state(cfg, backend)
    seen = []
    metrics = training.train_epoch(backend, state, cfg, data, on_batch=lambda st: seen.append(st.current.seen),
                                   progress=False)
    assert backend.batch_sizes == [8, 8, 6]                     # 22 samples, batch 8
    order = training.epoch_order(7, 0, 22)
    np.testing.assert_array_equal(np.concatenate(backend.labels), data.train_labels[order])
    assert seen == [8, 16, 22] and state.optim.step == 3 and state.current.batches_done == 3
    assert 0 <= metrics["train_accuracy"] <= 1 and metrics["train_loss"] > 0
    assert len(metrics["spikes_per_sample"]) == 2


@pytest.mark.parametrize("optim", [{"alpha": 1.0}, {"alpha": 1.5}], ids=["alpha1", "alpha1.5"])
def test_fit_matches_a_hand_run_of_the_same_steps(optim):
    cfg, data = tiny_cfg().replace(optim=optim), grouped_dataset(2)
    backend = get_backend("numpy")
    epochs_seen = []
    state = training.fit(backend, training.new_state(cfg, backend), cfg, data,
                         on_epoch=lambda st: epochs_seen.append(st.epoch), progress=False)
    ends, losses, steps = hand_run(cfg, data)
    assert epochs_seen == [1, 2] and state.epoch == 2 and state.optim.step == steps == 6
    init = training.init_weights(cfg.network.widths, cfg.network.init_scale, cfg.train.seed)
    for W, want, W0 in zip(state.weights, ends[-1], init):
        assert np.abs(want - W0).max() > 0.05                 # the steps moved every layer
        # forward bit for bit; gradients equal up to float32 summation order
        np.testing.assert_allclose(W, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert all(h["spikes_per_sample"][1] > 1 for h in state.history), "the output layer must spike"
    for h, loss in zip(state.history, losses):
        assert h["train_loss"] == pytest.approx(loss, rel=1e-5)
    # test metrics of each epoch: the reference forward of the weights at that epoch's end
    for h, W in zip(state.history, ends):
        recs = ref.forward(W, data.test, cfg.network.theta)
        rho = ref.readout(recs[-1].counts, recs[-1].u_final, cfg.network.theta, T)
        assert h["test_accuracy"] == pytest.approx(float((rho.argmax(1) == data.test_labels).mean()))
        assert h["test_loss"] == pytest.approx(float(ref.loss_and_delta(rho, data.test_labels, cfg.method, T)[0].mean()),
                                               rel=1e-4)


def test_fit_learns_the_grouped_task():
    cfg, data = tiny_cfg(epochs=6), grouped_dataset(3, n_train=96, n_test=48)
    backend = get_backend("numpy")
    state = training.fit(backend, training.new_state(cfg, backend), cfg, data, progress=False)
    loss = [h["train_loss"] for h in state.history]
    print("train loss per epoch:", loss)
    assert loss[-1] < 0.7 * loss[0]
    assert state.history[-1]["test_accuracy"] >= 0.8          # chance is 1/3


def test_predict_in_batches_equals_one_batch_and_evaluate_agrees():
    cfg, data = tiny_cfg(), grouped_dataset(4)
    backend = get_backend("numpy")
    weights = training.new_state(cfg, backend).weights
    whole = training.predict(backend, weights, data.test, cfg, batch_size=100)
    np.testing.assert_array_equal(training.predict(backend, weights, data.test, cfg, batch_size=4), whole)
    assert whole.shape == (9, C) and whole.dtype == np.float32
    ev = training.evaluate(backend, weights, data.test, data.test_labels, cfg)
    np.testing.assert_array_equal(ev["predictions"], whole.argmax(1))
    assert ev["accuracy"] == float((whole.argmax(1) == data.test_labels).mean())
    empty = data.test.select([])
    assert training.predict(backend, weights, empty, cfg).shape == (0, C)
    assert training.evaluate(backend, weights, empty, data.test_labels[:0], cfg)["accuracy"] == 0.0


@pytest.mark.parametrize("change, match", [({"widths": (N_IN + 1, 16, C)}, "inputs"),
                                           ({"widths": (N_IN, 16, C + 1)}, "classes"),
                                           ({"n_steps": T + 1}, "T=")])
def test_fit_refuses_a_network_that_does_not_fit_the_data(change, match):
    cfg = tiny_cfg().replace(network=change)
    backend = get_backend("numpy")
    with pytest.raises(ShapeError, match=match):
        training.fit(backend, training.new_state(cfg, backend), cfg, grouped_dataset(5), progress=False)
