"""Counted device traffic of one store-backed training batch encoded on the device (the
"device-encoded batch" rows of docs/kernels.md's traffic table): random DVS-like events of S
samples uploaded once (training.resident_events' path), then per batch encode_samples (a
SpikeGrid in binary mode, PaddedSpikes in count mode) and train_batch. Counts, not timings:
the emulated backend's counts are cuda's (gpusnn.backends.gpu.counting).

usage: python benchmarks/device_encoded_traffic.py [--backend emulated] [--hidden 500]
       [--classes 11] [--steps 20] [--batch-size 32] [--events 2100] [--out F.json]

--events is the events per sample: 2,100 uniform events over 2 x 32 x 32 inputs and T = 20
steps mark ~5 % of the (input, step) cells, the density of the profile workload.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from common import report

from gpusnn import training
from gpusnn.backends import get_backend
from gpusnn.config import RunConfig
from gpusnn.errors import GpusnnError

SENSOR, DOWNSAMPLE = (128, 128, 2), 4      # 2 x 32 x 32 = 2,048 inputs


def random_events(rng, n_samples: int, per_sample: int, duration: int = 1_000_000):
    """Columns x, y, p, t of n_samples samples of per_sample uniform events each (time order
    within a sample), their offsets [S + 1] and durations [S] (us)."""
    n = n_samples * per_sample
    t = np.sort(rng.integers(0, duration, (n_samples, per_sample)), axis=1).reshape(-1)
    cols = {"x": rng.integers(0, SENSOR[0], n).astype(np.int16), "y": rng.integers(0, SENSOR[1], n).astype(np.int16),
            "p": rng.integers(0, 2, n).astype(np.uint8), "t": t.astype(np.int64)}
    offsets = np.arange(n_samples + 1, dtype=np.int64) * per_sample
    return cols, offsets, np.full(n_samples, duration, np.int64)


def counted_batch(backend, cfg, store, idx, labels, mode: str) -> dict:
    """The traffic of encoding idx from store and training one batch on it."""
    state = training.new_state(cfg, backend)
    traffic = backend.rt.reset_counts()
    spikes = backend.encode_samples(store, idx, cfg.network.n_steps, downsample=DOWNSAMPLE, mode=mode)
    encode_syncs = traffic.host_syncs
    training.train_batch(backend, state, cfg, spikes, labels)
    out = traffic.as_dict()
    out.update(input_form=type(spikes).__name__, encode_host_syncs=encode_syncs,
               input_entries=spikes.to(np).nnz)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="emulated")
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--classes", type=int, default=11)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--events", type=int, default=2100, help="events per sample")
    ap.add_argument("--out", help="write the result JSON here")
    args = ap.parse_args(argv)
    B, T = args.batch_size, args.steps
    try:
        backend = get_backend(args.backend)
        if not hasattr(backend, "encode_samples"):
            raise GpusnnError(f"--backend {args.backend} does not encode on the device (cuda or emulated)")
    except GpusnnError as e:
        print(f"device_encoded_traffic: {e}", file=sys.stderr)
        return 2
    n_in = SENSOR[2] * (SENSOR[0] // DOWNSAMPLE) * (SENSOR[1] // DOWNSAMPLE)
    cfg = RunConfig().replace(network={"widths": [n_in, args.hidden, args.classes], "n_steps": T},
                              train={"batch_size": B})
    rng = np.random.default_rng(0)
    cols, offsets, durations = random_events(rng, 2 * B, args.events)
    store = backend.upload_events(cols, offsets, durations, SENSOR)
    idx, labels = rng.permutation(2 * B)[:B], rng.integers(0, args.classes, B)
    result = {"what": "counted traffic of one device-encoded training batch (encode_samples from a resident "
                      "store + train_batch); counts, not timings", "backend": backend.name,
              "widths": cfg.network.widths, "n_steps": T, "batch_size": B, "events_per_sample": args.events,
              "load_average_1m": os.getloadavg()[0]}
    for mode in ("binary", "count"):
        result[mode] = counted_batch(backend, cfg, store, idx, labels, mode)
    return report(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
