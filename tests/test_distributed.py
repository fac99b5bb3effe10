"""Data-parallel training (gpusnn.distributed): the batch split, the global-batch output error,
P = 2 and 3 ranks under MPICH's mpiexec against P = 1 in process, a rank that dies or hangs,
and the NCCL communicator over fakes (no GPU here)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dp_cases
from gpusnn import distributed, reference as ref, training
from gpusnn.backends import get_backend
from gpusnn.config import MethodConfig

HERE = Path(__file__).parent


def mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel's), else on PATH; CI must have one."""
    for cand in (Path(sys.executable).parent / "mpiexec", shutil.which("mpiexec")):
        if cand and Path(cand).exists():
            return str(cand)
    if os.environ.get("CI"):
        pytest.fail("no mpiexec: the test extra installs the mpich wheel")
    pytest.skip("no mpiexec (pip install 'gpusnn[mpi]')")


def run_ranks(n: int, *args, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([mpiexec(), "-n", str(n), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)


def run_cases(n: int, mode: str, out: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_ranks(n, sys.executable, str(HERE / "dp_cases.py"), mode, str(out), timeout=timeout)


def rel_err(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------- in process

@pytest.mark.parametrize("B,P", [(10, 3), (4, 2), (2, 3), (0, 2), (7, 1)])
def test_part_covers_the_batch_in_order_with_sizes_within_one(B, P):
    idx = np.random.default_rng(B).permutation(100)[:B]
    parts = [distributed.part(idx, r, P) for r in range(P)]
    assert np.array_equal(np.concatenate(parts), idx)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_batch_norm_replaces_the_local_batch_in_the_output_error(loss):
    rng = np.random.default_rng(0)
    rho = rng.random((3, 4)).astype(np.float32)
    labels = np.array([0, 3, 1])
    method = MethodConfig(loss=loss)
    l1, d1 = ref.loss_and_delta(rho, labels, method, 8)
    l2, d2 = ref.loss_and_delta(rho, labels, method, 8, batch_norm=12)
    assert np.array_equal(l1, l2)
    assert np.array_equal(d2, d1 / 4)  # 1/12 = (1/3) / 4: a power-of-two rescale, exact in float32


@pytest.mark.parametrize("backend_name", ["numpy", "emulated"])
@pytest.mark.parametrize("dyadic", [False, True])
def test_shares_with_the_global_batch_norm_sum_to_the_whole_batch_gradient(backend_name, dyadic):
    backend = get_backend(backend_name)
    cfg = dp_cases.tiny_config(dyadic)
    data = dp_cases.tiny_data()
    state = dp_cases.tiny_state(cfg, backend, dyadic)
    # a full batch and short ones; exact sums need power-of-two global batches (1/B is then dyadic)
    for idx in (np.arange(4), np.arange(4, 6) if dyadic else np.arange(4, 7), np.array([9])):
        whole = dp_cases.batch_gradient(backend, state.weights, data, cfg, idx, distributed.SingleComm())
        for P in (2, 3):
            shares = [dp_cases.batch_gradient(backend, state.weights, data, cfg, idx, distributed.SingleComm(r, P))
                      for r in range(P)]
            summed = [sum(layer) for layer in zip(*shares)]
            for G, S in zip(whole, summed):
                if dyadic:
                    assert np.array_equal(G, S)
                else:
                    assert rel_err(S, G) < 1e-6


# --------------------------------------------------------------------------- MPI ranks

def load_ranks(out: Path, n: int) -> list[dict]:
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(n)]


def test_two_ranks_give_the_one_process_gradient_exactly_with_dyadic_data(tmp_path):
    res = run_cases(2, "grad", tmp_path)
    assert res.returncode == 0, res.stderr
    backend = get_backend("numpy")
    cfg = dp_cases.tiny_config(True)
    state = dp_cases.tiny_state(cfg, backend, True)
    data = dp_cases.tiny_data()
    ranks = load_ranks(tmp_path, 2)
    for b, idx in enumerate(dp_cases.GRAD_BATCHES):  # a full batch and a short one (one rank gets none)
        want = dp_cases.batch_gradient(backend, state.weights, data, cfg, idx, distributed.SingleComm())
        for l, G in enumerate(want):
            assert np.abs(G).max() > 0
            for r in ranks:
                assert np.array_equal(r[f"G{b}_{l}"], G)


@pytest.mark.parametrize("P", [2, 3])
def test_an_epoch_on_P_ranks_matches_one_process_and_ranks_stay_identical(tmp_path, P):
    res = run_cases(P, "fit", tmp_path)
    assert res.returncode == 0, res.stderr
    backend = get_backend("numpy")
    cfg = dp_cases.tiny_config(False)
    data = dp_cases.tiny_data()  # 10 samples in batches of 4, 4, 2: with P = 3 a rank gets none of the last
    state = training.fit(backend, dp_cases.tiny_state(cfg, backend, False), cfg, data, progress=False)
    ranks = load_ranks(tmp_path, P)
    for r in ranks[1:]:  # bit for bit the same weights and fractional memory everywhere
        for k in r:
            assert np.array_equal(r[k], ranks[0][k]), k
    assert int(ranks[0]["step"]) == state.optim.step == 3
    for l, W in enumerate(state.weights):
        assert rel_err(ranks[0][f"W{l}"], W) < 1e-6
        assert not np.array_equal(ranks[0][f"W{l}"], dp_cases.tiny_state(cfg, backend, False).weights[l])
    hist = json.loads(str(ranks[0]["history"]))[0]
    want = state.history[0]
    assert hist["test_accuracy"] == want["test_accuracy"] and hist["train_accuracy"] == want["train_accuracy"]
    assert hist["spikes_per_sample"] == want["spikes_per_sample"]
    for k in ("train_loss", "test_loss"):
        assert hist[k] == pytest.approx(want[k], rel=1e-6)


def test_a_killed_rank_ends_the_job_promptly_with_a_message(tmp_path):
    t0 = time.monotonic()
    res = run_cases(2, "die", tmp_path, timeout=60)
    assert time.monotonic() - t0 < 60
    assert res.returncode != 0
    assert "BAD TERMINATION" in res.stdout + res.stderr
    assert not list(tmp_path.glob("rank*.npz"))


def test_a_hung_rank_makes_the_others_abort_after_the_timeout(tmp_path):
    t0 = time.monotonic()
    res = run_cases(2, "hang", tmp_path, timeout=90)
    took = time.monotonic() - t0
    assert res.returncode != 0 and took < 60
    assert "rank 0 of 2" in res.stderr and "did not complete within 2 s" in res.stderr
    assert not list(tmp_path.glob("rank*.npz"))


def test_nccl_unique_id_is_made_by_rank_0_and_broadcast_over_mpi(tmp_path):
    res = run_cases(2, "nccl", tmp_path)
    assert res.returncode == 0, res.stderr
    r0, r1 = load_ranks(tmp_path, 2)
    assert len(r0["uid"]) == 128 and np.array_equal(r0["uid"], r1["uid"])
    assert (int(r0["size"]), int(r0["rank"]), int(r1["size"]), int(r1["rank"])) == (2, 0, 2, 1)


# --------------------------------------------------------------------------- NCCL over fakes

class FakeHost:
    def __init__(self, rank, size, root_value=None):
        self.rank, self.size, self.root_value, self.aborted = rank, size, root_value, None

    def bcast(self, obj, root=0):
        return obj if self.rank == root else self.root_value

    def abort(self, code):
        self.aborted = code

    def allreduce_sum(self, arrays):
        self.reduced = arrays
        return [a * self.size for a in arrays]  # as if every rank held the same


class FakeArray:
    def __init__(self, ptr, size, dtype):
        self.data = type("Mem", (), {"ptr": ptr})()
        self.size, self.dtype, self.nbytes = size, np.dtype(dtype), size * np.dtype(dtype).itemsize


class FakeCupy:
    """cupy.ascontiguousarray, cuda.get_current_stream, cuda.Event, cuda.Device, runtime.getDeviceCount."""

    def __init__(self, finishes=True, n_devices=2):
        outer = self
        self.used = []

        class Event:
            def __init__(self, disable_timing):
                self.done = finishes

            def record(self, stream):
                outer.recorded = stream

        class Device:
            def __init__(self, i):
                self.i = i

            def use(self):
                outer.used.append(self.i)

        stream = type("Stream", (), {"ptr": 4242})()
        self.cuda = type("cuda", (), {"Event": Event, "Device": Device, "get_current_stream": staticmethod(lambda: stream),
                                      "runtime": type("rt", (), {"getDeviceCount": staticmethod(lambda: n_devices)})})

    @staticmethod
    def ascontiguousarray(a):
        return a


class RecordingNccl(dp_cases.FakeNccl):
    def __init__(self):
        super().__init__()
        self.calls = []
        outer = self

        class Communicator:
            def allReduce(self, send, recv, count, dtype, op, stream):
                outer.calls.append(("allReduce", send, recv, count, dtype, op, stream))

            def abort(self):
                outer.calls.append(("abort",))

        self._communicator = Communicator

    def NcclCommunicator(self, size, uid, rank):
        super().NcclCommunicator(size, uid, rank)
        return self._communicator()

    def groupStart(self):
        self.calls.append(("groupStart",))

    def groupEnd(self):
        self.calls.append(("groupEnd",))


def test_nccl_comm_uses_the_root_id_and_reduces_each_array_in_place_in_one_group():
    nccl = RecordingNccl()
    comm = distributed.NcclComm(FakeHost(1, 4, root_value=("uid-from-rank-0",)), nccl=nccl, cupy=FakeCupy())
    assert nccl.made == [(4, ("uid-from-rank-0",), 1)]
    arrays = [FakeArray(100, 12, np.float32), FakeArray(200, 3, np.float64)]
    assert comm.allreduce_sum(arrays) == arrays
    assert nccl.calls == [("groupStart",), ("allReduce", 100, 100, 12, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, 4242),
                          ("allReduce", 200, 200, 3, nccl.NCCL_FLOAT64, nccl.NCCL_SUM, 4242), ("groupEnd",)]
    # host arrays (the per-batch metrics) go over MPI and come back as host arrays
    metrics = np.array([1.5, 2.0])
    out = comm.allreduce_sum([metrics])
    assert comm.host.reduced[0] is metrics and np.array_equal(out[0], 4 * metrics) and len(nccl.calls) == 4


def test_nccl_comm_aborts_on_a_collective_that_never_finishes():
    nccl = RecordingNccl()
    host = FakeHost(0, 2)
    comm = distributed.NcclComm(host, timeout=0.05, nccl=nccl, cupy=FakeCupy(finishes=False))
    t0 = time.monotonic()
    with pytest.raises(distributed.DistributedError, match="rank 0 of 2: NCCL allreduce of 48 bytes did not complete"):
        comm.allreduce_sum([FakeArray(1, 12, np.float32)])
    assert time.monotonic() - t0 < 5 and nccl.calls[-1] == ("abort",)
    comm.abort(3)
    assert host.aborted == 3


def test_transport_is_nccl_for_cuda_only():
    assert [distributed.transport(b) for b in ("cuda", "numpy", "emulated")] == ["nccl", "mpi", "mpi"]


def test_connect_picks_the_communicator_and_the_local_gpu():
    from mpi4py import MPI
    assert type(distributed.connect("numpy", mpi_comm=MPI.COMM_SELF)) is distributed.MpiComm
    cupy = FakeCupy(n_devices=2)
    comm = distributed.connect("cuda", mpi_comm=MPI.COMM_SELF, nccl=RecordingNccl(), cupy=cupy)
    assert type(comm) is distributed.NcclComm and cupy.used == [0] and (comm.rank, comm.size) == (0, 1)
    with pytest.raises(distributed.ConfigError, match="--comm-timeout"):
        distributed.connect("numpy", timeout=0)


def test_guard_aborts_a_multi_rank_job_with_status_2_for_project_errors():
    host = FakeHost(1, 2)
    with pytest.raises(distributed.DistributedError):
        with distributed.guard(host):
            raise distributed.DistributedError("boom")
    assert host.aborted == 2
    single = FakeHost(0, 1)
    with pytest.raises(ValueError):
        with distributed.guard(single):
            raise ValueError("x")
    assert single.aborted is None


def test_watchdog_fires_only_for_an_operation_past_its_deadline():
    fired = []
    dog = distributed.Watchdog(0.3, fired.append, rank=1, size=3)
    with dog.watch("quick barrier"):
        pass
    time.sleep(0.5)
    assert fired == []
    with dog.watch("allreduce of 8 bytes"):
        time.sleep(0.8)
    assert fired and fired[0] == ("rank 1 of 3: allreduce of 8 bytes did not complete within 0.3 s; "
                                  "another rank has stopped or hangs")
