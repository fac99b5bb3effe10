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
                                       "init_scale": args.init_scale, "theta": args.theta},
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
    epoch.evaluate = lambda test, test_labels: gpusnn_accuracy(backend, state, cfg, test, test_labels)
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


def dense_input(spikes) -> np.ndarray:
    """The peers' input [S, T, n_inputs]: counts as uint8 (clipped at 255), bool for binary input."""
    counted = spikes.counts is not None
    dense = np.zeros((spikes.n_samples * spikes.n_steps, spikes.n_inputs), np.uint8 if counted else bool)
    dense[spikes.rows(), spikes.ids] = np.minimum(spikes.counts, 255) if counted else True
    return dense.reshape(spikes.n_samples, spikes.n_steps, spikes.n_inputs)


def watch_snntorch_hidden(net, firing: Firing) -> None:
    """Record the hidden layer's spike counts [B, hidden] of every forward of an snnTorch net
    (peer_nets: its lif1 returns (spikes, membrane) once per step)."""
    steps = []
    net.lif1.register_forward_hook(lambda m, i, out: steps.append(out[0].detach()))

    def flush(m, i, out):
        firing.add(sum(steps).cpu().numpy())
        steps.clear()
    net.register_forward_hook(flush)


def torch_trainer(args, spikes, labels):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.backend == "cuda" else "cpu")
    dense = dense_input(spikes)
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
    else:                      # snnTorch: the hidden Leaky's spikes per step, summed when the net returns
        watch_snntorch_hidden(net, firing)

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
    epoch.evaluate = lambda test, test_labels: torch_accuracy(args, net, reset, device, test, test_labels)
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
    p.add_argument("--theta", type=float, default=1.0, help="gpusnn's network.theta")
    p.add_argument("--tta", metavar="NPZ", help="time to accuracy on an encoded dataset (workloads.save_dataset): "
                                                "train up to --epochs, evaluating the test split after each")
    p.add_argument("--target", type=float, nargs="+", default=[0.8],
                   help="--tta: test accuracies to reach (training stops at the highest)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.tta:
        return tta_main(args)
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


# ----------------------------------------------------------------------------- time to accuracy (tta)

def gpusnn_accuracy(backend, state, cfg, test, test_labels) -> float:
    """gpusnn's test accuracy (the project's readout, gpusnn.training.predict)."""
    from gpusnn import training
    rho = training.predict(backend, state.weights, test, cfg)
    return float((rho.argmax(axis=1) == test_labels).mean())


def torch_accuracy(args, net, reset, device, test, test_labels, batch: int = 256) -> float:
    """A peer's test accuracy: argmax of its summed output, in batches without gradients."""
    import torch
    dense, correct = dense_input(test), 0
    with torch.no_grad():
        for s in range(0, test.n_samples, batch):
            x = torch.from_numpy(dense[s:s + batch]).to(device).float().transpose(0, 1).contiguous()
            correct += int((net(x).argmax(1).cpu().numpy() == test_labels[s:s + batch]).sum())
            if reset is not None:
                reset(net)
    return correct / test.n_samples


def tta_main(args) -> None:
    """Train on the encoded dataset args.tta epoch by epoch (at most args.epochs), evaluate the
    test split after each (timed apart), and stop once its accuracy reaches the highest of
    args.target. Prints one JSON line: train_s and eval_s per epoch, test_accuracy per epoch,
    per target (as a string key) seconds_to_target (the training seconds summed up to the
    first epoch at that accuracy; None = not reached) and epochs_to_target, the hidden firing of
    every epoch and gpusnn's theta (with its input-drive rule applied)."""
    from workloads import load_dataset
    train, train_labels, test, test_labels, n_classes = load_dataset(args.tta)
    args.inputs, args.classes, args.steps = train.n_inputs, n_classes, train.n_steps
    if args.trainer == "gpusnn":                 # gpusnn train's threshold rule (network.drive_ref)
        from gpusnn import training
        from gpusnn.config import RunConfig
        cfg = RunConfig().replace(network={"widths": (train.n_inputs, args.hidden, n_classes),
                                           "n_steps": train.n_steps}).validate()
        args.theta = training.with_input_drive(cfg, train).network.theta
    make = gpusnn_trainer if args.trainer == "gpusnn" else torch_trainer
    epoch, _, firing = make(args, train, train_labels)
    targets = sorted(args.target)
    train_s, eval_s, accuracy, fired = [], [], [], []
    seconds, epochs = dict.fromkeys(map(str, targets)), dict.fromkeys(map(str, targets))
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        epoch()
        train_s.append(time.perf_counter() - t0)
        fired.append(firing.summary())
        t0 = time.perf_counter()
        accuracy.append(epoch.evaluate(test, test_labels))
        eval_s.append(time.perf_counter() - t0)
        for t in targets:
            if seconds[str(t)] is None and accuracy[-1] >= t:
                seconds[str(t)], epochs[str(t)] = float(sum(train_s)), len(train_s)
        if accuracy[-1] >= targets[-1]:
            break
    print(json.dumps({"trainer": args.trainer, "seed": args.seed, "threads": args.threads, "targets": targets,
                      "seconds_to_target": seconds, "epochs_to_target": epochs,
                      "max_epochs": args.epochs, "train_s": train_s, "eval_s": eval_s, "test_accuracy": accuracy,
                      "train_accuracy": ACCURACY, "hidden_firing": fired,
                      "theta": args.theta if args.trainer == "gpusnn" else None,
                      "n_train": train.n_samples, "n_test": test.n_samples, "steps": train.n_steps,
                      "inputs": train.n_inputs}))

if __name__ == "__main__":
    main()
