"""gpusnn profile: exact counts on a hand-made workload, the JSON keys, every backend."""
import json

import numpy as np
import pytest

from gpusnn import cli, profiling
from gpusnn.backends import gpu_usable
from data_tools.spikes import from_dense

BACKENDS = ["numpy", "emulated"] + (["cuda"] if gpu_usable() else [])


def test_random_spikes_density_and_shape():
    s = profiling.random_spikes(20, 10, 100, 0.1, seed=0, rows_per_chunk=7)
    assert (s.n_samples, s.n_steps, s.n_inputs) == (20, 10, 100)
    assert abs(s.nnz / (20 * 10 * 100) - 0.1) < 0.01
    assert s.to_dense().max() == 1


def test_backward_synaptic_events_by_hand():
    # sample 0: input spikes at steps 1 (two inputs), 3 and 4; T = 4; post neurons with
    # windows starting at w = 0, 2 and 3 (t_last = 2; t_last = 4 = T with t_prev = 3).
    dense = np.zeros((1, 4, 3), int)
    dense[0, 0, [0, 1]] = 1
    dense[0, 2, 2] = 1
    dense[0, 3, 0] = 1
    spikes = from_dense(dense)
    t_last = np.array([[0, 2, 4]])
    t_prev = np.array([[0, 0, 3]])
    # step 1: only w=0 counts (1 neuron) x 2 spikes = 2; step 3: w in {0, 2} -> 2;
    # step 4: w in {0, 2, 3} -> 3. Total 7.
    assert profiling.backward_synaptic_events(spikes, t_last, t_prev) == 7


def small_work(backend, **kw):
    return profiling.Workload(widths=(30, 12, 4), n_steps=6, batch_size=3, density=0.3, backend=backend,
                              repeats=2, warmup=1, seed=1, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_profile_counts_are_exact_on_every_backend(backend):
    work = small_work(backend)
    rep = profiling.profile(work)
    assert set(profiling.PROFILE_KEYS) <= set(rep)
    # recompute by hand from the same synthetic input and the reference forward
    from gpusnn import reference as ref
    from gpusnn.training import init_weights
    spikes = profiling.random_spikes(9, 6, 30, 0.3, seed=1)
    steps = []
    weights = init_weights((30, 12, 4), 1.0, 1)
    for k in (1, 2):  # the timed steps use batches 1 and 2 (batch 0 is the warm-up)
        batch = spikes.select(np.arange(3 * k, 3 * k + 3))
        steps.append(batch.nnz)
    assert rep["counts"]["input_events"] == np.median(steps)
    # the first step's counts match the reference forward at the initial weights
    first = profiling.profile(profiling.Workload(widths=(30, 12, 4), n_steps=6, batch_size=3, density=0.3,
                                                 backend=backend, repeats=1, warmup=0, seed=1))
    batch = spikes.select(np.arange(3))
    recs = ref.forward(weights, batch, 1.0)
    c = first["counts"]
    assert c["input_events"] == batch.nnz
    assert c["layer_spikes"] == [int(r.counts.sum()) for r in recs]
    assert c["synaptic_events_forward"] == [batch.nnz * 12, recs[0].spikes.nnz * 4]
    assert c["synaptic_events_backward"] == [
        profiling.backward_synaptic_events(s, r.t_last, r.t_prev) for s, r in zip([batch, recs[0].spikes], recs)]
    assert set(first["phases_s"]) == {"decode_bin", "h2d", "forward_l1", "forward_l2", "gradient", "update", "d2h"}
    assert all(v >= 0 for v in first["phases_s"].values())
    clock = first["timing"]["clock"]
    assert clock == {"cuda": "cuda events", "emulated": "perf_counter (emulated)"}.get(backend, "perf_counter")
    assert (first["bandwidth"] is None) == (backend != "cuda")
    assert first["memory"]["host_peak_traced_bytes"] > 0
    traffic = first["device_traffic"]
    if backend == "numpy":
        assert traffic is None
    else:   # 2 layers, the input layer dense (30 % > DENSE_ABOVE): 12 kernels (scatter_dense in
        # place of currents_csr) + 7 library calls (the event path's 4 + X's zeros, the matmul
        # and the zeroing of the dense layer's output grid, which no currents kernel zeroes),
        # one packed result copy (test_gpu_counting.py counts the event path)
        assert traffic["project_launches"] == 12 and traffic["host_syncs_per_batch"] == 1
        assert traffic["breakdown"]["syncs"] == {"batch results": 1}
        assert traffic["breakdown"]["library"] == {"zeros": 3, "matmul": 1, "sum": 2, "concatenate": 1}
        assert traffic["launches_per_batch"] == 12 + traffic["library_calls"] == 19


def test_profile_refuses_no_repeats():
    from gpusnn.errors import ConfigError
    with pytest.raises(ConfigError, match="repeats"):
        profiling.profile(profiling.Workload(widths=(30, 12, 4), n_steps=6, batch_size=3, repeats=0))


def test_cli_writes_documented_json(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli.main(["-q", "profile", "--backend", "numpy", "--inputs", "40", "--hidden", "16", "--classes", "3",
                     "--steps", "5", "--batch-size", "4", "--density", "0.2", "--repeats", "2",
                     "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert list(rep) == list(profiling.PROFILE_KEYS)
    assert rep["workload"]["widths"] == [40, 16, 3] and rep["workload"]["density"] == 0.2
    assert {"cpu", "cpu_cores", "python", "numpy", "scipy", "backend"} <= set(rep["machine"])
    assert {"input_events_per_s", "synaptic_events_forward_per_s", "synaptic_events_backward_per_s"} <= set(rep["throughput"])
    assert "input events / s" in capsys.readouterr().out
