"""Where sweep cells run: standard concurrent.futures executors named by a short spec.

    local:N           N worker processes on this machine (spawned, one BLAS thread each);
                      local:1 runs the cells one by one in this process
    dask://HOST:PORT  the workers of a running dask.distributed scheduler
                      (Client(tcp://HOST:PORT).get_executor(); pip install 'gpusnn[dask]')
    mpi               mpi4py.futures.MPIPoolExecutor: the worker ranks of
                      `mpiexec -n P python -m mpi4py.futures -m gpusnn sweep ...` (pip install 'gpusnn[mpi]')

The cells are pure functions of their job, so the results do not depend on the executor.
"""
from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from gpusnn.errors import ConfigError

log = logging.getLogger(__name__)

SPEC_HELP = "local:N, dask://HOST:PORT or mpi"


@dataclass(frozen=True)
class ExecutorSpec:
    """kind: 'local', 'dask' or 'mpi'; workers: local process count; address: the dask scheduler's."""

    kind: str
    workers: int = 1
    address: str = ""


def parse(spec: str) -> ExecutorSpec:
    """'local:4' -> ExecutorSpec('local', 4); 'dask://h:8786' -> ExecutorSpec('dask', address='tcp://h:8786')."""
    if spec == "mpi":
        return ExecutorSpec("mpi")
    if spec.startswith("dask://"):
        host, _, port = spec[len("dask://"):].rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--executor {spec!r}: a dask scheduler is dask://HOST:PORT, e.g. dask://node01:8786")
        return ExecutorSpec("dask", address=f"tcp://{host}:{port}")
    kind, _, n = spec.partition(":")
    if kind == "local" and n.isdigit() and int(n) >= 1:
        return ExecutorSpec("local", int(n))
    raise ConfigError(f"--executor {spec!r}: choose {SPEC_HELP} (N >= 1)")


@contextlib.contextmanager
def open_executor(spec: ExecutorSpec):
    """Yield a concurrent.futures.Executor for spec, or None for local:1 (run in this process);
    shut it down (and disconnect from a dask scheduler) on exit."""
    if spec.kind == "local":
        if spec.workers == 1:
            yield None
            return
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")  # inherited by the spawned workers
        with ProcessPoolExecutor(max_workers=spec.workers, mp_context=get_context("spawn")) as pool:
            yield pool
        return
    if spec.kind == "dask":
        try:
            from dask.distributed import Client
        except ImportError as e:
            raise ConfigError(f"--executor dask://...: pip install 'gpusnn[dask]' ({e})") from e
        try:
            client = Client(spec.address, timeout="30s")
        except OSError as e:
            raise ConfigError(f"--executor: no dask scheduler answers at {spec.address}: {e}") from e
        with client:
            log.info("dask scheduler %s: %d workers", spec.address, len(client.scheduler_info()["workers"]))
            yield client.get_executor(pure=False)
        return
    try:
        from mpi4py.futures import MPIPoolExecutor
    except ImportError as e:
        raise ConfigError(f"--executor mpi: pip install 'gpusnn[mpi]' ({e})") from e
    with MPIPoolExecutor() as pool:
        yield pool

