"""One trainer, one fresh process: time per training epoch and peak memory.

Workload (docs/benchmarking.md, "Training cost"): fully connected inputs-hidden-classes,
random binary input at a given density per step (gpusnn.profiling.random_spikes, the same
seed for every trainer), random labels, batch B, the same sample order per epoch. Trainers:
gpusnn (FO-STDGD, numpy or cuda backend), snnTorch and SpikingJelly (surrogate-gradient
BPTT with ATan, Adam, nonleaky neurons). The peers get the input as a dense bool array made
before timing and converted to float per batch inside the timed loop.

Prints one JSON line: epoch_s (each timed epoch); rss_before_bytes (data and model loaded,
before the first epoch) and peak_rss_bytes (the peak over all epochs, warm-up included, so
that caching allocators cannot hide the training's working memory); device_peak_bytes on
a GPU.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import peak_rss_bytes, reset_peak_rss, rss_bytes

from gpusnn.profiling import random_spikes
from gpusnn.training import epoch_order


def gpusnn_trainer(args, spikes, labels):
    from gpusnn import training
    from gpusnn.backends import get_backend
    from gpusnn.config import RunConfig
    from data_tools.spikes import EncodedDataset
    cfg = RunConfig().replace(network={"widths": (args.inputs, args.hidden, args.classes), "n_steps": args.steps},
                              train={"batch_size": args.batch, "epochs": 10 ** 6, "seed": args.seed,
                                     "backend": args.backend}).validate()
    backend = get_backend(args.backend)
    data = EncodedDataset("bench", spikes, labels, spikes.select([0]), labels[:1], args.classes,
                          tuple(map(str, range(args.classes))), "bench", {})
    state = training.new_state(cfg, backend)

    def epoch():
        training.train_epoch(backend, state, cfg, data, progress=False)
        state.epoch += 1
        state.current = training.EpochProgress()
        if args.backend == "cuda":
            import cupy
            cupy.cuda.Device().synchronize()

    def device_peak():
        if args.backend != "cuda":
            return None
        import cupy
        return int(cupy.get_default_memory_pool().total_bytes())
    return epoch, device_peak


def torch_trainer(args, spikes, labels):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.backend == "cuda" else "cpu")
    dense = np.zeros((spikes.n_samples * spikes.n_steps, spikes.n_inputs), bool)
    dense[spikes.rows(), spikes.ids] = True
    dense = dense.reshape(spikes.n_samples, spikes.n_steps, spikes.n_inputs)
    y_all = torch.from_numpy(labels)
    from peer_nets import make_net
    net, reset = make_net(args.trainer, args.inputs, args.hidden, args.classes, cupy_neurons=args.backend == "cuda")
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    state = {"epoch": 0}

    def epoch():
        order = epoch_order(args.seed, state["epoch"], spikes.n_samples)
        for s in range(0, spikes.n_samples, args.batch):
            idx = order[s:s + args.batch]
            x = torch.from_numpy(dense[idx]).to(device).float().transpose(0, 1).contiguous()
            out = net(x)
            loss = torch.nn.functional.cross_entropy(out, y_all[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if reset is not None:
                reset(net)
        if device.type == "cuda":
            torch.cuda.synchronize()
        state["epoch"] += 1

    def device_peak():
        return int(torch.cuda.max_memory_allocated()) if device.type == "cuda" else None
    return epoch, device_peak


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
    p.add_argument("--density", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    spikes = random_spikes(args.samples, args.steps, args.inputs, args.density, args.seed)
    labels = np.random.default_rng([args.seed, 4]).integers(0, args.classes, args.samples)
    make = gpusnn_trainer if args.trainer == "gpusnn" else torch_trainer
    epoch, device_peak = make(args, spikes, labels)
    before = rss_bytes()               # data and model in memory, nothing trained yet
    reset_peak_rss()
    for _ in range(args.warmup):
        epoch()
    times = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"trainer": args.trainer, "steps": args.steps, "epoch_s": times,
                      "rss_before_bytes": before, "peak_rss_bytes": peak_rss_bytes(),
                      "device_peak_bytes": device_peak()}))


if __name__ == "__main__":
    main()
