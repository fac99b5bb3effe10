import numpy as np
import pytest

from gpusnn.errors import ShapeError
from data_tools.spikes import SpikeTensor, concatenate, from_coo, from_dense


def test_dense_round_trip_keeps_counts_and_order():
    rng = np.random.default_rng()
    d = rng.integers(0, 3, (4, 5, 7))
    s = from_dense(d)
    assert s.nnz == d.sum()
    np.testing.assert_array_equal(s.to_dense(), d)
    np.testing.assert_array_equal(s.select([3, 0, 3]).to_dense(), d[[3, 0, 3]])
    np.testing.assert_array_equal(concatenate([s, s.select([1])]).to_dense(), np.concatenate([d, d[[1]]]))


def test_coo_layout_is_sample_major_rows():
    s = from_coo([1, 0, 1], [2, 1, 2], [4, 3, 0], n_samples=2, n_steps=3, n_inputs=5)
    # rows r = b * T + t - 1: sample 0 step 1 -> row 0; sample 1 step 2 -> row 4 (ids sorted)
    np.testing.assert_array_equal(s.indptr, [0, 1, 1, 1, 1, 3, 3])
    np.testing.assert_array_equal(s.ids, [3, 0, 4])
    b, t, j = s.to_coo()
    np.testing.assert_array_equal(b, [0, 1, 1])
    np.testing.assert_array_equal(t, [1, 2, 2])


@pytest.mark.parametrize("kwargs, match", [
    (dict(sample=[0], step=[0], ids=[0]), "steps must lie in 1..3"),
    (dict(sample=[0], step=[1], ids=[9]), "input ids must lie in 0..4"),
    (dict(sample=[2], step=[1], ids=[0]), "sample indices"),
])
def test_coo_rejects_out_of_range(kwargs, match):
    with pytest.raises(ShapeError, match=match):
        from_coo(kwargs["sample"], kwargs["step"], kwargs["ids"], n_samples=2, n_steps=3, n_inputs=5)


def test_negative_or_zero_T_is_rejected():
    with pytest.raises(ShapeError, match="steps T must be positive"):
        SpikeTensor(np.zeros(1, np.int64), np.zeros(0, np.int32), 0, -3, 4)
    with pytest.raises(ShapeError, match="indptr has shape"):
        SpikeTensor(np.zeros(3, np.int64), np.zeros(0, np.int32), 1, 4, 4)


def test_coalesce_merges_repeats_into_counts_and_expand_undoes_it():
    rng = np.random.default_rng(5)
    d = rng.poisson(1.5, (3, 4, 9)) * (rng.random((3, 4, 9)) < 0.6)
    s = from_dense(d)                                      # one entry per spike
    c = s.coalesce()
    assert c.nnz == np.count_nonzero(d) and c.n_spikes() == s.nnz == d.sum()
    # ids unique and sorted within every row; counts are the multiplicities
    for r in range(c.n_samples * c.n_steps):
        row = c.ids[c.indptr[r]:c.indptr[r + 1]]
        assert np.all(np.diff(row) > 0)
    np.testing.assert_array_equal(c.counts, d[d > 0])                  # row-major = CSR order
    np.testing.assert_array_equal(c.to_dense(), d)
    assert c.coalesce() is c                               # already coalesced
    e = c.expand()
    np.testing.assert_array_equal(e.indptr, s.indptr)
    np.testing.assert_array_equal(e.ids, s.ids)
    assert e.counts is None
    direct = from_dense(d, coalesced=True)
    for f in ("indptr", "ids", "counts"):
        np.testing.assert_array_equal(getattr(direct, f), getattr(c, f))


def test_counts_survive_select_and_concatenate():
    rng = np.random.default_rng(6)
    d = rng.integers(0, 4, (4, 3, 5))
    c = from_dense(d, coalesced=True)
    np.testing.assert_array_equal(c.select([2, 0, 2]).to_dense(), d[[2, 0, 2]])
    binary = from_dense((d > 2).astype(int))               # no counts: all ones
    both = concatenate([c, binary])
    np.testing.assert_array_equal(both.to_dense(), np.concatenate([d, (d > 2).astype(int)]))


def test_counts_must_match_ids():
    with pytest.raises(ShapeError, match="counts has shape"):
        SpikeTensor(np.array([0, 2], np.int64), np.array([0, 1], np.int32), 1, 1, 4, np.ones(3, np.int32))
    with pytest.raises(ShapeError, match="counts must be integers"):
        SpikeTensor(np.array([0, 2], np.int64), np.array([0, 1], np.int32), 1, 1, 4, np.ones(2, np.float32))
