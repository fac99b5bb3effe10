"""Parse the trials of a DVS128 Gesture directory in worker processes and hand each trial's
store columns back through shared memory (no pickled event arrays).

:func:`each_trial` calls ``consume(part)`` with the SampleColumns of every trial, in trial
order. At most ``depth`` trials are in flight (default workers + 1); trial k uses slot
k % depth, one POSIX shared-memory block reused from trial to trial (so its pages are touched
once, not once per trial). At most 2 x depth blocks exist at once (each slot's and, while it
grows, its replacement), each of at most GROWTH x a trial's columns: memory is
O(depth x largest trial), not O(dataset). A worker
parses a trial (:func:`data_tools.gesture_layout.read_trial`) with its columns allocated in
the slot's block; when the block is too small it makes a larger one under a name the parent
chose for that trial, which then becomes the slot. Only the lengths and the per-sample fields
travel through the result queue. The parent calls consume on views of the block (consume must
not keep them: the store writer copies them into the file).

Nothing is left behind: on success, on an error in a worker or in consume, and on
KeyboardInterrupt the workers are stopped and every block named so far is unlinked. If the
parent is killed (SIGKILL), the workers see their parent gone within POLL seconds and exit,
and the multiprocessing resource tracker, with which every block is registered, unlinks the
blocks still there. A block the shared-memory file system has no room for is sent through
the queue instead (slower, same result).
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import pickle
import queue
import shutil
import signal
import traceback
import uuid
from collections.abc import Callable
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np

import data_tools.gesture_layout as layout
from data_tools.errors import DataFormatError
from data_tools.samples import COLUMN_DTYPES, SampleColumns

log = logging.getLogger(__name__)

POLL = 0.5                                  # seconds between liveness checks (workers and parent)
SHM_DIR = Path("/dev/shm")                  # where Linux keeps POSIX shared memory (its free space)
_ALIGN = 64
#: Slack when a slot's block grows (a block is reused by later, possibly larger, trials).
GROWTH = 1.25


def available(root, workers: int) -> bool:
    """True where worker processes can hand the trials of root back through shared memory: fork
    and /dev/shm (Linux) with room for the slots of workers + 1 trials the size of the largest
    recording (9 store bytes per 8 file bytes; a tmpfs of a container may be only 64 MB)."""
    if "fork" not in mp.get_all_start_methods() or not SHM_DIR.is_dir():
        return False
    largest = max(((Path(root) / name).stat().st_size for name, _ in layout.trial_list(root)), default=0)
    return _room(int((workers + 1) * largest * 9 / 8 * GROWTH))


def _layout(n: int) -> tuple[dict, int]:
    """Byte offset of each column of n events in a block (each 64-byte aligned), and its size."""
    offsets, pos = {}, 0
    for k, dt in COLUMN_DTYPES.items():
        offsets[k] = pos
        pos += -(-n * np.dtype(dt).itemsize // _ALIGN) * _ALIGN
    return offsets, max(pos, 1)


def _columns(buf, n: int) -> dict:
    """The columns of n events laid out in buf (views)."""
    offsets, _ = _layout(n)
    return {k: np.frombuffer(buf, dt, count=n, offset=offsets[k]) for k, dt in COLUMN_DTYPES.items()}


def _room(size: int) -> bool:
    """Whether the shared-memory file system has size bytes free (tmpfs overcommit: writing
    past its limit would be a SIGBUS)."""
    return shutil.disk_usage(SHM_DIR).free >= 2 * size


def _picklable(exc: BaseException) -> BaseException:
    """exc if it survives the result queue's pickling, else a RuntimeError with its message."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _keep_freed_memory() -> None:
    """Let glibc reuse a worker's freed trial arrays instead of returning them to the kernel and
    taking page faults on fresh pages for every trial (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)      # M_MMAP_THRESHOLD: large arrays from the heap, not mmap
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD (a C int): do not trim after each trial
    except (OSError, AttributeError):
        pass


def _work(tasks, results, parent: int, root: str, counting: str, sensor_size) -> None:
    """Worker loop: parse tasks (k, trial name, is_train, slot block name or None, slot size,
    spare block name, live block names) until None or until the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the whole group: the parent stops us
    _keep_freed_memory()
    mapped: dict[str, SharedMemory] = {}
    while True:
        try:
            task = tasks.get(timeout=POLL)
        except queue.Empty:
            if os.getppid() != parent:                   # the parent was killed: nobody reads results
                results.cancel_join_thread()
                return
            continue
        if task is None:
            return
        k, name, is_train, slot, slot_size, spare, live = task
        for old in set(mapped) - set(live):           # blocks the parent has replaced
            _unmap(mapped.pop(old))
        used: list[str | None] = [None]

        def allocate(n: int, slot=slot, slot_size=slot_size, spare=spare, used=used) -> dict:
            size = _layout(n)[1]
            if slot is not None and size <= slot_size:
                used[0] = slot
            elif _room(int(size * GROWTH)):
                mapped[spare] = SharedMemory(spare, create=True, size=int(size * GROWTH))
                used[0] = spare
            else:
                return layout.empty_columns(n)
            if used[0] not in mapped:
                mapped[used[0]] = SharedMemory(used[0])
            return _columns(mapped[used[0]].buf, n)

        try:
            part = layout.read_trial(root, name, is_train, counting=counting, sensor_size=sensor_size,
                                     allocate=allocate)
            cols = None if used[0] else part.columns            # None: the columns are in block used[0]
            results.put((k, (used[0], part.n_events, cols, part.lengths, part.fields), None))
            del part
        except BaseException as exc:  # noqa: BLE001 - handed to the parent
            results.put((k, None, _picklable(exc)))


def _unlink(name: str) -> None:
    """Remove the block name if it exists (unregistering it from the resource tracker)."""
    try:
        shm = SharedMemory(name)
    except FileNotFoundError:
        return
    shm.close()
    shm.unlink()


def _unmap(shm: SharedMemory) -> None:
    """Unmap a block; if views of it are still held, it is unmapped when they go."""
    try:
        shm.close()
    except BufferError:
        log.debug("shared block %s still referenced; unmapped when released", shm.name)


def _close(shm: SharedMemory) -> None:
    """Unmap and unlink a block."""
    _unmap(shm)
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


class _Pool:
    """The worker processes, their queues, the slots and every block name handed out (each_trial)."""

    def __init__(self, root, workers: int, depth: int, counting: str, sensor_size):
        ctx = mp.get_context("fork")
        resource_tracker.ensure_running()            # inherited: workers register blocks with it
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.prefix = f"gpusnn-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.depth = depth
        self.slots: list[SharedMemory | None] = [None] * depth    # the parent's mapping of each slot
        self.named: set[str] = set()                                # every block name handed out
        self.procs = [ctx.Process(target=_work, name=f"convert-worker-{i}", daemon=True,
                                  args=(self.tasks, self.results, os.getpid(), str(root), counting, sensor_size))
                      for i in range(workers)]
        for p in self.procs:
            p.start()

    def submit(self, k: int, name: str, is_train: bool) -> None:
        slot = self.slots[k % self.depth]
        spare = f"{self.prefix}-{k}"
        self.named.add(spare)
        live = tuple(s.name for s in self.slots if s is not None)
        self.tasks.put((k, name, is_train, slot and slot.name, slot.size if slot else 0, spare, live))

    def block(self, k: int, name: str) -> SharedMemory:
        """The parent's mapping of block name, made slot k % depth (an older block there is unlinked)."""
        i = k % self.depth
        old = self.slots[i]
        if old is None or old.name != name:
            self.slots[i] = SharedMemory(name)
            if old is not None:
                _close(old)
        return self.slots[i]

    def result(self):
        """The next (k, meta, exc) from any worker; DataFormatError if a worker died."""
        while True:
            try:
                return self.results.get(timeout=POLL)
            except queue.Empty:
                dead = [p for p in self.procs if p.exitcode is not None]
                if dead:
                    raise DataFormatError(f"conversion worker {dead[0].name} died (exit code {dead[0].exitcode}; "
                                          f"out of memory or shared memory in {SHM_DIR}?); try --workers 1") from None

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for p in self.procs:
            p.join(timeout=5 * POLL)
            if p.exitcode is None:
                p.terminate()
                p.join()
        for shm in self.slots:
            if shm is not None:
                _close(shm)
        for name in self.named:
            _unlink(name)
        for q in (self.tasks, self.results):
            q.close()
            q.join_thread()


def each_trial(root, consume: Callable[[SampleColumns], None], *, workers: int, counting: str = "rows",
               sensor_size=layout.DVS128_SENSOR, depth: int | None = None,
               progress: Callable[[], None] = lambda: None) -> int:
    """consume(part) for the SampleColumns of every trial of root, in trial order, parsed by
    workers processes with at most depth (default workers + 1) trials in flight; progress() after
    each trial. Returns the number of trials. The result equals the serial
    [read_trial(...) for each trial]."""
    root = Path(root)
    trials = layout.trial_list(root)
    pool = _Pool(root, workers, depth or workers + 1, counting, sensor_size)
    try:
        ready: dict[int, tuple] = {}
        submitted = 0
        for k in range(len(trials)):
            while submitted < min(len(trials), k + pool.depth):
                pool.submit(submitted, *trials[submitted])
                submitted += 1
            while k not in ready:
                j, meta, exc = pool.result()
                ready[j] = (meta, exc)
            meta, exc = ready.pop(k)
            if exc is not None:
                raise exc
            block, n, cols, lengths, fields = meta
            if block is not None:
                cols = _columns(pool.block(k, block).buf, n)
            part = SampleColumns(cols, lengths, fields, tuple(sensor_size), counting, str(root))
            del cols
            try:
                consume(part)
            except BaseException as exc:
                traceback.clear_frames(exc.__traceback__)     # consume's frames hold views of the block
                raise
            finally:
                del part
            progress()
    finally:
        pool.close()
    return len(trials)
