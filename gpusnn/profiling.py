"""Throughput profile of one training step on any backend (`gpusnn profile`).

A workload is a network (widths), T, a batch and its input: random binary spikes at a
given density, or batches of a real dataset. The profiler runs `warmup` untimed training
steps, then `repeats` timed ones, and reports for each phase the median seconds:

    decode_bin     build the batch's spike tensor from the encoded dataset (host)
    h2d            copy the batch to the backend's device
    forward_l1..   event-driven IF, one entry per layer
    gradient       readout, loss, deltas and the spike-timing weight gradients
    update         fractional-order update of every layer
    d2h            copy the output rates and spike counts back to the host

Clocks: CUDA events on the cuda backend; time.perf_counter elsewhere (the emulated
backend has no CUDA events, and its report says "perf_counter (emulated)").

Counts are exact and per batch (they do not depend on the clock):

    input_events                 input spikes of the batch
    synaptic_events_forward[l]   spikes into layer l x its fan-out (n_post): one weight-row
                                 element added per spike and post neuron
    synaptic_events_backward[l]  the additions of the event-driven gradient (method.md 3):
                                 presynaptic spike (b, t, j) adds to G_ji for every post
                                 neuron i whose window starts before t (w_bi < t)

Throughput = count / median phase time: input_events_per_s over the whole step,
synaptic_events_forward_per_s over the forward layers, synaptic_events_backward_per_s
over the gradient. Memory: host peak = tracemalloc's peak over one extra, untimed step
(NumPy buffers included) and the process's peak RSS; device peak = CuPy's memory pool after the
run (cuda only). Bandwidth (cuda only): 4 bytes per synaptic event (the float32 weight
or gradient element touched) over forward + gradient time, against the device's peak
(memory clock x bus width x 2).

Device traffic (emulated and cuda; null on numpy): one more training batch, exactly as
the trainer runs it (training.device_spikes(backend, SpikeTensor) + train_batch), counted by the kernel runtime
(gpusnn.backends.gpu.counting): host_syncs_per_batch, launches_per_batch (project kernels
+ library calls), copies and bytes each way, and a breakdown by kernel, library call and
synchronisation site. Structural counts: the same on emulated and cuda.

JSON keys (see PROFILE_KEYS): workload, machine, timing, phases_s, counts, throughput,
memory, bandwidth, device_traffic.
"""
from __future__ import annotations

import os
import platform
import resource
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass

import numpy as np

from data_tools.progress import progress_bar
from data_tools.spikes import SpikeTensor
from gpusnn import training
from gpusnn.backends import Backend
from gpusnn.config import RunConfig
from gpusnn.errors import ConfigError

PROFILE_KEYS = ("workload", "machine", "timing", "phases_s", "counts", "throughput", "memory", "bandwidth",
                "device_traffic")


@dataclass(frozen=True)
class Workload:
    """What to profile. widths: layer sizes input..output; n_steps: T; batch_size: B;
    density: input spike probability per (sample, step, input) of the synthetic input
    (None when a real dataset is used); data: dataset name (None = synthetic)."""

    widths: tuple[int, ...]
    n_steps: int
    batch_size: int
    density: float | None = 0.05
    data: str | None = None
    backend: str = "numpy"
    repeats: int = 5
    warmup: int = 1
    seed: int = 0


def random_spikes(n_samples: int, n_steps: int, n_inputs: int, density: float, seed: int,
                  rows_per_chunk: int = 4096) -> SpikeTensor:
    """Binary spikes, each (sample, step, input) on with probability density. B x T x n_inputs.

    Drawn in chunks of rows so that memory stays O(spikes), not O(B x T x n_inputs).
    """
    rng = np.random.default_rng([seed, 3])
    n_rows = n_samples * n_steps
    lengths, ids = [], []
    for r0 in range(0, n_rows, rows_per_chunk):
        on = rng.random((min(rows_per_chunk, n_rows - r0), n_inputs), dtype=np.float32) < density
        lengths.append(on.sum(axis=1))
        ids.append(np.nonzero(on)[1].astype(np.int32))
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    return SpikeTensor(indptr, np.concatenate(ids) if ids else np.zeros(0, np.int32), n_samples, n_steps, n_inputs)


def backward_synaptic_events(spikes_in: SpikeTensor, t_last: np.ndarray, t_prev: np.ndarray) -> int:
    """Additions of the event-driven gradient of one layer: sum over input spikes (b, t, j)
    of #{post neurons i : w_bi < t}; t_last, t_prev int [B, n_post] of the post layer."""
    from gpusnn.reference import window_start
    B, T = spikes_in.n_samples, spikes_in.n_steps
    w = window_start(np.asarray(t_last), np.asarray(t_prev), T)
    # starts[b, s] = post neurons of sample b whose window starts at s (s = 0..T-1)
    starts = np.zeros((B, T + 1), np.int64)
    np.add.at(starts, (np.repeat(np.arange(B), w.shape[1]), w.ravel()), 1)
    before = np.cumsum(starts, axis=1)[:, :T]            # before[b, t-1] = #{i : w_bi <= t-1}
    per_row = np.diff(np.asarray(spikes_in.indptr)).reshape(B, T)
    return int((per_row * before).sum())


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def machine_info(backend_name: str) -> dict:
    """CPU, Python and library versions, and on cuda the GPU, CuPy and CUDA versions."""
    import scipy
    info = {"cpu": cpu_model(), "cpu_cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
            "backend": backend_name}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "architecture", "num_threads")}
                        for p in threadpool_info()]
    except ImportError:
        pass
    if backend_name == "cuda":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        info.update(gpu=props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
                    cupy=cupy.__version__, cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                    cuda_driver=cupy.cuda.runtime.driverGetVersion(),
                    gpu_memory_bytes=int(props["totalGlobalMem"]))
    elif backend_name == "emulated":
        info["gpu"] = "none (emulated: the CUDA kernels run on the CPU)"
    return info


def device_peak_bandwidth() -> float | None:
    """Peak memory bandwidth of the current CUDA device in bytes/s (None if unknown)."""
    import cupy
    rt = cupy.cuda.runtime
    try:
        dev = cupy.cuda.Device().id
        clock_khz = rt.deviceGetAttribute(rt.cudaDevAttrMemoryClockRate, dev)
        bus_bits = rt.deviceGetAttribute(rt.cudaDevAttrGlobalMemoryBusWidth, dev)
    except Exception:  # attribute missing in this CUDA / CuPy: report no peak rather than guess
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


class Clock:
    """Times one phase: CUDA events on cuda (device time of the enqueued work), else
    time.perf_counter after the work returns."""

    def __init__(self, backend_name: str):
        self.cuda = backend_name == "cuda"
        self.method = {"cuda": "cuda events", "emulated": "perf_counter (emulated)"}.get(backend_name, "perf_counter")

    def time(self, fn):
        """(fn(), seconds)."""
        if self.cuda:
            import cupy
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            out = fn()
            end.record()
            end.synchronize()
            return out, cupy.cuda.get_elapsed_time(start, end) / 1e3
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0


def _dataset(work: Workload):
    """(spikes, labels) of the training split: synthetic random input or a loaded dataset."""
    if work.data is None:
        n = work.batch_size * (work.warmup + work.repeats)
        spikes = random_spikes(n, work.n_steps, work.widths[0], work.density, work.seed)
        labels = np.random.default_rng([work.seed, 4]).integers(0, work.widths[-1], n)
        return spikes, labels
    from data_tools.datasets import load
    data = load(work.data, work.n_steps, work.seed, progress=False)
    return data.train, data.train_labels


def _step(backend: Backend, state, cfg: RunConfig, spikes: SpikeTensor, labels, idx, clock: Clock, times: dict) -> dict:
    """One timed training step; adds each phase's seconds to times; returns its counts."""
    net = cfg.network

    def timed(name, fn):
        out, sec = clock.time(fn)
        times.setdefault(name, []).append(sec)
        return out

    batch = timed("decode_bin", lambda: spikes.select(idx))
    dev = timed("h2d", lambda: training.device_spikes(backend, batch))
    records, layer_in = [], dev
    for l, W in enumerate(state.weights):
        rec = timed(f"forward_l{l + 1}", lambda: backend.forward([W], layer_in, net.theta)[0])
        records.append(rec)
        layer_in = rec.spikes
    _, rho, grads = timed("gradient", lambda: backend.gradients(state.weights, dev, records, labels[idx],
                                                                net.n_steps, net.theta, cfg.method))
    timed("update", lambda: training.apply_update(backend, state.weights, grads, state.optim, cfg.optim))
    # d2h: what train_batch copies back (rates and spike counts); the rest below is the profiler's own
    host = timed("d2h", lambda: [backend.asnumpy(rho)] + [backend.asnumpy(r.counts) for r in records])
    counts = host[1:]
    t_last = [backend.asnumpy(r.t_last) for r in records]
    t_prev = [backend.asnumpy(r.t_prev) for r in records]
    inputs = [batch] + [r.spikes.to(np) for r in records[:-1]]
    return {"input_events": batch.n_spikes(),
            "layer_spikes": [int(c.sum()) for c in counts],
            "synaptic_events_forward": [s.nnz * W.shape[1] for s, W in zip(inputs, state.weights)],
            "synaptic_events_backward": [backward_synaptic_events(s, tl, tp)
                                         for s, tl, tp in zip(inputs, t_last, t_prev)]}


def batch_traffic(backend, state, cfg: RunConfig, spikes: SpikeTensor, labels) -> dict | None:
    """The counted device traffic of one training batch (upload + train_batch) of the given
    host batch; None on a backend without a kernel runtime (numpy)."""
    rt = getattr(backend, "rt", None)
    if rt is None:
        return None
    traffic = rt.reset_counts()
    training.train_batch(backend, state, cfg, training.device_spikes(backend, spikes), labels)
    return traffic.as_dict()


def profile(work: Workload, cfg: RunConfig | None = None, data=None, progress: bool = False) -> dict:
    """Run the workload and return the report (a JSON-able dict with PROFILE_KEYS).

    cfg supplies the method and optimiser options (default RunConfig()); data: the
    (SpikeTensor, labels) of work.data when already loaded.
    """
    from gpusnn.backends import get_backend
    if work.repeats < 1 or work.warmup < 0:
        raise ConfigError(f"profile needs repeats >= 1 and warmup >= 0, got {work.repeats} and {work.warmup}")
    cfg = (cfg or RunConfig()).replace(network={"widths": tuple(work.widths), "n_steps": work.n_steps},
                                       train={"batch_size": work.batch_size, "seed": work.seed,
                                              "backend": work.backend}).validate()
    backend = get_backend(work.backend)
    clock = Clock(backend.name)
    spikes, labels = data if data is not None else _dataset(work)
    state = training.new_state(cfg, backend)
    n_batches = max(1, spikes.n_samples // work.batch_size)
    n_steps = work.warmup + work.repeats + 1
    bar = progress_bar(total=n_steps, enabled=progress, desc=f"profile {backend.name}", unit="step")
    times: dict = {}
    counts = []
    for k in range(n_steps):
        if k == work.warmup:
            times = {}
        traced = k == n_steps - 1          # one last step under tracemalloc, which slows allocation: not timed
        if traced:
            tracemalloc.start()
        b0 = (k % n_batches) * work.batch_size
        idx = np.arange(b0, min(b0 + work.batch_size, spikes.n_samples))
        step_counts = _step(backend, state, cfg, spikes, labels, idx, clock, {} if traced else times)
        if not traced:
            counts.append(step_counts)
        bar.update(1)
    host_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    idx = np.arange(min(work.batch_size, spikes.n_samples))
    traffic = batch_traffic(backend, state, cfg, spikes.select(idx), labels[idx])
    bar.close()
    return report(work, backend.name, clock.method, times, counts[work.warmup:], host_peak, traffic)


def _median_counts(counts: list[dict]) -> dict:
    """Median over the timed steps of every count (exact per step; equal steps give the step's)."""
    out = {}
    for key in counts[0]:
        vals = np.array([c[key] for c in counts])
        out[key] = np.median(vals, axis=0).tolist() if vals.ndim > 1 else float(np.median(vals))
    return out


def report(work: Workload, backend_name: str, clock_method: str, times: dict, counts: list[dict],
           host_peak: int, traffic: dict | None = None) -> dict:
    """Assemble the JSON-able report from the raw per-step times and counts (traffic: the
    counted device traffic of one batch, batch_traffic)."""
    phases = {k: float(np.median(v)) for k, v in times.items()}
    c = _median_counts(counts)
    fwd = sum(v for k, v in phases.items() if k.startswith("forward_"))
    total = sum(phases.values())
    syn_f, syn_b = sum(c["synaptic_events_forward"]), sum(c["synaptic_events_backward"])

    def rate(n, sec):
        return n / sec if sec > 0 else None

    device_peak, bandwidth = None, None
    if backend_name == "cuda":
        import cupy
        device_peak = int(cupy.get_default_memory_pool().total_bytes())
        achieved = rate(4.0 * (syn_f + syn_b), fwd + phases.get("gradient", 0.0))
        peak = device_peak_bandwidth()
        bandwidth = {"achieved_bytes_per_s": achieved, "device_peak_bytes_per_s": peak,
                     "fraction_of_peak": achieved / peak if achieved and peak else None,
                     "model": "4 bytes per synaptic event over forward + gradient time"}
    return {
        "workload": asdict(work),
        "machine": machine_info(backend_name),
        "timing": {"clock": clock_method, "repeats": work.repeats, "warmup": work.warmup, "statistic": "median"},
        "phases_s": phases,
        "counts": c,
        "throughput": {"step_s": total, "input_events_per_s": rate(c["input_events"], total),
                       "synaptic_events_forward_per_s": rate(syn_f, fwd),
                       "synaptic_events_backward_per_s": rate(syn_b, phases.get("gradient", 0.0))},
        "memory": {"host_peak_traced_bytes": int(host_peak),
                   "host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                   "device_peak_bytes": device_peak},
        "bandwidth": bandwidth,
        "device_traffic": traffic,
    }


def format_table(rep: dict) -> str:
    """The report as a readable text table."""
    w, m, th = rep["workload"], rep["machine"], rep["throughput"]
    total = th["step_s"] or 1.0
    lines = [f"gpusnn profile: {'-'.join(map(str, w['widths']))}, T={w['n_steps']}, batch {w['batch_size']}, "
             + (f"density {w['density']:.3%}" if w["data"] is None else f"data {w['data']}")
             + f", backend {m['backend']} ({rep['timing']['clock']}, median of {w['repeats']} after {w['warmup']} warm-up)",
             f"machine: {m['cpu']} x{m['cpu_cores']}" + (f", GPU {m['gpu']}" if "gpu" in m else "")
             + (f", CuPy {m['cupy']}, CUDA runtime {m['cuda_runtime']}" if "cupy" in m else "")
             + f", Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}",
             "", f"{'phase':<14}{'ms':>10}{'share':>8}"]
    lines += [f"{k:<14}{v * 1e3:>10.3f}{v / total:>8.1%}" for k, v in rep["phases_s"].items()]
    lines.append(f"{'step':<14}{total * 1e3:>10.3f}")
    c = rep["counts"]

    def fmt(x):
        return "n/a" if x is None else f"{x:,.0f}"

    lines += ["", f"input events / batch          {fmt(c['input_events'])}",
              f"synaptic events fwd / batch   {' + '.join(fmt(x) for x in c['synaptic_events_forward'])}",
              f"synaptic events bwd / batch   {' + '.join(fmt(x) for x in c['synaptic_events_backward'])}",
              f"input events / s              {fmt(th['input_events_per_s'])}",
              f"synaptic events / s fwd       {fmt(th['synaptic_events_forward_per_s'])}",
              f"synaptic events / s bwd       {fmt(th['synaptic_events_backward_per_s'])}"]
    mem = rep["memory"]
    lines += [f"host peak (traced / RSS)      {mem['host_peak_traced_bytes'] / 2**20:.1f} MiB / "
              f"{mem['host_peak_rss_bytes'] / 2**20:.1f} MiB",
              "device peak                   " + ("n/a" if mem["device_peak_bytes"] is None
                                                  else f"{mem['device_peak_bytes'] / 2**20:.1f} MiB")]
    tr = rep["device_traffic"]
    if tr is not None:
        lines += [f"launches / batch              {tr['launches_per_batch']} ({tr['project_launches']} kernels + "
                  f"{tr['library_calls']} library calls)",
                  f"host syncs / batch            {tr['host_syncs_per_batch']} "
                  f"({', '.join(f'{k} x{v}' for k, v in tr['breakdown']['syncs'].items())})",
                  f"copies / batch d2h, h2d       {tr['d2h_copies']} ({tr['d2h_bytes']:,} B), "
                  f"{tr['h2d_copies']} ({tr['h2d_bytes']:,} B)"]
    bw = rep["bandwidth"]
    if bw is not None:
        frac = "" if bw["fraction_of_peak"] is None else f" ({bw['fraction_of_peak']:.1%} of peak)"
        achieved = bw["achieved_bytes_per_s"]
        lines.append(f"bandwidth                     {'n/a' if achieved is None else f'{achieved / 1e9:.2f}'} GB/s{frac}")
    return "\n".join(lines)
