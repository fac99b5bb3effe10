"""Data-parallel test cases: one tiny network and dataset, run by tests/test_distributed*.py in
process (P = 1) and by `mpiexec -n P python tests/dp_cases.py MODE OUT` (one process per rank).

Modes (each rank writes OUT/rank<r>.npz; the files are the test's, not the trainer's):
  grad  the summed gradient G of two global batches: a full one (4 samples) and a short one (1)
  fit   one epoch of 10 samples in batches of 4 (the last one short): weights, W_prev, history
  die   fit, but rank 1 kills itself (SIGKILL) after its second step
  hang  fit, but rank 1 sleeps after its second step (the others must give up after 2 s)
  nccl  NcclComm over fakes of cupy / cupy.cuda.nccl: the unique id each rank received
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from data_tools.spikes import EncodedDataset
from gpusnn import distributed, training
from gpusnn.backends import get_backend
from gpusnn.config import RunConfig
from helpers import random_spikes

GRAD_BATCHES = (np.arange(4), np.array([4]))  # a full and a short global batch


def tiny_config(dyadic: bool) -> RunConfig:
    """20-8-4, T = 8. dyadic: mse + rate gradient, whose G has only power-of-two divisors, so the
    per-rank sums are exact (given dyadic weights); else the default ce + timing gradient."""
    method = {"loss": "mse", "r_target": 0.5, "gradient": "rate"} if dyadic else {}
    return RunConfig().replace(network={"widths": (20, 8, 4), "n_steps": 8, "theta": 1.0},
                               method=method, optim={"alpha": 1.3, "lr": 0.05},
                               train={"epochs": 1, "batch_size": 4, "seed": 5, "backend": "numpy"})


def tiny_data(n_train: int = 10, n_test: int = 7) -> EncodedDataset:
    rng = np.random.default_rng(11)
    return EncodedDataset("tiny", random_spikes(rng, n_train, 8, 20, 0.3), rng.integers(0, 4, n_train),
                          random_spikes(rng, n_test, 8, 20, 0.3), rng.integers(0, 4, n_test), 4,
                          ("a", "b", "c", "d"), "tiny-identity", {})


def tiny_state(cfg: RunConfig, backend, dyadic: bool) -> training.TrainState:
    """Fresh state; dyadic: weights rounded to multiples of 1/16 (exact float32 sums)."""
    state = training.new_state(cfg, backend)
    if dyadic:
        state.weights = [np.round(W * 16) / 16 for W in state.weights]
        state.optim.W_prev = [W.copy() for W in state.weights]
    return state


def batch_gradient(backend, weights, data: EncodedDataset, cfg: RunConfig, idx: np.ndarray, comm) -> list:
    """G of the global batch idx, each rank computing its share, summed over comm."""
    mine = distributed.part(idx, comm.rank, comm.size)
    spikes = data.train.select(mine)
    records = backend.forward(weights, spikes, cfg.network.theta)
    grads = backend.gradients(weights, spikes, records, data.train_labels[mine], cfg.network.n_steps,
                              cfg.network.theta, cfg.method, len(idx))[2]
    return comm.allreduce_sum(grads)


class FakeNccl:
    """The parts of cupy.cuda.nccl that NcclComm uses; rank 0's id is random per run."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT64, NCCL_SUM = 7, 8, 4, 0

    def __init__(self):
        self.made = []

    def get_unique_id(self):
        return tuple(int(b) for b in os.urandom(128))

    def NcclCommunicator(self, size, uid, rank):
        self.made.append((size, uid, rank))
        return object()


def main(mode: str, out: Path) -> None:
    backend = get_backend("numpy")
    if mode == "nccl":
        host = distributed.MpiComm(timeout=20)
        fake = FakeNccl()
        comm = distributed.NcclComm(host, nccl=fake, cupy=object())
        size, uid, rank = fake.made[0]
        np.savez(out / f"rank{comm.rank}.npz", uid=np.array(uid), size=size, rank=rank)
        return
    comm = distributed.MpiComm(timeout=2.0 if mode == "hang" else 60.0)
    dyadic = mode == "grad"
    cfg = tiny_config(dyadic)
    data = tiny_data()
    state = tiny_state(cfg, backend, dyadic)
    if mode == "grad":
        Gs = [batch_gradient(backend, state.weights, data, cfg, idx, comm) for idx in GRAD_BATCHES]
        np.savez(out / f"rank{comm.rank}.npz", **{f"G{b}_{l}": G for b, Gb in enumerate(Gs) for l, G in enumerate(Gb)})
        return

    def fault(st) -> None:
        if comm.rank == 1 and st.optim.step == 2:
            if mode == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "hang":
                time.sleep(600)

    with distributed.guard(comm):
        training.fit(backend, state, cfg, data, on_batch=fault, progress=False, comm=comm)
    np.savez(out / f"rank{comm.rank}.npz", **{f"W{l}": W for l, W in enumerate(state.weights)},
             **{f"P{l}": W for l, W in enumerate(state.optim.W_prev)}, step=state.optim.step,
             history=json.dumps([{k: v for k, v in h.items() if "seconds" not in k} for h in state.history]))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
