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
