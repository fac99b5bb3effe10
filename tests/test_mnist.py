"""MNIST IDX reading, rate coding and the bundled real digits."""
import gzip

import numpy as np
import pytest

from gpusnn.errors import DataFormatError
from data_tools.mnist import mnist5k_arrays, rate_code, read_idx


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    imgs = np.random.default_rng(41).integers(0, 256, (3, 4, 5)).astype(np.uint8)
    raw = idx_bytes(imgs, 0x803)
    p = tmp_path / ("x.idx.gz" if gz else "x.idx")
    p.write_bytes(gzip.compress(raw) if gz else raw)
    np.testing.assert_array_equal(read_idx(p), imgs)
    labels = np.array([7, 1, 0], np.uint8)
    (tmp_path / "y").write_bytes(idx_bytes(labels, 0x801))
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), labels)


def test_wrong_magic_names_file_and_offset(tmp_path):
    p = tmp_path / "bad.idx"
    p.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8), 0x802))
    with pytest.raises(DataFormatError, match=r"bad.idx: bad IDX magic 0x00000802 at byte offset 0"):
        read_idx(p)


def test_truncated_body_is_reported(tmp_path):
    p = tmp_path / "short.idx"
    p.write_bytes(idx_bytes(np.zeros((10, 4, 4), np.uint8), 0x803)[:-5])
    with pytest.raises(DataFormatError, match=r"short.idx: truncated IDX data"):
        read_idx(p)


def test_rate_coding_is_bernoulli_with_pixel_probability():
    img = np.array([[0, 255, 128, 64]], np.uint8)
    s = rate_code(np.repeat(img, 200, axis=0), 50, np.random.default_rng(1))
    rate = s.to_dense().mean(axis=(0, 1))
    np.testing.assert_allclose(rate, [0, 1, 128 / 255, 64 / 255], atol=0.01)
    assert s.to_dense().max() == 1


def test_rate_coding_is_deterministic_for_a_seed():
    img = np.random.default_rng(42).integers(0, 256, (5, 30)).astype(np.uint8)
    a = rate_code(img, 7, np.random.default_rng(3))
    b = rate_code(img, 7, np.random.default_rng(3))
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.indptr, b.indptr)


def test_mnist5k_split_is_4000_1000_real_digits():
    Xtr, ytr, Xte, yte = mnist5k_arrays()
    assert Xtr.shape == (4000, 784) and Xte.shape == (1000, 784)
    assert Xtr.dtype == np.uint8 and Xtr.max() == 255
    assert set(np.unique(yte)) == set(range(10))
    # the split is disjoint: no test image appears among the training images
    train_rows = {r.tobytes() for r in Xtr}
    assert sum(r.tobytes() in train_rows for r in Xte) == 0


@pytest.mark.parametrize("bad", [np.nan, -1.0, 256.0, np.inf])
def test_rate_coding_rejects_pixels_outside_0_255(bad):
    img = np.full((2, 4), 10.0)
    img[1, 2] = bad
    with pytest.raises(DataFormatError, match="pixel values must be finite and lie in 0..255"):
        rate_code(img, 5, np.random.default_rng(0))
