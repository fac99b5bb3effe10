from dataclasses import dataclass

import numpy as np
import pytest

from gpusnn.errors import ShapeError
from data_tools.spikes import SpikeTensor, concatenate, from_coo, from_dense


def test_dense_round_trip_keeps_counts_and_order():
    rng = np.random.default_rng(11)
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


class FakeDeviceArray:
    """An array that is not NumPy's and copies to the host only through .get(), like CuPy's."""

    def __init__(self, a):
        self.a = np.ascontiguousarray(a)
        self.shape, self.ndim, self.dtype = self.a.shape, self.a.ndim, self.a.dtype
        self.flags = self.a.flags

    def __getitem__(self, k):
        return self.a[k]

    def get(self):
        return self.a.copy()


class fake_device:
    """The array module of FakeDeviceArray (asarray / ascontiguousarray as CuPy offers them)."""

    ndarray = FakeDeviceArray

    @staticmethod
    def asarray(a, dtype=None):
        if isinstance(a, FakeDeviceArray):
            return a if dtype is None or a.dtype == dtype else FakeDeviceArray(a.a.astype(dtype))
        return FakeDeviceArray(np.asarray(a, dtype))

    @staticmethod
    def ascontiguousarray(a):
        return a


def test_to_same_module_and_layout_is_the_tensor_itself():
    s = from_coo([0, 1, 1], [1, 2, 3], [2, 0, 2], n_samples=2, n_steps=3, n_inputs=4)
    assert s.indptr.dtype == np.int64 and s.ids.dtype == np.int32
    assert s.to(np) is s


def test_to_converts_dtype_and_layout_and_keeps_the_spikes():
    s = from_coo([0, 1, 1], [1, 2, 3], [2, 0, 2], n_samples=2, n_steps=3, n_inputs=4)
    wide_ids = np.repeat(s.ids.astype(np.int64), 2)[::2]           # int64 and not contiguous
    odd = SpikeTensor(s.indptr.astype(np.int32), wide_ids, 2, 3, 4)
    out = odd.to(np)
    assert out is not odd and out.indptr.dtype == np.int64 and out.ids.dtype == np.int32
    assert out.ids.flags.c_contiguous
    assert (out.n_samples, out.n_steps, out.n_inputs) == (2, 3, 4)
    np.testing.assert_array_equal(out.to_dense(), s.to_dense())


def test_to_a_device_module_and_back_is_a_round_trip():
    rng = np.random.default_rng(12)
    s = from_dense(rng.integers(0, 3, (3, 4, 6)))
    dev = s.to(fake_device)
    assert isinstance(dev.indptr, FakeDeviceArray) and isinstance(dev.ids, FakeDeviceArray)
    assert dev.to(fake_device) is dev
    host = dev.to(np)
    assert type(host.indptr) is np.ndarray and type(host.ids) is np.ndarray
    assert host.indptr.dtype == np.int64 and host.ids.dtype == np.int32
    np.testing.assert_array_equal(host.to_dense(), s.to_dense())


def test_to_moves_every_array_field_of_the_dataclass():
    """An added array field travels without to() being changed; absent (None) fields stay None."""

    @dataclass(frozen=True)
    class Tagged(SpikeTensor):
        weight: np.ndarray | None = None
        spare: np.ndarray | None = None

    s = from_coo([0, 0], [1, 2], [1, 3], n_samples=1, n_steps=2, n_inputs=4)
    t = Tagged(s.indptr, s.ids, 1, 2, 4, weight=np.array([0.5, 2.0], np.float32))
    dev = t.to(fake_device)
    assert type(dev) is Tagged and dev.spare is None
    assert isinstance(dev.weight, FakeDeviceArray) and dev.weight.dtype == np.float32
    back = dev.to(np)
    np.testing.assert_array_equal(back.weight, [0.5, 2.0])
    np.testing.assert_array_equal(back.ids, s.ids)


def test_to_carries_counts_as_int32():
    s = from_dense(np.array([[[0, 2, 1], [3, 0, 0]]]), coalesced=True)
    wide = SpikeTensor(s.indptr, s.ids, 1, 2, 3, s.counts.astype(np.int64))
    dev = wide.to(fake_device)
    assert isinstance(dev.counts, FakeDeviceArray) and dev.counts.dtype == np.int32
    back = dev.to(np)
    np.testing.assert_array_equal(back.counts, [2, 1, 3])
    np.testing.assert_array_equal(back.to_dense(), s.to_dense())


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
