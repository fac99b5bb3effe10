"""Small builders shared by the tests (no fixtures with hidden state)."""
from __future__ import annotations

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
