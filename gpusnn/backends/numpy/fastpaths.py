"""Fast CPU paths of the numpy backend: the same results as gpusnn.reference, less time and memory.

Shapes: B samples, T steps, n_pre / n_post neurons; weights float32 [n_pre, n_post].

- The input is coalesced first (repeated ids of a step become one entry with a count,
  data_tools.spikes), so every cost below follows the coalesced entries, not the events.
- A layer is processed in blocks of samples (plan_blocks: contiguous CSR rows; one long
  window is cut into runs of steps), so the working memory of a layer (currents, spike
  flags, suffix counts) is bounded by CHUNK_ELEMENTS float32 values, whatever T and B are;
  only the spike lists themselves grow.
- The synaptic input of a block is either event-driven (a CSR product, loops.csr_times_into:
  work = entries x fan-out) or dense (the block's counts as a dense matrix, scipy's
  csr_todense, times W in BLAS: work = samples x steps x n_pre x n_post). ``mode="auto"``
  picks dense above DENSE_ABOVE, the crossover density measured by benchmarks/run.py
  (suite "density", BENCHMARKS.md). The CSR rows (CsrRows) go to those loops directly,
  without a csr_matrix per block. A training batch's first-layer dense counts may be made
  ahead, in the trainer's read-ahead thread (stage_dense, NumpyBackend.stage).
- The IF recursion is one compiled pass per block (loops.if_block, integrate_block): the
  potentials, the spike records (counts, first / last / second-to-last spike) and the
  output CSR together, with no per-spike Python work.
- The timing gradient sums delta_bi c_bj(w_bi, T] / (theta (T - w_bi)) as the reference
  does, as M S: the suffix counts S of a block (no [B, T + 1, n_pre] array) times a sparse
  matrix M of the window starts, accumulated into one G^T row by row in sample order.
- The loops of gpusnn.backends.numpy.loops (numba, without the GIL) do the float32
  operations of the NumPy / scipy code they stand for in the same order, so they change
  no result.
- threads > 1 (docs/performance.md, "Every core"): the blocks of a layer (product and
  recursion), the gradient's accumulation by ranges of post neurons, the first layer's
  suffix counts beside the later layers and the update by ranges of rows run on the thread
  pool. Dense blocks never depend on the thread count and every other split is exact, so no
  result depends on it.

Event mode gives spike trains equal to the reference's on the same (coalesced) tensor bit
for bit (same sums in the same order), and so does the timing gradient (exact integer
suffix counts, each row of G^T summed in the reference's order); dense mode differs only by
float32 rounding.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

# the C++ kernel behind scipy.sparse's csr_matrix.toarray, called directly (a csr_matrix per block
# costs ~0.3 ms of checks; measured faster than a compiled loop of ours for this scatter)
from scipy.sparse import _sparsetools

from data_tools.spikes import SpikeTensor
from gpusnn import reference as ref
from gpusnn.backends.numpy import loops
from gpusnn.config import OptimConfig
from gpusnn.errors import ConfigError, ShapeError

#: Coalesced input density (entries / (B x T x n_pre)) above which auto runs the dense product,
#: set from the benchmarks' "density" suite on the 2-core development machine: first 15-20 %
#: with one thread; since the four-entry CSR loop the event-driven product is faster up to
#: 20-30 % with one thread (1.3x at 20 %), and dense wins from 15-20 % with two. The choice
#: must not depend on the thread count (dense and event-driven sums round differently), so
#: one threshold stays, between the two; moving it would change the trained weights of
#: inputs in between (the bundled gestures' first layer: 21 %). Both modes give the same
#: spikes up to threshold ties.
DENSE_ABOVE = 0.2
#: Float32 values one block may hold per layer (8 MiB).
CHUNK_ELEMENTS = 1 << 21
MODES = ("auto", "event", "dense")
#: Multiply-adds below which a layer's products stay on the calling thread: handing them to
#: the pool costs more than it saves (a pool round trip ~0.1-0.2 ms on the 2-core machine,
#: and the pool may still be busy with the suffix counts of KeptDense.suffix_ahead).
PARALLEL_WORK = 1 << 23


def density(spikes: SpikeTensor) -> float:
    """Fraction of (sample, step, input) slots that hold an entry: of a coalesced tensor
    (SpikeTensor.coalesce, what count encoding emits) the coalesced density, whatever the
    counts; the backend coalesces its input before choosing (see NumpyBackend.forward)."""
    slots = spikes.n_samples * spikes.n_steps * spikes.n_inputs
    return spikes.nnz / slots if slots else 0.0


def coalesced(spikes: SpikeTensor) -> SpikeTensor:
    """spikes with repeated ids merged into counts (SpikeTensor.coalesce) when it has adjacent
    repeats; else spikes itself (O(nnz) check; tensors with counts are taken as they are).

    Every producer here sorts ids within rows, so repeats are adjacent; a tensor with
    unsorted repeats is still computed correctly, only on its uncoalesced entries.
    """
    if spikes.counts is not None or spikes.nnz < 2 or not np.any(spikes.ids[1:] == spikes.ids[:-1]):
        return spikes
    return spikes.coalesce()


def check_mode(mode: str) -> str:
    """mode itself, or ConfigError when it is not one of MODES."""
    if mode not in MODES:
        raise ConfigError(f"unknown product mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def use_dense(spikes: SpikeTensor, mode: str) -> bool:
    """True when the chunk products should run dense (BLAS) rather than event-driven."""
    check_mode(mode)
    return mode == "dense" or (mode == "auto" and density(spikes) > DENSE_ABOVE)


def chunk_steps(n_samples: int, width: int, n_steps: int) -> int:
    """Steps per chunk so that a [steps, B, width] float32 block stays within CHUNK_ELEMENTS."""
    return int(np.clip(CHUNK_ELEMENTS // max(n_samples * width, 1), 1, n_steps))


@dataclass(frozen=True)
class Block:
    """A contiguous range of CSR rows: samples b0..b1-1 over steps t0..t1-1 (0-based).

    Several samples only over the whole window (t0 = 0, t1 = T); one sample may be cut
    into runs of steps when its window alone exceeds CHUNK_ELEMENTS.
    """

    b0: int
    b1: int
    t0: int
    t1: int

    def rows(self, T: int) -> tuple[int, int]:
        """First and one-past-last CSR row r = b * T + t."""
        return self.b0 * T + self.t0, (self.b1 - 1) * T + self.t1


#: A batch's dense forward is cut into at least this many blocks where its samples allow, so
#: that threads have work to share; a constant, not the thread count, so that the BLAS
#: products and with them every float32 sum are the same whatever the number of threads.
MIN_BLOCKS = 2


def plan_blocks(s0: int, s1: int, T: int, width: int, min_blocks: int = MIN_BLOCKS) -> list[Block]:
    """Blocks covering samples s0..s1-1 over all T steps, each holding at most
    CHUNK_ELEMENTS float32 values of `width` per row (at least one step of one sample): a
    multiple of min_blocks blocks where the samples allow (so that threads share them
    evenly), of near equal sizes."""
    per_sample = T * max(width, 1)
    n = s1 - s0
    if per_sample <= CHUNK_ELEMENTS:
        need = -(-n // (CHUNK_ELEMENTS // per_sample))                   # blocks the chunk asks for
        count = min(n, -(-need // min_blocks) * min_blocks)
        return [Block(s0 + lo, s0 + hi, 0, T) for lo, hi in split_range(n, count)]
    c = chunk_steps(1, width, T)
    return [Block(b, b + 1, t, min(T, t + c)) for b in range(s0, s1) for t in range(0, T, c)]


def parallel_map(fn, items: list, threads: int) -> list:
    """[fn(x) for x in items], in order; with threads > 1 the calling thread and threads - 1
    pool threads take the items in turn (the calling thread works instead of waiting: one
    wake-up fewer per call, and a pool thread still busy, e.g. with KeptDense.suffix_ahead,
    leaves its share to the others). NumPy's loops, BLAS, scipy's sparse kernels and
    gpusnn.backends.numpy.loops release the GIL. BLAS runs one thread per call from the
    first parallel call on (single_threaded_blas): the threads are ours, which block instead
    of spinning (two spinning BLAS threads per call on a busy 2-core machine made products up
    to 100x slower). An exception of any item is raised here once every taker is done."""
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    single_threaded_blas()
    results: list = [None] * len(items)
    turn = iter(range(len(items)))
    lock = threading.Lock()

    def take() -> None:
        while True:
            with lock:
                k = next(turn, None)
            if k is None:
                return
            try:
                results[k] = fn(items[k])
            except BaseException:
                with lock:                                  # the other takers stop too
                    for _ in turn:
                        pass
                raise
    helpers = [_pool(threads - 1).submit(take) for _ in range(min(threads, len(items)) - 1)]
    try:
        take()
    finally:                        # a helper that never started has nothing left to take: cancelled
        started = [h for h in helpers if not h.cancel()]
        futures.wait(started)       # (wait() would also wait for a cancelled one to leave the queue)
    for h in started:
        h.result()                  # a helper's exception
    return results


def single_threaded_blas() -> None:
    """Run BLAS on one thread per call from now on, for the whole process (the BLAS libraries
    loaded at the first call; one loaded later keeps its own setting): with threads > 1
    the threads are the backend's (parallel_map). Restoring BLAS's own threads after every
    parallel call woke them, and they spun beside ours (measured: the 2-thread forward 30 %
    slower)."""
    if not _BLAS_LIMIT:      # the BLAS libraries loaded by now (threadpoolctl inspects them here)
        from threadpoolctl import threadpool_limits
        _BLAS_LIMIT.append(threadpool_limits(limits=1, user_api="blas"))


_BLAS_LIMIT: list = []


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """[(lo, hi)] cutting 0..n-1 into at most `parts` contiguous non-empty ranges of near
    equal size (none when n = 0)."""
    parts = max(1, min(parts, n))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gpusnn")
    return _POOLS[threads]


def default_threads() -> int:
    """Threads of the numpy backend: the CPUs this process may use, capped by
    OMP_NUM_THREADS / OPENBLAS_NUM_THREADS when set (the BLAS thread setting)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            n = min(n, int(os.environ[var]))
    return max(1, n)


@dataclass(frozen=True)
class CsrRows:
    """Rows r0..r1-1 of a spike tensor as raw CSR arrays (no copy of ids): indptr rebased to
    0 in the ids' integer type, ids, and data float32 (the entries' counts)."""

    indptr: np.ndarray
    ids: np.ndarray
    data: np.ndarray
    n_cols: int

    @classmethod
    def of(cls, spikes: SpikeTensor, r0: int, r1: int) -> CsrRows:
        """Rows r0..r1-1 of spikes; only their counts become float32 (each block converts its
        own, on the thread that uses them)."""
        lo, hi = int(spikes.indptr[r0]), int(spikes.indptr[r1])
        ids = spikes.ids[lo:hi]
        if ids.dtype not in (np.int32, np.int64):                        # the kernels' index types
            ids = ids.astype(np.int32)
        data = np.ones(hi - lo, np.float32) if spikes.counts is None else spikes.counts[lo:hi].astype(np.float32)
        return cls((spikes.indptr[r0:r1 + 1] - lo).astype(ids.dtype), ids, data, spikes.n_inputs)

    @property
    def n_rows(self) -> int:
        return self.indptr.size - 1

    def dense(self, out: np.ndarray) -> np.ndarray:
        """The rows as dense float32 counts in out [n_rows, width >= n_cols] (C-contiguous,
        overwritten; columns from n_cols on stay 0)."""
        out.fill(0)
        _sparsetools.csr_todense(self.n_rows, out.shape[1], self.indptr, self.ids, self.data, out)
        return out

    def times_into(self, X: np.ndarray, out: np.ndarray, zero_first: bool = False) -> np.ndarray:
        """out += rows x X (X float32 [n_cols, k]; out float32 [n_rows, k]), as scipy's
        sparse product computes it (entry by entry in CSR order: the same sums); zero_first:
        out = rows x X (out's old values unused)."""
        loops.csr_times_into(self.indptr, self.ids, self.data, X, out, zero_first)
        return out


_LOCAL = threading.local()


def scratch(n_rows: int, width: int, slot: str = "dense") -> np.ndarray:
    """A float32 [n_rows, width] array in this thread's reused buffer named slot, valid until
    the thread asks for that slot again (a fresh multi-megabyte array per block costs its page
    faults every time)."""
    n = n_rows * width
    bufs = _LOCAL.__dict__.setdefault("bufs", {})
    if slot not in bufs or bufs[slot].size < n:
        bufs[slot] = np.empty(n, np.float32)
    return bufs[slot][:n].reshape(n_rows, width)


class KeptDense:
    """The first layer's dense counts that the forward keeps for the gradient of the same
    batch: blocks {Block: float32 [rows, n_pre + PAD]}, views of buf: the batch's counts
    made ahead (prepare(staged=), NumpyBackend.stage), else one flat buffer of its own that
    is reused batch after batch (fresh multi-megabyte arrays would cost their page faults
    each time) and filled by layer_forward(keep_dense=). Consumed by
    weight_gradient(dense_input=).

    suffix: None while the blocks hold counts; else they become suffix counts in place, by a
    Future running on the thread pool (suffix_ahead: while the calling thread goes on with
    the later layers) or done (True; also set by layer_forward(suffix_in_blocks=), whose
    blocks made them each after its product)."""

    def __init__(self):
        self.own = self.buf = np.empty(0, np.float32)
        self.blocks: dict = {}
        self.suffix = None

    def prepare(self, n_values: int, staged: np.ndarray | None = None) -> None:
        """Forget the kept blocks; hold the staged counts, or make room for n_values floats."""
        self.finish()
        self.blocks, self.suffix = {}, None
        if staged is not None:
            self.buf = staged.reshape(-1)
            return
        if self.own.size < n_values:
            self.own = np.empty(n_values, np.float32)
        self.buf = self.own

    def suffix_ahead(self, T: int, threads: int) -> None:
        """Start turning whole-window blocks into suffix counts on the thread pool."""
        blocks = self.ordered()
        if threads > 1 and blocks and all(b.t0 == 0 and b.t1 == T for b in blocks):
            S = self.rows(blocks[0].rows(T)[0], blocks[-1].rows(T)[1], next(iter(self.blocks.values())).shape[1])
            self.suffix = _pool(threads - 1).submit(_suffix_counts, S, blocks, T, None, None)

    def finish(self) -> bool:
        """Wait for a suffix_ahead; True when the blocks hold suffix counts."""
        if self.suffix is not None and self.suffix is not True:
            self.suffix.result()
            self.suffix = True
        return self.suffix is True

    def ordered(self) -> list[Block]:
        """The kept blocks in CSR row order."""
        return sorted(self.blocks, key=lambda b: (b.b0, b.t0))

    def block(self, blk: Block, r0: int, r1: int, width: int) -> np.ndarray:
        """The view for CSR rows r0..r1-1 (float32 [r1 - r0, width]), kept under blk (for the
        caller to fill, unless staged)."""
        view = self.blocks[blk] = self.rows(r0, r1, width)
        return view

    def rows(self, r0: int, r1: int, width: int) -> np.ndarray:
        """CSR rows r0..r1-1 of the kept counts, float32 [r1 - r0, width] (a view)."""
        return self.buf[r0 * width:r1 * width].reshape(r1 - r0, width)


@dataclass
class SpikeRecorder:
    """A layer's per-neuron spike records, filled block by block (int32 [B, N], 0 = none),
    and its output spikes as CSR pieces: row_len int64 [B * T] and the ids of each block in
    CSR row order (integrate_block's results, stored by the caller)."""

    n_steps: int
    counts: np.ndarray
    t_first: np.ndarray
    t_last: np.ndarray
    t_prev: np.ndarray
    row_len: np.ndarray
    ids: list

    @classmethod
    def empty(cls, B: int, T: int, N: int) -> SpikeRecorder:
        return cls(T, *(np.zeros((B, N), np.int32) for _ in range(4)), np.zeros(B * T, np.int64), [])

    def spikes(self) -> SpikeTensor:
        """The recorded spikes as a SpikeTensor B x T x N (blocks came in CSR row order)."""
        (B, N), T = self.counts.shape, self.n_steps
        indptr = np.zeros(B * T + 1, np.int64)
        np.cumsum(self.row_len, out=indptr[1:])
        ids = np.concatenate(self.ids) if self.ids else np.zeros(0, np.int32)
        return SpikeTensor(indptr, ids, B, T, N)


def integrate_block(I: np.ndarray, u: np.ndarray, theta: np.float32, t0: int, rec: SpikeRecorder,
                    b0: int) -> np.ndarray:
    """The IF recursion of one block in place (loops.if_block, one pass without the GIL):
    I float32 [nb, nt, N], the currents of samples b0.. over steps t0+1..t0+nt; u float32
    [nb, N] (a view, updated); rec gets the records of samples b0.. (continuing those of
    earlier runs of steps of the same samples) and the row lengths of the block's CSR rows.
    Returns the block's output ids (int32, CSR order)."""
    nb, nt, N = I.shape
    sl = slice(b0, b0 + nb)
    r0 = b0 * rec.n_steps + t0
    ids = _scratch_ids(nb * nt * N)
    n = loops.if_block(I, u, theta, t0, rec.counts[sl], rec.t_first[sl], rec.t_last[sl], rec.t_prev[sl],
                       rec.row_len[r0:r0 + nb * nt], ids)
    return ids[:n].copy()


def stage_dense(spikes: SpikeTensor) -> np.ndarray:
    """The dense counts of spikes for a first layer's forward made ahead (layer_forward's
    staged; used when its product runs dense): float32 [B * T, n_inputs + PAD], the last PAD
    columns 0. spikes must be coalesced (coalesced)."""
    rows = spikes.n_samples * spikes.n_steps
    return CsrRows.of(spikes, 0, rows).dense(np.empty((rows, spikes.n_inputs + PAD), np.float32))


def _scratch_ids(n: int) -> np.ndarray:
    """An int32 buffer of at least n values, this thread's, reused."""
    buf = getattr(_LOCAL, "ids", None)
    if buf is None or buf.size < n:
        buf = _LOCAL.ids = np.empty(n, np.int32)
    return buf


def layer_forward(W: np.ndarray, spikes: SpikeTensor, theta: float, mode: str = "auto",
                  threads: int = 1, keep_dense: KeptDense | None = None,
                  staged: np.ndarray | None = None, suffix_in_blocks: bool = False) -> ref.LayerRecord:
    """Nonleaky IF layer over the whole window (method.md section 1), in blocks of samples.

    W float32 [n_pre, n_post]; spikes B x T x n_pre (entries with counts add count x W[j]).
    Block by block (plan_blocks): the block's currents as one product (CSR x W, or the
    block's dense counts x W in BLAS) into a per-thread buffer, then the IF recursion over
    the block's steps (integrate_block). With threads > 1 whole-window blocks run on the
    thread pool, product and recursion together (neither holds the GIL); a layer of less
    than PARALLEL_WORK multiply-adds, or one sample's window cut into runs of steps (each run
    continues the last), stays on this thread. Dense blocks are the same whatever the
    thread count (MIN_BLOCKS), event-driven products are exact in any blocks. Returns the
    reference's LayerRecord.

    keep_dense: receives the dense counts of every block when the product runs dense, for
    weight_gradient(dense_input=) of the same batch (which then builds no dense counts of its
    own); None: the counts live in a reused per-thread buffer only while their product runs.
    staged: the dense counts of spikes made ahead (float32 [B * T, n_pre + PAD], stage_dense),
    used instead of new ones when the product runs dense.
    suffix_in_blocks: with keep_dense, a dense product and whole-window blocks, each block
    turns its kept counts into the gradient's suffix counts right after its product, on the
    block's thread (the same sums as the gradient's own; keep_dense.suffix becomes True).
    """
    B, T, (n_pre, n_post) = spikes.n_samples, spikes.n_steps, W.shape
    if n_pre != spikes.n_inputs:
        raise ShapeError(f"weights have {n_pre} presynaptic rows but the input has "
                         f"{spikes.n_inputs} lines")
    W = np.ascontiguousarray(W, np.float32)
    spikes = coalesced(spikes)
    dense = use_dense(spikes, mode)
    blocks = plan_blocks(0, B, T, n_post + (n_pre if dense else 0), MIN_BLOCKS if dense or threads > 1 else 1)
    th = np.float32(theta)
    staged = staged if dense else None
    if keep_dense is not None:
        keep_dense.prepare(B * T * (n_pre + PAD) if dense else 0, staged)
    u = np.zeros((B, n_post), np.float32)
    rec = SpikeRecorder.empty(B, T, n_post)
    cut = any(blk.t1 - blk.t0 < T for blk in blocks)
    own_suffix = suffix_in_blocks and dense and keep_dense is not None and not cut

    def run(blk: Block) -> np.ndarray:
        """The block's currents, then its recursion; its output ids."""
        a, b = blk.rows(T)
        I = scratch(b - a, n_post, "currents")
        if dense:
            counts = keep_dense.block(blk, a, b, n_pre + PAD) if keep_dense is not None else \
                staged[a:b] if staged is not None else scratch(b - a, n_pre)
            if staged is None:                                              # else made ahead
                CsrRows.of(spikes, a, b).dense(counts)
            np.matmul(counts[:, :n_pre], W, out=I)                         # BLAS takes the row stride
            if own_suffix:                                                  # the product is done with them
                loops.suffix_sums(counts.reshape(blk.b1 - blk.b0, T, n_pre + PAD))
        else:
            CsrRows.of(spikes, a, b).times_into(W, I, zero_first=True)
        return integrate_block(I.reshape(blk.b1 - blk.b0, blk.t1 - blk.t0, n_post), u[blk.b0:blk.b1], th,
                               blk.t0, rec, blk.b0)

    small = (B * T * n_pre if dense else spikes.nnz) * n_post < PARALLEL_WORK
    rec.ids = parallel_map(run, blocks, 1 if small or cut else threads)
    if own_suffix:
        keep_dense.suffix = True
    return ref.LayerRecord(rec.counts, rec.t_first, rec.t_last, rec.t_prev, u, rec.spikes())


def forward(weights: list[np.ndarray], spikes: SpikeTensor, theta: float, mode: str = "auto",
            threads: int = 1, keep_dense: KeptDense | None = None, suffix_ahead: bool = True,
            staged: np.ndarray | None = None,
            first_layer_done: Callable[[], None] | None = None) -> list[ref.LayerRecord]:
    """Every layer in turn, like reference.forward; mode is chosen per layer from its input.
    keep_dense, staged: see layer_forward, for the first layer. With threads > 1 and
    suffix_ahead (a gradient will follow) its suffix counts for the gradient are made by its
    blocks when its counts were staged (layer_forward(suffix_in_blocks=): the thread pool is
    then free for the read-ahead thread's next batch, NumpyBackend.stage), else on the thread
    pool while the later layers run here (KeptDense.suffix_ahead). first_layer_done: called
    when the first layer is done."""
    records = []
    in_blocks = suffix_ahead and staged is not None and threads > 1
    for l, W in enumerate(weights):
        rec = layer_forward(W, spikes, theta, mode, threads, keep_dense if l == 0 else None,
                            staged if l == 0 else None, suffix_in_blocks=in_blocks and l == 0)
        if l == 0 and first_layer_done is not None:
            first_layer_done()
        if l == 0 and keep_dense is not None and suffix_ahead and keep_dense.suffix is None:
            keep_dense.suffix_ahead(spikes.n_steps, threads)    # the gradient's suffix sums, beside the later layers
        records.append(rec)
        spikes = rec.spikes
    return records


#: Rows of G^T copied into G at a time (measured: 0.50 ms for the 2048 x 500 layer in bands of 64,
#: 0.59 ms at once, 0.69 ms in bands of 16).
TRANSPOSE_ROWS = 64
#: Zero columns after n_pre in the gradient's buffers: rows off a power-of-two stride keep the
#: final transpose of G^T cache friendly.
PAD = 16


def weight_gradient(spikes_in: SpikeTensor, rec_post: ref.LayerRecord, delta_post: np.ndarray,
                    theta: float, gradient: str = "timing", threads: int = 1,
                    dense_input: KeptDense | None = None) -> np.ndarray:
    """G float32 [n_pre, n_post], the reference's weight_gradient bit for bit, block by block.

    With a = delta / (theta (T - w)) [B, n_post] and S_b(w) the counts of steps w+1..T of
    sample b (suffix sums, every entry weighted by its count, exact in float32):
    G^T = sum_b M_b S_b, M_b holding a_bi at row w_bi (a term with a = 0, e.g. a saturated
    neuron's, adds nothing and is left out). Per block (plan_blocks) the suffix sums are a
    running sum backwards over the steps of the block's dense counts (made from its
    coalesced entries), plus the counts after the block when it ends before step T; then
    M P is accumulated into G^T entry by entry in CSR order, each row in ascending sample
    order as the reference sums it. Work: B x n_post x n_pre multiply-adds plus B x T x
    n_pre additions. With threads > 1 the accumulation of a large block runs on the thread
    pool by ranges of post neurons (no sum changes); the suffix sums and the final transpose
    are memory bound and stay on this thread (measured: a second thread made them slower).

    dense_input: the dense counts the forward kept of these spikes (layer_forward
    keep_dense; consumed: turned into suffix sums in place). Its blocks are used instead of
    new ones; the result is the same bit for bit.
    """
    if gradient == "rate":
        return ref.weight_gradient(spikes_in, rec_post, delta_post, theta, gradient)
    B, T, n_pre = spikes_in.n_samples, spikes_in.n_steps, spikes_in.n_inputs
    n_post = delta_post.shape[1]
    if B == 0:
        return np.zeros((n_pre, n_post), np.float32)
    spikes_in = coalesced(spikes_in)
    w = ref.window_start(rec_post.t_last, rec_post.t_prev, T)
    a = (delta_post / (np.float32(theta) * (T - w).astype(np.float32))).astype(np.float32)
    row = np.arange(B, dtype=np.int64)[:, None] * T + w                 # [B, n_post] CSR row of S_b(w_bi)
    width = n_pre + PAD
    kept = dense_input if dense_input is not None and dense_input.blocks else None
    if kept:                                           # the forward's blocks: one wave, already dense
        waves = [kept.ordered()]
    else:
        waves = [[blk] for blk in plan_blocks(0, B, T, n_pre, 1)]
    cut = any(b.t1 < T for wave in waves for b in wave)
    data = spikes_in.entry_counts() if cut else None
    G_T = scratch(n_post, width, "gradient")           # rows set by the first wave, then added to
    G = np.empty((n_pre, n_post), np.float32)
    for k, wave in enumerate(waves):
        R0, R1 = wave[0].rows(T)[0], wave[-1].rows(T)[1]
        S = kept.rows(R0, R1, width) if kept else \
            CsrRows.of(spikes_in, R0, R1).dense(scratch(R1 - R0, width, "suffix"))
        if not (kept and kept.finish()):
            _suffix_counts(S, wave, T, spikes_in, data)
        M, final = _window_matrix(row, a, R0, R1), k == len(waves) - 1

        def accumulate(p: tuple[int, int]) -> None:
            """G^T rows p += M S; after the last wave they go to their columns of G."""
            M.rows(*p).times_into(S, G_T[p[0]:p[1]], zero_first=k == 0)
            if final:
                for i in range(*p, TRANSPOSE_ROWS):       # bands of G: the copy stays within the cache
                    i1 = min(i + TRANSPOSE_ROWS, p[1])
                    G[:, i:i1] = G_T[i:i1, :n_pre].T
        parallel_map(accumulate, split_range(n_post, threads if M.cols.size * width >= PARALLEL_WORK else 1),
                     threads)
    if kept:
        kept.blocks, kept.suffix = {}, None
    return G


def _suffix_counts(S: np.ndarray, wave: list[Block], T: int, spikes: SpikeTensor, data: np.ndarray | None) -> None:
    """Turn the dense counts of the wave's CSR rows (S float32 [rows, width], the blocks in
    row order) into suffix counts in place: row (b, t) becomes S_b(t) = the counts of steps
    t+1..T. A block that ends before step T (one sample's window cut into runs of steps)
    gets the counts of its later steps added (from the entries: data, the entries' counts)."""
    if all(b.t0 == 0 and b.t1 == T for b in wave):    # whole windows: one pass over every sample at once
        spans = [(0, S.shape[0] // T, T, None)]
    else:
        spans, r = [], 0
        for blk in wave:
            nb, nt = blk.b1 - blk.b0, blk.t1 - blk.t0
            spans.append((r, nb, nt, blk))
            r += nb * nt
    for r, nb, nt, blk in spans:
        P = S[r:r + nb * nt].reshape(nb, nt, S.shape[1])
        loops.suffix_sums(P)
        if blk is not None and blk.t1 < T:
            lo, hi = int(spikes.indptr[blk.b0 * T + blk.t1]), int(spikes.indptr[blk.b0 * T + T])
            P += np.bincount(spikes.ids[lo:hi], data[lo:hi], minlength=S.shape[1]).astype(np.float32)


@dataclass(frozen=True)
class WindowMatrix:
    """M of a wave as CSR rows i = 0..n_post-1 over the wave's suffix rows: a_bi at column
    b T + w_bi - R0, each row in ascending b."""

    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    n_cols: int

    def rows(self, i0: int, i1: int) -> CsrRows:
        """Rows i0..i1-1 as CsrRows (indptr rebased to 0)."""
        lo, hi = int(self.indptr[i0]), int(self.indptr[i1])
        return CsrRows(self.indptr[i0:i1 + 1] - lo, self.cols[lo:hi], self.vals[lo:hi], self.n_cols)


def _window_matrix(row: np.ndarray, a: np.ndarray, R0: int, R1: int) -> WindowMatrix:
    """M for the suffix rows R0..R1-1 (row int64, a float32: [B, n_post]; terms with a = 0
    left out), built by loops.window_terms."""
    B, N = a.shape
    indptr, cols, vals = np.empty(N + 1, np.int32), np.empty(B * N, np.int32), np.empty(B * N, np.float32)
    n = loops.window_terms(row, a, R0, R1, indptr, cols, vals)
    return WindowMatrix(indptr, cols[:n], vals[:n], R1 - R0)


def fractional_update(W: np.ndarray, *, W_prev: np.ndarray, G: np.ndarray, G_prev: np.ndarray | None,
                      step: int, optim: OptimConfig, scratch: np.ndarray, threads: int = 1) -> None:
    """reference.fractional_update in place: W <- W(k+1) and W_prev <- W(k), bit for bit.

    The step itself is one pass (loops.descend: lr * g, times the factor, W_prev = W, W - s,
    the clamp), with threads > 1 by ranges of rows on the thread pool. The fractional factor
    (reference.fractional_factor) is made in NumPy first, into scratch (float32 shaped like
    W: no temporaries of W's size, whose page faults would come back every step). With
    alpha = 1 the factor is exactly 1 (then clipped), so it is applied as a scalar.
    """
    g = G_prev if (step > 0 and optim.grad_at == "previous") else G
    scale, factor = np.float32(1), np.zeros((0, 0), np.float32)
    if step > 0 and optim.alpha == 1.0:
        scale = np.float32(ref.gamma_factor(1.0))
        scale = scale if optim.factor_clip is None else min(scale, np.float32(optim.factor_clip))
    elif step > 0:
        factor = scratch
        np.subtract(W, W_prev, out=factor)
        if optim.eps_inside:
            factor += np.float32(optim.eps)
            np.abs(factor, out=factor)
        else:
            np.abs(factor, out=factor)
            factor += np.float32(optim.eps)
        with np.errstate(divide="ignore", over="ignore"):
            np.power(factor, np.float32(1.0 - optim.alpha), out=factor)
            factor *= np.float32(ref.gamma_factor(optim.alpha))
        if optim.factor_clip is not None:
            np.minimum(factor, np.float32(optim.factor_clip), out=factor)
    w_max = np.float32(np.inf if optim.w_max is None else optim.w_max)
    W, W_prev, g = np.atleast_2d(W, W_prev, g)                     # views: the loop takes matrices
    factor = np.atleast_2d(factor)

    def rows(r: tuple[int, int]) -> None:
        sl = slice(*r)
        loops.descend(W[sl], W_prev[sl], g[sl], np.float32(optim.lr), factor[sl] if factor.size else factor,
                      np.float32(scale), w_max)
    parallel_map(rows, split_range(W.shape[0], threads if W.size >= PARALLEL_UPDATE else 1), threads)


#: Weights below which an update stays on the calling thread (a pool round trip costs more).
PARALLEL_UPDATE = 1 << 18
