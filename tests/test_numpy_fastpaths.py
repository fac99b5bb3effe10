"""The numpy backend's fast CPU paths (gpusnn.backends.numpy.fastpaths) against the reference."""
import numpy as np
import pytest

from gpusnn.backends.numpy import fastpaths as ck
from gpusnn import reference as ref
from gpusnn.backends.numpy.backend import NumpyBackend
from gpusnn.config import MethodConfig, OptimConfig
from gpusnn.errors import ConfigError, ShapeError
from data_tools.spikes import SpikeTensor, from_dense

THETA = 1.0


def workload(seed, B=5, T=13, widths=(40, 30, 7), density=0.2, repeats=False):
    rng = np.random.default_rng(seed)
    dense = (rng.random((B, T, widths[0])) < density).astype(np.int64)
    if repeats:  # count encoding: some inputs spike twice in a step
        dense += (rng.random(dense.shape) < density / 4)
    weights = [rng.uniform(-0.3, 0.6, (a, b)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    return from_dense(dense), weights, rng


@pytest.fixture(params=[1 << 20, 64], ids=["one-chunk", "many-chunks"])
def chunk(request, monkeypatch):
    monkeypatch.setattr(ck, "CHUNK_ELEMENTS", request.param)
    return request.param


def assert_same_records(a, b, exact_u=True):
    for f in ("counts", "t_first", "t_last", "t_prev"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_array_equal(a.spikes.indptr, b.spikes.indptr)
    np.testing.assert_array_equal(a.spikes.ids, b.spikes.ids)
    if exact_u:
        np.testing.assert_array_equal(a.u_final, b.u_final)
    else:
        np.testing.assert_allclose(a.u_final, b.u_final, atol=1e-5)


@pytest.mark.parametrize("repeats", [False, True])
def test_event_forward_equals_reference_bit_for_bit(chunk, repeats):
    # the fast path coalesces repeats (count x W[j], one rounding), so it equals the
    # reference of the coalesced tensor bit for bit (tests/test_coalesced_spikes.py: and the
    # uncoalesced one's with dyadic weights)
    spikes, weights, _ = workload(1, repeats=repeats)
    assert (spikes.coalesce() is spikes) == (not repeats)
    got = ck.forward(weights, spikes, THETA, "event")
    for a, b in zip(ref.forward(weights, spikes.coalesce(), THETA), got):
        assert_same_records(a, b)
    assert all(r.counts.sum() > 0 for r in got), "every layer must spike"


def test_dense_forward_equals_reference_up_to_rounding(chunk):
    spikes, weights, _ = workload(2)
    got = ck.forward(weights, spikes, THETA, "dense")
    for a, b in zip(ref.forward(weights, spikes, THETA), got):
        assert_same_records(a, b, exact_u=False)
    assert all(r.counts.sum() > 0 for r in got), "every layer must spike"


@pytest.mark.parametrize("chunk_elements", [1 << 20, 3])
def test_records_of_a_hand_made_train(monkeypatch, chunk_elements):
    # one sample; input 0 spikes at steps 2, 5, 9 and drives neuron 0 to threshold at once,
    # input 1 at step 4 drives neuron 1, neuron 2 gets nothing; with 3 elements per block
    # the window is cut into runs of one step, so the records carry across blocks
    monkeypatch.setattr(ck, "CHUNK_ELEMENTS", chunk_elements)
    dense = np.zeros((1, 10, 2), np.int64)
    dense[0, [1, 4, 8], 0] = 1
    dense[0, 3, 1] = 1
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    rec = ck.layer_forward(W, from_dense(dense), 1.0, "event")
    np.testing.assert_array_equal(rec.counts, [[3, 1, 0]])
    np.testing.assert_array_equal(rec.t_first, [[2, 4, 0]])
    np.testing.assert_array_equal(rec.t_last, [[9, 4, 0]])
    np.testing.assert_array_equal(rec.t_prev, [[5, 0, 0]])
    np.testing.assert_array_equal(rec.u_final, [[0, 0, 0]])
    np.testing.assert_array_equal(rec.spikes.to_dense()[0].nonzero(), ([1, 3, 4, 8], [0, 1, 0, 0]))


@pytest.mark.parametrize("gradient", ["timing", "rate"])
def test_gradient_matches_reference(chunk, gradient):
    spikes, weights, rng = workload(3, T=17)
    records = ref.forward(weights, spikes, THETA)
    inputs = [spikes] + [r.spikes for r in records[:-1]]
    for s, r in zip(inputs, records):
        delta = rng.standard_normal(r.counts.shape).astype(np.float32)
        want = ref.weight_gradient(s, r, delta, THETA, gradient)
        got = ck.weight_gradient(s, r, delta, THETA, gradient)
        assert got.dtype == np.float32 and got.shape == want.shape and got.flags.c_contiguous
        assert np.abs(want).max() > 0
        if gradient == "timing":   # exact suffix counts, each G^T row summed in the reference's order
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_gradient_counts_neurons_that_fired_on_the_last_step():
    # input 0 spikes at steps 1 and 3; the post neuron fires at 2 and 4 (= T): window (2, 4]
    spikes = from_dense(np.array([[[1], [0], [1], [0]]]))
    rec = ref.LayerRecord(np.array([[2]], np.int32), np.array([[2]], np.int32), np.array([[4]], np.int32),
                          np.array([[2]], np.int32), np.zeros((1, 1), np.float32), spikes)
    G = ck.weight_gradient(spikes, rec, np.array([[2.0]], np.float32), 0.5)
    np.testing.assert_allclose(G, [[2.0 * 1 / (0.5 * 2)]])


@pytest.mark.parametrize("optim", [OptimConfig(), OptimConfig(alpha=1.5), OptimConfig(alpha=0.6, eps_inside=True),
                                   OptimConfig(alpha=1.9, factor_clip=None, w_max=None),
                                   OptimConfig(alpha=1.0, factor_clip=0.5), OptimConfig(alpha=1.3, grad_at="previous")])
@pytest.mark.parametrize("threads", [1, 3])
def test_update_equals_reference_bit_for_bit(optim, threads, monkeypatch):
    monkeypatch.setattr(ck, "PARALLEL_UPDATE", 0)       # with 3 threads: rows in 3 ranges on the pool
    rng = np.random.default_rng(4)
    W = rng.uniform(-1, 1, (30, 7)).astype(np.float32)
    W[0, :3] = [np.nan, 3.999, -4.5]                   # NaN stays NaN; the clamp at w_max = 4
    W_prev = (W + rng.normal(0, 1e-3, W.shape)).astype(np.float32)
    G = rng.standard_normal(W.shape).astype(np.float32)
    G_prev = rng.standard_normal(W.shape).astype(np.float32) if optim.grad_at == "previous" else None
    backend = NumpyBackend(threads=threads)
    for step in (0, 3):
        want = ref.fractional_update(W, W_prev=W_prev, G=G, G_prev=G_prev, step=step, optim=optim)
        w, wp = W.copy(), W_prev.copy()
        gp = None if G_prev is None else G_prev.copy()
        backend.update(w, W_prev=wp, G=G, G_prev=gp, step=step, optim=optim)
        np.testing.assert_array_equal(w, want)
        np.testing.assert_array_equal(wp, W)
        if gp is not None:
            np.testing.assert_array_equal(gp, G)


def test_backend_gradients_match_reference_end_to_end():
    spikes, weights, rng = workload(5, widths=(40, 30, 20, 7))
    labels = rng.integers(0, 7, spikes.n_samples)
    backend = NumpyBackend()
    records = backend.forward(weights, spikes, THETA)
    loss, rho, grads = backend.gradients(weights, spikes, records, labels, spikes.n_steps, THETA, MethodConfig())
    rrec = ref.forward(weights, spikes, THETA)
    deltas = ref.backward_deltas(weights, rrec, ref.loss_and_delta(
        ref.readout(rrec[-1].counts, rrec[-1].u_final, THETA, spikes.n_steps), labels, MethodConfig(),
        spikes.n_steps)[1], THETA, spikes.n_steps)
    for g, s, r, d in zip(grads, [spikes] + [x.spikes for x in rrec[:-1]], rrec, deltas):
        want = ref.weight_gradient(s, r, d, THETA)
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6 * max(np.abs(want).max(), 1e-12))


def test_auto_mode_follows_the_crossover():
    sparse_input, _, _ = workload(6, density=ck.DENSE_ABOVE / 4)
    dense_input, _, _ = workload(6, density=min(1.0, ck.DENSE_ABOVE * 3))
    assert not ck.use_dense(sparse_input, "auto") and ck.use_dense(dense_input, "auto")
    assert ck.use_dense(sparse_input, "dense") and not ck.use_dense(dense_input, "event")


def test_bad_mode_and_shape_are_refused():
    with pytest.raises(ConfigError, match="mode"):
        NumpyBackend(mode="fast")
    spikes, weights, _ = workload(7)
    with pytest.raises(ShapeError, match="presynaptic rows"):
        ck.layer_forward(weights[1], spikes, THETA)


def test_working_memory_is_bounded_by_the_chunk(monkeypatch):
    monkeypatch.setattr(ck, "CHUNK_ELEMENTS", 5 * 30 * 4)
    assert ck.chunk_steps(5, 30, 100) == 4
    assert ck.chunk_steps(5, 10 ** 6, 100) == 1
    assert ck.chunk_steps(5, 1, 3) == 3


@pytest.mark.parametrize("mode", ["event", "dense"])
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_over_sample_ranges_give_the_same_results(chunk, threads, mode, monkeypatch):
    monkeypatch.setattr(ck, "PARALLEL_WORK", 0)         # the pool takes even this small work
    spikes, weights, rng = workload(8, B=7, T=12, repeats=True)
    one = ck.forward(weights, spikes, THETA, mode, threads=1)
    many = ck.forward(weights, spikes, THETA, mode, threads=threads)
    for a, b in zip(one, many):
        assert_same_records(a, b)                      # same blocks whatever the thread count
    delta = rng.standard_normal(one[0].counts.shape).astype(np.float32)
    G1 = ck.weight_gradient(spikes, one[0], delta, THETA, threads=1)
    Gn = ck.weight_gradient(spikes, one[0], delta, THETA, threads=threads)
    np.testing.assert_array_equal(Gn, G1)              # same blocks, summed in the same order


def test_a_backend_with_threads_holds_blas_at_one_thread(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    monkeypatch.setattr(ck, "_BLAS_LIMIT", [])            # as in a fresh process
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() and max(blas_threads()) == 2
        NumpyBackend(threads=2)
        assert blas_threads() == [1] * len(blas_threads())


def test_parallel_map_keeps_the_order_and_needs_no_free_pool_thread():
    import threading
    busy, release = threading.Event(), threading.Event()
    blocker = ck._pool(1).submit(lambda: (busy.set(), release.wait(10)))   # the only pool thread, held
    busy.wait(10)
    seen = []

    def fail_at_3(x):
        seen.append(x)
        if x == 3:
            raise ValueError("item 3")
        return x
    try:
        assert ck.parallel_map(lambda x: x * x, list(range(7)), threads=2) == [x * x for x in range(7)]
        assert not blocker.done()                     # the calling thread took every item
        with pytest.raises(ValueError, match="item 3"):
            ck.parallel_map(fail_at_3, list(range(50)), threads=2)
        assert seen == [0, 1, 2, 3]                   # the calling thread alone, stopped at the failure
    finally:
        release.set()
    blocker.result(10)
    assert ck.parallel_map(str, [1, 2], threads=2) == ["1", "2"]   # and the pool still works


def test_parallel_map_raises_a_pool_threads_exception():
    import threading
    caller, taken = threading.current_thread(), threading.Event()

    def item(x):
        if threading.current_thread() is caller:
            assert taken.wait(10)                     # hold the first item until the pool thread took one
            return x
        taken.set()
        raise KeyError(f"pool item {x}")
    with pytest.raises(KeyError, match="pool item 1"):
        ck.parallel_map(item, [0, 1, 2, 3], threads=2)


def test_loops_compile_where_no_cache_can_be_written():
    from gpusnn.backends.numpy import loops
    namespace = {}
    exec("def twice(x):\n    return 2 * x\n", namespace)   # no source file: numba has no cache place
    with pytest.raises(RuntimeError, match="no locator"):
        __import__("numba").njit(cache=True)(namespace["twice"])
    assert loops._compiled(namespace["twice"])(21) == 42


@pytest.mark.parametrize("zero_first", [True, False])
def test_csr_product_sums_in_scipys_order(zero_first):
    # rows of 0..11 entries (every remainder of the four-entry passes), values of mixed
    # magnitudes, so that another order of the additions would round differently
    import scipy.sparse as sp
    from gpusnn.backends.numpy import loops
    rng = np.random.default_rng(5)
    lengths = np.arange(12).repeat(3)
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    cols = rng.integers(0, 50, indptr[-1]).astype(np.int32)
    vals = (rng.standard_normal(indptr[-1]) * 10.0 ** rng.integers(-3, 4, indptr[-1])).astype(np.float32)
    X = (rng.standard_normal((50, 37)) * 10.0 ** rng.integers(-3, 4, (50, 37))).astype(np.float32)
    start = rng.standard_normal((lengths.size, 37)).astype(np.float32)
    out = start.copy()
    loops.csr_times_into(indptr, cols, vals, X, out, zero_first)
    A = sp.csr_matrix((vals, cols, indptr), shape=(lengths.size, 50))
    want = A @ X if zero_first else start + A @ X          # scipy: each row from 0, entry by entry
    if zero_first:
        np.testing.assert_array_equal(out, want)
    else:   # out[r] + a1 x1 + ...: the running sum starts at out[r] (not scipy's 0), checked by hand
        for r in range(lengths.size):
            acc = start[r].copy()
            for e in range(indptr[r], indptr[r + 1]):
                acc += vals[e] * X[cols[e]]
            np.testing.assert_array_equal(out[r], acc)


def test_blocks_cover_every_row_once_within_the_chunk(monkeypatch):
    monkeypatch.setattr(ck, "CHUNK_ELEMENTS", 3 * 10 * 4)       # 3 samples of T = 4, width 10
    T = 4
    blocks = ck.plan_blocks(2, 9, T, 10)
    assert max(b.b1 - b.b0 for b in blocks) <= 3                # the chunk holds 3 samples
    assert len(blocks) % ck.MIN_BLOCKS == 0                      # threads share them evenly
    assert max(b.b1 - b.b0 for b in blocks) - min(b.b1 - b.b0 for b in blocks) <= 1
    rows = np.concatenate([np.arange(*b.rows(T)) for b in blocks])
    np.testing.assert_array_equal(rows, np.arange(2 * T, 9 * T))
    assert all((b.b1 - b.b0) * (b.t1 - b.t0) * 10 <= ck.CHUNK_ELEMENTS for b in blocks)
    long = ck.plan_blocks(0, 2, 100, 10)                       # one sample's window exceeds the chunk
    assert all(b.b1 - b.b0 == 1 and (b.t1 - b.t0) * 10 <= ck.CHUNK_ELEMENTS for b in long)
    np.testing.assert_array_equal(np.concatenate([np.arange(*b.rows(100)) for b in long]), np.arange(200))


def test_default_threads_follow_the_cpus_and_the_blas_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    cpus = ck.default_threads()
    assert cpus >= 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert ck.default_threads() == 1 and NumpyBackend().threads == 1
    assert NumpyBackend(threads=3).threads == 3


@pytest.mark.parametrize("dtype", [np.int64, np.uint16])
def test_forward_and_gradient_take_ids_of_any_integer_type(dtype):
    # the CSR rows go to scipy's kernels directly, which take int32 / int64 indices only
    spikes, weights, rng = workload(9)
    other = SpikeTensor(spikes.indptr, spikes.ids.astype(dtype), spikes.n_samples, spikes.n_steps, spikes.n_inputs)
    for mode in ("event", "dense"):
        want = ck.forward(weights, spikes, THETA, mode)
        got = ck.forward(weights, other, THETA, mode)
        for a, b in zip(want, got):
            assert_same_records(a, b)
    delta = rng.standard_normal(want[0].counts.shape).astype(np.float32)
    np.testing.assert_array_equal(ck.weight_gradient(other, want[0], delta, THETA),
                                  ck.weight_gradient(spikes, want[0], delta, THETA))


@pytest.mark.parametrize("threads", [1, 2])
def test_gradient_from_the_forwards_kept_dense_input_is_the_same(chunk, threads, monkeypatch):
    monkeypatch.setattr(ck, "PARALLEL_WORK", 0)
    # the forward keeps its dense counts per block; the gradient turns them into suffix sums
    # in place on the forward's blocks instead of its own: the same G bit for bit
    spikes, weights, rng = workload(11, B=6, T=9, density=0.4, repeats=True)
    kept = ck.KeptDense()
    records = ck.forward(weights, spikes, THETA, "dense", threads, keep_dense=kept)
    assert kept.blocks and all(X.shape[1] == spikes.n_inputs + ck.PAD for X in kept.blocks.values())
    for a, b in zip(ck.forward(weights, spikes, THETA, "dense", threads), records):
        assert_same_records(a, b)
    delta = rng.standard_normal(records[0].counts.shape).astype(np.float32)
    delta[:, ::3] = 0                                   # terms with a = 0 are skipped
    want = ck.weight_gradient(spikes, records[0], delta, THETA, threads=threads)
    got = ck.weight_gradient(spikes, records[0], delta, THETA, threads=threads, dense_input=kept)
    np.testing.assert_array_equal(got, want)
    assert not kept.blocks                              # consumed
    np.testing.assert_array_equal(want, ref.weight_gradient(spikes.coalesce(), records[0], delta, THETA))


def test_suffix_counts_go_ahead_in_training_not_in_predictions(monkeypatch):
    monkeypatch.setattr(ck, "PARALLEL_WORK", 0)
    spikes, weights, rng = workload(14, density=0.4)
    labels = rng.integers(0, weights[-1].shape[1], spikes.n_samples)
    backend = NumpyBackend(mode="dense", threads=2)
    records = backend.forward(weights, spikes, THETA)             # the first forward: as in training
    assert backend._kept.suffix is not None
    _, _, grads = backend.gradients(weights, spikes, records, labels, spikes.n_steps, THETA, MethodConfig())
    want = ref.weight_gradient(spikes.coalesce(), records[0], ref.backward_deltas(
        weights, records, ref.loss_and_delta(ref.readout(records[-1].counts, records[-1].u_final, THETA,
                                                         spikes.n_steps), labels, MethodConfig(),
                                             spikes.n_steps)[1], THETA, spikes.n_steps)[0], THETA)
    np.testing.assert_array_equal(grads[0], want)                 # the suffix counts made ahead
    backend.forward(weights, spikes, THETA)                       # kept, never used by a gradient ...
    backend.forward(weights, spikes, THETA)                       # ... so this is a run of predictions
    assert backend._kept.suffix is None and backend._kept.blocks


def test_backend_keeps_the_dense_input_only_for_the_same_batch():
    spikes, weights, rng = workload(12, density=0.4)
    backend = NumpyBackend(mode="dense", threads=1)
    labels = rng.integers(0, weights[-1].shape[1], spikes.n_samples)
    records = backend.forward(weights, spikes, THETA)
    assert backend._kept_for is spikes and backend._kept.blocks
    _, _, grads = backend.gradients(weights, spikes, records, labels, spikes.n_steps, THETA, MethodConfig())
    assert backend._kept_for is None and not backend._kept.blocks
    # another tensor with the same content: nothing kept applies, the gradient is built afresh
    backend.forward(weights, spikes, THETA)
    copy = spikes.select(np.arange(spikes.n_samples))
    _, _, again = backend.gradients(weights, copy, records, labels, spikes.n_steps, THETA, MethodConfig())
    for g, h in zip(grads, again):
        np.testing.assert_array_equal(g, h)


@pytest.mark.parametrize("threads", [1, 2])
def test_staged_dense_counts_give_the_same_step(chunk, threads, monkeypatch):
    # stage() makes the first layer's dense counts ahead (the read-ahead thread); the
    # forward uses them and the gradient turns them into its suffix counts: the same
    # records and gradients bit for bit as without staging
    monkeypatch.setattr(ck, "PARALLEL_WORK", 0)
    spikes, weights, rng = workload(15, B=6, T=9, density=0.4, repeats=True)
    labels = rng.integers(0, weights[-1].shape[1], spikes.n_samples)
    plain = NumpyBackend(mode="dense", threads=threads)
    want_records = plain.forward(weights, spikes, THETA)
    want = plain.gradients(weights, spikes, want_records, labels, spikes.n_steps, THETA, MethodConfig())

    backend = NumpyBackend(mode="dense", threads=threads)
    staged = backend.stage(spikes)
    dense = backend._staged[id(staged)][1]
    np.testing.assert_array_equal(dense[:, :spikes.n_inputs].reshape(spikes.n_samples, spikes.n_steps, -1),
                                  spikes.to_dense())          # the counts themselves, independently
    assert not dense[:, spikes.n_inputs:].any()
    records = backend.forward(weights, staged, THETA)
    assert id(staged) not in backend._staged                   # used once
    for a, b in zip(want_records, records):
        assert_same_records(a, b)
    got = backend.gradients(weights, staged, records, labels, staged.n_steps, THETA, MethodConfig())
    for g, h in zip(want[2], got[2]):
        np.testing.assert_array_equal(g, h)


def test_staged_first_layer_makes_its_suffix_counts_in_its_blocks(monkeypatch):
    # with threads > 1 the first layer's blocks turn staged counts into the gradient's suffix
    # counts right after their products: row t (0-based) holds S_b(t), the counts of steps
    # t+1..T (1-based), i.e. of rows t..T-1, checked against to_dense
    monkeypatch.setattr(ck, "PARALLEL_WORK", 0)
    spikes, weights, _ = workload(19, B=6, T=9, density=0.4, repeats=True)
    backend = NumpyBackend(mode="dense", threads=2)
    backend.forward(weights, backend.stage(spikes), THETA)
    kept = backend._kept
    assert kept.suffix is True and len(kept.blocks) == ck.MIN_BLOCKS     # made by the blocks, no pool task
    S = np.concatenate([kept.blocks[b] for b in kept.ordered()]).reshape(spikes.n_samples, spikes.n_steps, -1)
    counts = spikes.to_dense().astype(np.float32)
    np.testing.assert_array_equal(S[:, :, :spikes.n_inputs], np.cumsum(counts[:, ::-1], axis=1)[:, ::-1])
    assert not S[:, :, spikes.n_inputs:].any()


@pytest.mark.parametrize("threads", [1, 2])
def test_stage_waits_while_a_first_layer_runs_on_staged_counts(threads, monkeypatch):
    # the read-ahead thread's stage() of the next batch yields the cores to a first layer
    # running on staged counts (threads > 1 only) and goes on once that layer is done
    import threading
    from gpusnn.backends.numpy import backend as nb
    monkeypatch.setattr(ck, "PARALLEL_WORK", 0)
    monkeypatch.setattr(nb, "YIELD_S", 30.0)            # the wait's bound out of the way: the layer ends it
    spikes, weights, _ = workload(21, B=6, T=9, density=0.4)
    backend = NumpyBackend(mode="dense", threads=threads)
    batch, later = backend.stage(spikes), spikes.select(np.arange(spikes.n_samples))
    real, seen = ck.layer_forward, {}

    def first_layer_with_a_read_ahead(W, *args, **kwargs):
        if not seen:                            # the first layer: the read-ahead thread stages meanwhile
            seen["reader"] = reader = threading.Thread(target=backend.stage, args=(later,))
            reader.start()
            reader.join(1.0)                    # ample for this tiny batch, unless stage() waits
            seen["done_during_first"] = not reader.is_alive()
        return real(W, *args, **kwargs)
    monkeypatch.setattr(ck, "layer_forward", first_layer_with_a_read_ahead)
    backend.forward(weights, batch, THETA)
    seen["reader"].join(5)
    assert not seen["reader"].is_alive() and len(backend._staged) == 1     # staged all the same, afterwards
    assert seen["done_during_first"] == (threads == 1)


def test_a_failing_first_layer_does_not_hold_up_the_read_ahead(monkeypatch):
    spikes, weights, _ = workload(22, B=6, T=9, density=0.4)
    backend = NumpyBackend(mode="dense", threads=2)
    batch = backend.stage(spikes)

    def fail(*args, **kwargs):
        raise MemoryError("no room")
    monkeypatch.setattr(ck, "layer_forward", fail)
    with pytest.raises(MemoryError):
        backend.forward(weights, batch, THETA)
    assert backend._cores_free.is_set()                        # stage() goes on at once


def test_stage_holds_dense_counts_only_for_dense_input_and_boundedly():
    from gpusnn.backends.numpy import backend as nb
    spikes, weights, _ = workload(16, density=0.4)
    backend = NumpyBackend(mode="auto", threads=1)
    sparse, _, _ = workload(17, density=0.02)
    backend.stage(sparse)                                      # event-driven: nothing to make ahead
    assert not backend._staged
    batches = [backend.stage(spikes.select(np.arange(spikes.n_samples))) for _ in range(nb.STAGED + 2)]
    assert [held[0] for held in backend._staged.values()] == batches[2:]    # the oldest dropped
    records = backend.forward(weights, batches[0], THETA)                   # not held any more: made anew
    for a, b in zip(ck.forward(weights, spikes, THETA), records):
        assert_same_records(a, b)
    held = backend.stage(spikes)
    backend._staged[id(held)][1][:] = 0                        # the forward reads the staged counts, not the spikes
    assert not backend.forward(weights, held, THETA)[0].counts.any()


def test_stage_makes_nothing_ahead_above_its_size_limit(monkeypatch):
    from gpusnn.backends.numpy import backend as nb
    spikes, weights, _ = workload(18, density=0.4)
    size = spikes.n_samples * spikes.n_steps * (spikes.n_inputs + ck.PAD) * 4
    backend = NumpyBackend(mode="dense", threads=1)
    monkeypatch.setattr(nb, "STAGE_BYTES", size - 1)
    backend.stage(spikes)
    assert not backend._staged
    monkeypatch.setattr(nb, "STAGE_BYTES", size)
    backend.stage(spikes)
    assert len(backend._staged) == 1


def test_the_trainers_batches_reach_the_forward_with_their_staged_counts():
    # training.batches stages each batch in its read-ahead thread; what it yields must be the
    # very object stage() held the counts for (device_spikes keeps it), even from ids and
    # counts of other integer types (made int32 once, by stage)
    from gpusnn import training
    spikes, weights, _ = workload(20, B=12, density=0.4)
    source = SpikeTensor(spikes.indptr, spikes.ids.astype(np.int16), spikes.n_samples, spikes.n_steps,
                         spikes.n_inputs, spikes.entry_counts().astype(np.uint8))
    backend = NumpyBackend(mode="auto", threads=1)
    index_lists = [np.arange(k, k + 4) for k in range(0, 12, 4)]
    for idx, batch in training.batches(backend, source, index_lists):
        assert id(batch) in backend._staged and backend._staged[id(batch)][0] is batch
        records = backend.forward(weights, batch, THETA)
        assert id(batch) not in backend._staged
        for a, b in zip(ck.forward(weights, spikes.select(idx), THETA), records):
            assert_same_records(a, b)
