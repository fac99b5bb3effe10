"""Per-batch CPU time of gpusnn's training step on the realrate workload, by part.

numpy backend, one thread (run with OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1), the first batch
of benchmarks/workloads.py realrate_spikes (seed 0) at T = 16 / 32 / 64, initial weights
(init_scale 0.03): each part timed alone in process CPU time, the minimum over `--repeats`
alternating rounds (the least disturbed figure on a shared machine). The batch's select and,
where NumpyBackend.stage makes them ahead (T = 16), its dense counts are the read-ahead
thread's work, reported apart from the step's. Writes
benchmarks/results/realrate-breakdown.json.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from common import machine, write_result
from workloads import realrate_spikes

from gpusnn import reference as ref
from gpusnn.backends.numpy import fastpaths as ck
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import MethodConfig, OptimConfig
from gpusnn.optimizer import init_state
from gpusnn.training import init_weights


#: The parts the trainer's read-ahead thread does (training.batches): not in the step's time.
READ_AHEAD = ("batch_select", "batch_stage")


def parts(T: int, batch: int = 32) -> dict:
    """Callables of one training step's parts on the first batch at T steps."""
    spikes, labels = realrate_spikes(batch * 2, T, 2048, 11, seed=0)
    W = init_weights((2048, 500, 11), 0.03, 0)
    backend, method, optim = NumpyBackend(threads=1), MethodConfig(), OptimConfig(lr=3e-4)
    b = spikes.select(np.arange(batch))
    recs = backend.forward(W, b, 1.0)
    out = recs[-1]

    def deltas():
        rho = ref.readout(out.counts, out.u_final, 1.0, T)
        return ref.backward_deltas(W, recs, ref.loss_and_delta(rho, labels[:batch], method, T, None)[1], 1.0, T)
    d = deltas()
    X = ck.CsrRows.of(b, 0, batch * T).dense(np.empty((batch * T, 2048), np.float32))
    staged = ck.stage_dense(b) if backend.stages(b) else None
    grads = [ck.weight_gradient(s, r, g, 1.0) for s, r, g in zip([b, recs[0].spikes], recs, d)]
    state, Wc = init_state(W, optim, np), [w.copy() for w in W]

    def gradient_from_kept():
        kept = ck.KeptDense()
        ck.layer_forward(W[0], b, 1.0, keep_dense=kept)
        t0 = time.process_time()
        ck.weight_gradient(b, recs[0], d[0], 1.0, dense_input=kept)
        return time.process_time() - t0
    first = {"batch_stage": lambda: ck.stage_dense(b),
             "layer1_forward_staged": lambda: ck.layer_forward(W[0], b, 1.0, staged=staged)} \
        if staged is not None else {"layer1_forward": lambda: ck.layer_forward(W[0], b, 1.0)}
    return {"batch_select": lambda: spikes.select(np.arange(batch, 2 * batch)),
            "layer1_product_alone": lambda: X @ W[0],
            **first,
            "layer2_forward": lambda: ck.layer_forward(W[1], recs[0].spikes, 1.0),
            "loss_and_deltas": deltas,
            "layer1_gradient": gradient_from_kept,
            "layer2_gradient": lambda: ck.weight_gradient(recs[0].spikes, recs[1], d[1], 1.0),
            "update": lambda: [backend.update(w, W_prev=wp, G=g, G_prev=None, step=1, optim=optim)
                               for w, wp, g in zip(Wc, state.W_prev, grads)]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    rows = []
    for T in (16, 32, 64):
        fns = parts(T)
        times = {k: [] for k in fns}
        for _ in range(args.repeats):
            for k, fn in fns.items():
                t0 = time.process_time()
                r = fn()
                times[k].append(r if isinstance(r, float) else time.process_time() - t0)
        ms = {k: float(np.min(v)) * 1e3 for k, v in times.items()}
        ahead = sum(v for k, v in ms.items() if k in READ_AHEAD)
        total = sum(v for k, v in ms.items() if k not in READ_AHEAD and k != "layer1_product_alone")
        rows.append({"T": T, "ms": ms, "step_ms": total, "read_ahead_ms": ahead,
                     "product_share": ms["layer1_product_alone"] / total})
        print(T, {k: round(v, 2) for k, v in ms.items()}, f"step {total:.1f} ms, read ahead {ahead:.1f} ms")
    write_result("realrate-breakdown", {"suite": "realrate-breakdown", "machine": machine(),
                                        "load_average_1min": os.getloadavg()[0], "repeats": args.repeats,
                                        "rows": rows})


if __name__ == "__main__":
    main()
