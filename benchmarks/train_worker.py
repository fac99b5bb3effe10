"""One trainer, one fresh process: time per training epoch and peak memory.

Workload (benchmarks/workloads.py): fully connected inputs-hidden-classes on "random"
binary input at a given density per step with random labels (docs/benchmarking.md,
"Training cost"), or "realrate" count input at the real recordings' event rate on
learnable classes; the same seed for every trainer, or one file (--data, written by
run.py) that every process loads. Batch B, the same sample order per epoch. Trainers:
gpusnn (FO-STDGD, numpy or cuda backend), snnTorch and SpikingJelly (surrogate-gradient
BPTT with ATan, Adam, nonleaky neurons). The peers get the input as a dense array of counts
(uint8, clipped at 255; bool for binary input) made before timing and converted to float
per batch inside the timed loop.

Prints one JSON line: epoch_s (each timed epoch, wall clock) and epoch_cpu_s (the process's
CPU time in it, every thread: on a shared machine the less disturbed figure of the work done
with one thread); rss_before_bytes (data and model loaded,
before the first epoch) and peak_rss_bytes (the peak over all epochs, warm-up included, so
that caching allocators cannot hide the training's working memory); device_peak_bytes on
a GPU; train_accuracy per epoch; hidden_firing: the hidden layer's fraction of silent
neurons (no spike in the window), of saturated ones (a spike every step) and its mean
spikes per neuron per step, over the last epoch's batches.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import peak_rss_bytes, reset_peak_rss, rss_bytes

from gpusnn.training import epoch_order
from workloads import WORKLOADS, load, make_workload


def gpusnn_trainer(args, spikes, labels):
    from gpusnn import training
    from gpusnn.backends import get_backend
    from gpusnn.config import RunConfig
    from data_tools.spikes import EncodedDataset
    cfg = RunConfig().replace(network={"widths": (args.inputs, args.hidden, args.classes), "n_steps": args.steps,
                                       "init_scale": args.init_scale},
                              train={"batch_size": args.batch, "epochs": 10 ** 6, "seed": args.seed,
                                     "backend": args.backend},
                              optim={} if args.lr is None else {"lr": args.lr}).validate()
    backend = get_backend(args.backend)
    data = EncodedDataset("bench", spikes, labels, spikes.select([0]), labels[:1], args.classes,
                          tuple(map(str, range(args.classes))), "bench", {})
    state = training.new_state(cfg, backend)
    firing = Firing(args.steps)
    forward = backend.forward

    def observed_forward(weights, batch, theta, **options):
        records = forward(weights, batch, theta, **options)
        if len(records) > 1:
            firing.add(np.asarray(backend.asnumpy(records[0].counts)))
        return records
    backend.forward = observed_forward

    def epoch():
        firing.reset()
        metrics = training.train_epoch(backend, state, cfg, data, progress=False)
        state.epoch += 1
        state.current = training.EpochProgress()
        ACCURACY.append(metrics["train_accuracy"])
        if args.backend == "cuda":
            import cupy
            cupy.cuda.Device().synchronize()

    def device_peak():
        if args.backend != "cuda":
            return None
        import cupy
        return int(cupy.get_default_memory_pool().total_bytes())
    return epoch, device_peak, firing


ACCURACY: list[float] = []


class Firing:
    """Hidden-layer spike counts per neuron [B, hidden] of the batches of one epoch."""

    def __init__(self, T: int):
        self.T, self.counts = T, []

    def reset(self):
        self.counts = []

    def add(self, counts: np.ndarray):
        self.counts.append(counts)

    def summary(self) -> dict | None:
        if not self.counts:
            return None
        c = np.concatenate(self.counts)
        return {"silent": float((c == 0).mean()), "saturated": float((c >= self.T).mean()),
                "spikes_per_neuron_step": float(c.mean() / self.T)}


def torch_trainer(args, spikes, labels):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.backend == "cuda" else "cpu")
    counted = spikes.counts is not None
    dense = np.zeros((spikes.n_samples * spikes.n_steps, spikes.n_inputs), np.uint8 if counted else bool)
    dense[spikes.rows(), spikes.ids] = np.minimum(spikes.counts, 255) if counted else True
    dense = dense.reshape(spikes.n_samples, spikes.n_steps, spikes.n_inputs)
    y_all = torch.from_numpy(labels)
    from peer_nets import make_net
    net, reset = make_net(args.trainer, args.inputs, args.hidden, args.classes, cupy_neurons=args.backend == "cuda")
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    state = {"epoch": 0}
    firing = Firing(args.steps)
    hidden = net.net[1] if args.trainer == "spikingjelly" else None
    if hidden is not None:     # the hidden IFNode's output spikes [T, B, hidden]
        hidden.register_forward_hook(lambda m, i, out: firing.add(out.detach().sum(0).cpu().numpy()))

    def epoch():
        firing.reset()
        correct = 0
        order = epoch_order(args.seed, state["epoch"], spikes.n_samples)
        for s in range(0, spikes.n_samples, args.batch):
            idx = order[s:s + args.batch]
            x = torch.from_numpy(dense[idx]).to(device).float().transpose(0, 1).contiguous()
            out = net(x)
            loss = torch.nn.functional.cross_entropy(out, y_all[idx].to(device))
            correct += int((out.argmax(1).cpu() == y_all[idx]).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if reset is not None:
                reset(net)
        if device.type == "cuda":
            torch.cuda.synchronize()
        state["epoch"] += 1
        ACCURACY.append(correct / spikes.n_samples)

    def device_peak():
        return int(torch.cuda.max_memory_allocated()) if device.type == "cuda" else None
    return epoch, device_peak, firing


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainer", choices=("gpusnn", "snntorch", "spikingjelly"), required=True)
    p.add_argument("--backend", default="numpy", help="gpusnn backend; cuda moves the peers to the GPU too")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--inputs", type=int, default=2048)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--density", type=float, default=0.05, help="input density of the random workload")
    p.add_argument("--workload", choices=WORKLOADS, default="random")
    p.add_argument("--rate", type=float, default=8.0, help="events per input line per step (realrate)")
    p.add_argument("--data", help="an .npz workload written by run.py (overrides --workload)")
    p.add_argument("--init-scale", type=float, default=1.0, help="gpusnn's network.init_scale")
    p.add_argument("--lr", type=float, help="gpusnn's optim.lr (default: the config's)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.data:
        spikes, labels = load(args.data)
    else:
        spikes, labels = make_workload(args.workload, args.samples, args.steps, args.inputs, args.classes,
                                       args.seed, args.density, args.rate)
    make = gpusnn_trainer if args.trainer == "gpusnn" else torch_trainer
    epoch, device_peak, firing = make(args, spikes, labels)
    before = rss_bytes()               # data and model in memory, nothing trained yet
    reset_peak_rss()
    for _ in range(args.warmup):
        epoch()
    times, cpu = [], []
    for _ in range(args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        epoch()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"trainer": args.trainer, "steps": args.steps, "epoch_s": times, "epoch_cpu_s": cpu,
                      "rss_before_bytes": before, "peak_rss_bytes": peak_rss_bytes(),
                      "device_peak_bytes": device_peak(), "train_accuracy": ACCURACY,
                      "hidden_firing": firing.summary(), "input_entries": spikes.nnz,
                      "input_spikes": spikes.n_spikes()}))


if __name__ == "__main__":
    main()
