"""DVS Gesture and tonic layouts, the event store, the encoder convention and load_dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_tools.aedat3 import write_aedat3
from data_tools.datasets import load_dataset
from data_tools.encode import encode
from data_tools.event_store import EventStore, load_store, write_store
from data_tools.events import make_events
from data_tools.gesture_layout import load_gesture_dir, parse_labels
from data_tools.samples import from_samples
from data_tools.tonic_layout import load_tonic_dir, write_tonic_npy
from gpusnn.errors import ConfigError, DataFormatError

DATA = Path(__file__).parent / "data"


def test_real_labels_file_parses():
    rows = parse_labels(DATA / "dvsgesture_user01_natural_labels.csv")
    assert rows.size == 12 and list(rows["cls"][:5]) == [1, 2, 3, 5, 4] and (rows["cls"] == 8).sum() == 2
    assert rows["start"][0] == 53036986 and rows["end"][-1] == 177991967


def make_dir(tmp_path, labels_text="class,startTime_usec,endTime_usec\n3,1100,1300\n1,1000,1200\n3,1400,1500\n"):
    """One train trial with unsorted, repeated and overlapping windows; one test trial."""
    tmp_path.mkdir(exist_ok=True)
    t = np.arange(1000, 1600, 10)
    ev = make_events(t % 128, (t // 10) % 128, t % 20 == 0, t)
    for name in ("user01_led", "user24_natural"):
        write_aedat3(tmp_path / f"{name}.aedat", ev, packet_events=7)
        (tmp_path / f"{name}_labels.csv").write_text(labels_text)
    (tmp_path / "trials_to_train.txt").write_text("user01_led.aedat\n")
    (tmp_path / "trials_to_test.txt").write_text("user24_natural.aedat\n\n")
    return ev


def test_gesture_windows_repeats_overlaps_and_split(tmp_path):
    make_dir(tmp_path)
    s = load_gesture_dir(tmp_path, progress=False)
    assert list(s.labels) == [0, 2, 2] * 2 and list(s.train) == [True] * 3 + [False] * 3
    assert list(s.users) == [1, 1, 1, 24, 24, 24] and s.lighting[3] == "natural"
    first, second = s.sample(0), s.sample(1)                    # [1000, 1200) and [1100, 1300) overlap
    np.testing.assert_array_equal(first["t"], np.arange(0, 200, 10))
    np.testing.assert_array_equal(second["t"], np.arange(0, 200, 10))
    assert s.sample(2)["t"].max() == 90 and list(s.durations[:3]) == [200, 200, 100]
    assert len(load_gesture_dir(tmp_path, counting="first", progress=False)) == 4


@pytest.mark.parametrize("text,needle", [
    ("class,start,end\n1,1,2\n", "expected header"),
    ("class,startTime_usec,endTime_usec\n1,1000\n", "byte offset 34: expected 3 integer columns"),
    ("class,startTime_usec,endTime_usec\n12,1000,1100\n", "class 12"),
    ("class,startTime_usec,endTime_usec\n1,1100,1000\n", "start < end"),
    ("class,startTime_usec,endTime_usec\n1,5000,6000\n", "outside the recording"),
])
def test_bad_labels(tmp_path, text, needle):
    make_dir(tmp_path, text)
    with pytest.raises(DataFormatError, match=needle) as exc:
        load_gesture_dir(tmp_path, progress=False)
    assert "_labels.csv" in str(exc.value)


def test_tonic_layout(tmp_path):
    ev = make_events([1, 2, 3], [4, 5, 6], [1, 0, 1], [2000, 3000, 5000])
    write_tonic_npy(tmp_path / "ibmGestureTrain" / "user02_led" / "4.npy", ev)
    write_tonic_npy(tmp_path / "ibmGestureTest" / "user25_lab" / "10.npy", ev)
    s = load_tonic_dir(tmp_path)
    assert list(s.labels) == [4, 10] and list(s.train) == [True, False] and list(s.users) == [2, 25]
    np.testing.assert_array_equal(s.sample(0)["t"], [0, 1000, 3000])
    assert s.durations[0] == 3001


def test_event_store_round_trip(tmp_path):
    make_dir(tmp_path)
    s = load_gesture_dir(tmp_path, progress=False)
    write_store(tmp_path / "e.h5", s)
    back = load_store(tmp_path / "e.h5")
    np.testing.assert_array_equal(back.events, s.events)
    for name in ("offsets", "labels", "durations", "window_start", "users", "lighting", "train", "trial"):
        np.testing.assert_array_equal(getattr(back, name), getattr(s, name))
    with EventStore(tmp_path / "e.h5") as store:
        np.testing.assert_array_equal(store.batch([2, 0])[0], s.sample(2))
    with pytest.raises(DataFormatError):
        EventStore(tmp_path / "user01_led.aedat")


def test_encoding_convention():
    ev = make_events([0, 5, 127, 9, 9], [0, 7, 127, 2, 2], [0, 1, 1, 0, 0], [0, 499, 999, 100, 150])
    s = from_samples([ev[:3], ev[3:]], labels=[0, 1], durations=[1000, 1000], window_start=[0, 0], users=[1, 1],
                     lighting=["a", "a"], train=[True, True], trial=["a", "a"], sensor_size=(128, 128, 2),
                     counting_rule="rows", source="test")
    st = encode(s, 4)
    b, step, ids = st.to_coo()
    # id = (p * 32 + y // 4) * 32 + x // 4; bin = (t * 4) // 1000
    assert st.n_inputs == 2048
    assert list(zip(b, step, ids)) == [(0, 1, 0), (0, 2, (32 + 1) * 32 + 1), (0, 4, (32 + 31) * 32 + 31), (1, 1, 2)]
    assert encode(s, 4, downsample=128).n_inputs == 2          # one pixel per polarity is still an input
    with pytest.raises(ConfigError, match="downsample 129 \\(--downsample\\) leaves no input lines of the 128 x 128"):
        encode(s, 4, downsample=129)
    counted = encode(s, 4, mode="count")                       # repeats kept, coalesced into counts
    assert (counted.nnz, counted.n_spikes()) == (4, 5)
    np.testing.assert_array_equal(counted.ids, st.ids)
    np.testing.assert_array_equal(counted.counts, [1, 1, 1, 2])
    _, step_c, _ = encode(s, 4, binning="count").to_coo()
    assert list(step_c) == [1, 2, 3, 1, 3]                                    # (k * T) // N


def test_load_dataset_from_directory_and_store(tmp_path):
    make_dir(tmp_path / "g")
    ds = load_dataset(str(tmp_path / "g"), n_steps=5, cache_dir=tmp_path / "cache", progress=False)
    assert ds.train.n_samples == 3 and ds.test.n_samples == 3 and ds.n_classes == 11
    assert ds.train.n_inputs == 2048 and ds.train_labels.dtype == np.int64 and len(ds.class_names) == 11
    assert ds.meta["counting_rule"] == "rows" and len(list((tmp_path / "cache").glob("*.h5"))) == 1
    again = load_dataset(str(next((tmp_path / "cache").glob("*.h5"))), n_steps=5, progress=False)
    assert again.identity == ds.identity
    assert load_dataset(str(tmp_path / "g"), n_steps=6, cache_dir=tmp_path / "cache", progress=False).identity != ds.identity


def test_tonic_transform_applies_before_encoding(tmp_path):
    import tonic.transforms as tt
    make_dir(tmp_path / "g")
    plain = load_dataset(str(tmp_path / "g"), n_steps=5, cache_dir=tmp_path / "cache", progress=False)
    # a tonic transform that keeps only ON events: every spike id must then lie in the ON half
    on_only = load_dataset(str(tmp_path / "g"), n_steps=5, cache_dir=tmp_path / "cache", progress=False,
                           transform=tt.Compose([lambda ev: ev[ev["p"]]]))
    assert 0 < on_only.train.nnz < plain.train.nnz
    assert on_only.train.ids.min() >= 1024 and on_only.identity != plain.identity
    np.testing.assert_array_equal(on_only.train_labels, plain.train_labels)
    denoised = load_dataset(str(tmp_path / "g"), n_steps=5, cache_dir=tmp_path / "cache", progress=False,
                            transform=tt.Denoise(filter_time=1))
    assert denoised.train.nnz < plain.train.nnz


def davis_dir(root, sensors=("davis346", "davis346")):
    """A train and a test trial recorded with the given sensors (AEDAT 3.1 `#Source` lines)."""
    root.mkdir()
    ev = make_events([4, 343, 344, 200], [8, 259, 0, 100], [0, 1, 1, 1], [1000, 1100, 1200, 1300])
    for name, sensor in zip(("user01_led", "user24_natural"), sensors):
        write_aedat3(root / f"{name}.aedat", ev, sensor=sensor)
        (root / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n2,1000,1400\n")
    (root / "trials_to_train.txt").write_text("user01_led.aedat\n")
    (root / "trials_to_test.txt").write_text("user24_natural.aedat\n")


def test_davis346_inputs_follow_the_sensor_size(tmp_path):
    """W' = W // f, H' = H // f (floor): 346 x 260 with f = 4 gives 86 x 65 x 2 = 11180 inputs;
    columns 344 and 345 (x // 4 = 86) fall outside and are dropped."""
    davis_dir(tmp_path / "d")
    s = load_gesture_dir(tmp_path / "d", progress=False)
    assert s.sensor_size == (346, 260, 2)
    st = encode(s.subset([0]), 1, mode="count")
    assert st.n_inputs == 2 * 65 * 86 == 11180
    _, _, ids = st.to_coo()
    # id = (p * 65 + y // 4) * 86 + x // 4: (4, 8, OFF) -> 2 * 86 + 1; (343, 259, ON) -> (65 + 64) * 86 + 85;
    # (344, 0, ON) dropped; (200, 100, ON) -> (65 + 25) * 86 + 50
    assert sorted(ids.tolist()) == sorted([2 * 86 + 1, (65 + 64) * 86 + 85, (65 + 25) * 86 + 50])
    ds = load_dataset(str(tmp_path / "d"), n_steps=3, cache_dir=tmp_path / "cache", progress=False)
    assert ds.meta["input_shape"] == [2, 65, 86] and ds.train.n_inputs == 11180
    assert ds.meta["sensor_size"] == [346, 260, 2]


def test_directory_mixing_sensor_sizes_is_an_error(tmp_path):
    davis_dir(tmp_path / "m", sensors=("davis346", "dvs128"))
    with pytest.raises(DataFormatError, match=r"user24_natural\.aedat: sensor dvs128 \(128 x 128\) differs"):
        load_gesture_dir(tmp_path / "m", progress=False)
    forced = load_gesture_dir(tmp_path / "m", progress=False, sensor="davis346")   # the explicit override
    assert forced.sensor_size == (346, 260, 2)
