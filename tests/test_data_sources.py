"""data_tools.datasets.source_kind and load: every --data source, and why a path is none."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from data_tools.datasets import SOURCES_HINT, load, source_kind
from data_tools.errors import ConfigError
from data_tools.mnist import encode_images, idx_dir_arrays
from test_resume import write_tiny_idx


def test_every_kind_of_source(tmp_path):
    idx = write_tiny_idx(tmp_path / "idx", n_train=20, n_test=10)
    gesture = tmp_path / "gesture"
    gesture.mkdir()
    (gesture / "trials_to_train.txt").write_text("")
    tonic = tmp_path / "tonic"
    (tonic / "ibmGestureTrain").mkdir(parents=True)
    store = tmp_path / "events.h5"
    with h5py.File(store, "w") as f:
        f.attrs["format"] = "gpusnn-event-store"
    assert [source_kind(str(s)) for s in ("mnist5k", "synth-gestures", idx, gesture, tonic, store)] == \
        ["mnist5k", "synth-gestures", "mnist-idx", "gesture-dir", "tonic-dir", "store"]


@pytest.mark.parametrize("name, problem", [("none", "does not exist"), ("mnist", "does not exist"),
                                           ("empty", "a directory, but not a dataset"),
                                           ("notes.txt", "a file, but not an HDF5 event store")])
def test_no_source_says_why_and_lists_the_sources(tmp_path, name, problem):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    source = name if name == "mnist" else str(tmp_path / name)
    with pytest.raises(ConfigError) as e:
        load(source, 4, 0)
    assert str(e.value).startswith(f"{source}: {problem}") and str(e.value).endswith(SOURCES_HINT)


def test_an_idx_directory_is_rate_coded_like_encode_images(tmp_path):
    idx = write_tiny_idx(tmp_path / "idx", n_train=20, n_test=10)
    a = load(str(idx), 5, 3)
    b = encode_images(f"mnist-idx:{idx}", idx_dir_arrays(idx), 5, 3)
    assert a.name == b.name and a.identity == b.identity
    np.testing.assert_array_equal(a.train.to_dense(), b.train.to_dense())
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
