"""Communication for data-parallel training: one small interface, three implementations.

A communicator (``Comm``) has

    rank, size                     this process's index and the number of processes
    allreduce_sum(arrays)          -> arrays of the same shapes, summed elementwise over all ranks
                                      and identical on every rank (the given arrays may be
                                      overwritten: MPI and NCCL reduce in place)
    bcast(obj, root=0)             -> root's picklable obj, on every rank
    barrier()                      returns once every rank has entered it
    abort(code)                    ends every rank of the job now (does not return)

``SingleComm`` is the one-process case (every call a no-op). ``MpiComm`` (mpi4py) reduces
host (NumPy) arrays; ``NcclComm`` (cupy.cuda.nccl) reduces device (CuPy) arrays in place,
one GPU per rank, the NCCL unique id broadcast over MPI, host objects through MPI.

No collective waits forever (``timeout`` seconds from the moment this rank enters it): MPI's
are watched by a thread that logs the collective's name and aborts the whole job
(MPI_Abort); NCCL's are polled and raise DistributedError after ncclCommAbort, and
``guard`` then aborts the job. ``guard`` also aborts the job when a rank fails on its own,
so no rank is left waiting. (Under MPICH's mpiexec a rank that is killed takes the others
down at once; the deadline covers launchers that do not, and ranks that hang instead of
exiting.)
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from gpusnn.errors import ConfigError, GpusnnError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0  # seconds a rank waits in one collective before giving up
SPIN_S = 0.05  # seconds a wait polls without sleeping


class DistributedError(GpusnnError):
    """A collective did not complete: another rank stopped, hung or diverged."""


def part(idx: np.ndarray, rank: int, size: int) -> np.ndarray:
    """This rank's contiguous share of the sample indices idx [B]: sizes differ by at most one,
    the first B % size ranks taking one more (empty when B < size and rank >= B)."""
    n, extra = divmod(len(idx), size)
    start = rank * n + min(rank, extra)
    return idx[start:start + n + (rank < extra)]


def _wait(test, what: str, rank: int, size: int, timeout: float, on_timeout=None) -> None:
    """Poll test() (True when the operation is complete) until it is, or raise DistributedError
    after timeout seconds (calling on_timeout() first, e.g. to abort a NCCL communicator).

    For the first SPIN_S seconds it only yields the CPU between tests (a step's all-reduce is
    short), then backs off to sleeps of up to 1 ms for long waits."""
    start = time.monotonic()
    deadline = start + timeout
    delay = 1e-5
    while not test():
        now = time.monotonic()
        if now > deadline:
            if on_timeout is not None:
                on_timeout()
            raise DistributedError(f"rank {rank} of {size}: {what} did not complete within {timeout:g} s; "
                                   f"another rank has stopped or hangs")
        if now - start < SPIN_S:
            time.sleep(0)
        else:
            time.sleep(delay)
            delay = min(2 * delay, 1e-3)


@dataclass
class SingleComm:
    """One process: rank 0 of 1; collectives return their input."""

    rank: int = 0
    size: int = 1

    def allreduce_sum(self, arrays: list) -> list:
        return list(arrays)

    def bcast(self, obj, root: int = 0):
        return obj

    def barrier(self) -> None:
        pass

    def abort(self, code: int) -> None:
        raise SystemExit(code)


class Watchdog:
    """A daemon thread that calls on_expiry(message) when one watched operation outlasts timeout s.

    watch(what) brackets a blocking call by setting one attribute (no lock, no wake-up: the
    thread looks every min(1 s, timeout / 10)), so a call that returns in time costs nothing.
    """

    def __init__(self, timeout: float, on_expiry, rank: int, size: int):
        self.timeout, self.on_expiry, self.rank, self.size = timeout, on_expiry, rank, size
        self._op: tuple[str, float] | None = None  # (what, since), replaced whole: atomic
        threading.Thread(target=self._run, args=(min(1.0, timeout / 10),), name="gpusnn-comm-watchdog",
                         daemon=True).start()

    @contextlib.contextmanager
    def watch(self, what: str):
        self._op = (what, time.monotonic())
        try:
            yield
        finally:
            self._op = None

    def _run(self, period: float) -> None:
        while True:
            time.sleep(period)
            op = self._op
            if op is not None and time.monotonic() - op[1] > self.timeout:
                self.on_expiry(f"rank {self.rank} of {self.size}: {op[0]} did not complete within "
                               f"{self.timeout:g} s; another rank has stopped or hangs")


class MpiComm:
    """MPI through mpi4py (MPI_COMM_WORLD unless comm is given) on host arrays.

    The collectives are MPI's blocking ones (MPI makes progress fastest inside them), each
    watched by a Watchdog thread that logs the error and aborts the job (MPI_Abort, exit
    status 2) when one outlasts timeout s. allreduce_sum reduces each array in place (a
    contiguous copy where one is not contiguous), with no new buffers: fresh 4 MB buffers per
    step cost more than the reduction on a loaded machine.
    """

    def __init__(self, comm=None, timeout: float = DEFAULT_TIMEOUT):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout)
        self.watchdog = Watchdog(self.timeout, self._expired, self.rank, self.size)

    def _expired(self, message: str) -> None:
        log.error("%s; aborting all ranks", message)
        for h in logging.getLogger().handlers:
            h.flush()
        self.abort(2)

    def allreduce_sum(self, arrays: list) -> list:
        arrays = [np.ascontiguousarray(a) for a in arrays]
        with self.watchdog.watch(f"allreduce of {sum(a.nbytes for a in arrays)} bytes"):
            for a in arrays:
                self.comm.Allreduce(self.MPI.IN_PLACE, a, op=self.MPI.SUM)
        return arrays

    def bcast(self, obj, root: int = 0):
        with self.watchdog.watch("broadcast"):
            return self.comm.bcast(obj, root=root)

    def barrier(self) -> None:
        with self.watchdog.watch("barrier"):
            self.comm.Barrier()

    def local_rank(self) -> int:
        """This rank's index among the ranks on its own node."""
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_rank()
        finally:
            node.Free()

    def abort(self, code: int) -> None:
        self.comm.Abort(code)
        os._exit(code)  # MPICH's MPI_Abort may return once it has told the launcher


class NcclComm:
    """NCCL through CuPy on device arrays (one GPU per rank); host objects through host (an MpiComm).

    nccl, cupy: the cupy.cuda.nccl and cupy modules (injectable for tests). The unique id is
    made by rank 0 and broadcast over host; allreduce_sum reduces device arrays in place, all
    inside one NCCL group on the current stream, and waits for them against the deadline
    (aborting the NCCL communicator on timeout); a list of host (NumPy) arrays goes over host.
    """

    def __init__(self, host: MpiComm, timeout: float = DEFAULT_TIMEOUT, nccl=None, cupy=None):
        if nccl is None or cupy is None:
            import cupy as _cupy
            from cupy.cuda import nccl as _nccl
            nccl, cupy = nccl or _nccl, cupy or _cupy
        self.host, self.nccl, self.cupy = host, nccl, cupy
        self.rank, self.size, self.timeout = host.rank, host.size, float(timeout)
        uid = host.bcast(nccl.get_unique_id() if host.rank == 0 else None)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.int64): nccl.NCCL_INT64}

    def allreduce_sum(self, arrays: list) -> list:
        if arrays and all(isinstance(a, np.ndarray) for a in arrays):
            return self.host.allreduce_sum(arrays)  # host arrays (metrics) stay on the host, over MPI
        arrays = [self.cupy.ascontiguousarray(a) for a in arrays]
        stream = self.cupy.cuda.get_current_stream()
        self.nccl.groupStart()
        for a in arrays:
            self.comm.allReduce(a.data.ptr, a.data.ptr, a.size, self._types[np.dtype(a.dtype)],
                                self.nccl.NCCL_SUM, stream.ptr)
        self.nccl.groupEnd()
        done = self.cupy.cuda.Event(disable_timing=True)
        done.record(stream)
        _wait(lambda: done.done, f"NCCL allreduce of {sum(a.nbytes for a in arrays)} bytes", self.rank,
              self.size, self.timeout, on_timeout=self.comm.abort)
        return arrays

    def bcast(self, obj, root: int = 0):
        return self.host.bcast(obj, root)

    def barrier(self) -> None:
        self.host.barrier()

    def abort(self, code: int) -> None:
        self.comm.abort()
        self.host.abort(code)


def transport(backend_name: str) -> str:
    """'nccl' for the cuda backend (device arrays), else 'mpi' (host arrays: numpy, emulated)."""
    return "nccl" if backend_name == "cuda" else "mpi"


def connect(backend_name: str, timeout: float = DEFAULT_TIMEOUT, mpi_comm=None, nccl=None, cupy=None):
    """The communicator of an `mpiexec -n P gpusnn ... --distributed` rank for a resolved backend
    name ('numpy', 'emulated' or 'cuda'). For cuda it first selects this rank's GPU (local rank
    modulo the node's devices), so call it before building the backend."""
    if timeout <= 0:
        raise ConfigError(f"--comm-timeout must be > 0 seconds, got {timeout:g}")
    try:
        host = MpiComm(mpi_comm, timeout)
    except ImportError as e:
        raise ConfigError(f"--distributed needs mpi4py and an MPI library: pip install 'gpusnn[mpi]' ({e})") from e
    if transport(backend_name) == "mpi":
        return host
    if cupy is None:
        import cupy
    cupy.cuda.Device(host.local_rank() % cupy.cuda.runtime.getDeviceCount()).use()
    return NcclComm(host, timeout, nccl=nccl, cupy=cupy)


@contextlib.contextmanager
def guard(comm):
    """Run the body; if it raises on a rank of a multi-rank job, log the error with the rank
    and abort the whole job (exit status 2 for a GpusnnError, else 1) so no peer waits for it."""
    try:
        yield comm
    except BaseException as e:
        if comm.size > 1:
            log.error("rank %d of %d failed, aborting all ranks: %s: %s", comm.rank, comm.size,
                      type(e).__name__, e)
            for h in logging.getLogger().handlers:
                h.flush()
            comm.abort(2 if isinstance(e, GpusnnError) else 1)
        raise


def check_same(comm, arrays: list, what: str) -> None:
    """Raise DistributedError on every rank unless arrays (host) are bit-identical to rank 0's."""
    if comm.size == 1:
        return
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    ok = comm.bcast(h.hexdigest()) == h.hexdigest()
    bad = comm.allreduce_sum([np.array([0 if ok else 1], np.int64)])[0]
    if bad[0]:
        raise DistributedError(f"{what} differ between ranks ({int(bad[0])} of {comm.size} differ from rank 0)")
