"""Small builders shared by the tests (no fixtures with hidden state)."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from data_tools.spikes import SpikeTensor, from_coo, from_dense


def spikes_at(steps_by_input: dict[int, list[int]], n_inputs: int, T: int) -> SpikeTensor:
    """One sample whose input j spikes at the given steps (1-based)."""
    rows = [(t, j) for j, ts in steps_by_input.items() for t in ts]
    step = [t for t, _ in rows]
    ids = [j for _, j in rows]
    return from_coo(np.zeros(len(rows), np.int64), step, ids, 1, T, n_inputs)


def random_spikes(rng: np.random.Generator, B: int, T: int, N: int, density: float) -> SpikeTensor:
    """Binary Bernoulli spikes [B, T, N]."""
    return from_dense((rng.random((B, T, N)) < density).astype(np.int32))


def bit_grid(dense: np.ndarray) -> np.ndarray:
    """The GRID_BITS occupancy grid uint32 [B*T, ceil(N / 32)] of spikes [B, T, N] (nonzero =
    spiked), packed independently of the kernels: bit j & 31 of word j >> 5 of row b*T + t-1."""
    B, T, N = dense.shape
    words = (N + 31) // 32
    bits = np.zeros((B * T, words * 32), np.uint64)
    bits[:, :N] = dense.reshape(B * T, N) != 0
    return (bits.reshape(B * T, words, 32) << np.arange(32, dtype=np.uint64)).sum(axis=2).astype(np.uint32)


def write_idx(path: Path, arr: np.ndarray, magic: int) -> None:
    """arr as a gzipped MNIST IDX file (uint8 data, big-endian dimensions)."""
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(gzip.compress(head + arr.astype(np.uint8).tobytes()))


def write_idx_dir(d: Path, n_train: int, n_test: int) -> Path:
    """An MNIST IDX directory holding the first n_train / n_test digits of mnist5k."""
    from data_tools.mnist import mnist5k_arrays
    Xtr, ytr, Xte, yte = mnist5k_arrays()
    write_idx(d / "train-images-idx3-ubyte.gz", Xtr[:n_train].reshape(-1, 28, 28), 0x803)
    write_idx(d / "train-labels-idx1-ubyte.gz", ytr[:n_train], 0x801)
    write_idx(d / "t10k-images-idx3-ubyte.gz", Xte[:n_test].reshape(-1, 28, 28), 0x803)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", yte[:n_test], 0x801)
    return d


def assert_same_spikes(asnumpy, got, want) -> None:
    """got (any backend's arrays, brought to the host by asnumpy; or a SpikeGrid / PaddedSpikes,
    compared as its .to(np)) is the spike tensor want: sizes, indptr, ids and counts (absent on
    both, or equal)."""
    from gpusnn.backends.gpu.compact import PaddedSpikes, SpikeGrid
    if isinstance(got, (SpikeGrid, PaddedSpikes)):
        got = got.to(np)
    assert (got.n_samples, got.n_steps, got.n_inputs) == (want.n_samples, want.n_steps, want.n_inputs)
    np.testing.assert_array_equal(asnumpy(got.indptr), want.indptr)
    np.testing.assert_array_equal(asnumpy(got.ids), want.ids)
    assert (got.counts is None) == (want.counts is None)
    if want.counts is not None:
        np.testing.assert_array_equal(asnumpy(got.counts), want.counts)


def stalled_conversion(call: str, **popen) -> subprocess.Popen:
    """A Python process running `call` (statements using data_tools) with the event-store writer
    stalled for 60 s after its first append, when it prints "appended" and the pids of its
    worker processes: a test can then interrupt or kill it mid-conversion. popen: extra
    subprocess.Popen arguments (stdout is a text pipe). Ctrl-C raises KeyboardInterrupt there
    as in a terminal, also when the tests run with SIGINT ignored (e.g. a background job of a
    non-interactive shell, whose children inherit the ignored signal)."""
    script = textwrap.dedent("""
        import multiprocessing, signal, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import data_tools.event_store as es
        append = es.StoreWriter.append
        def slow(self, part):
            append(self, part)
            print("appended", *[p.pid for p in multiprocessing.active_children()], flush=True)
            time.sleep(60)
        es.StoreWriter.append = slow
    """) + textwrap.dedent(call)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, **popen)

