"""Event-camera data: N-MNIST, AEDAT 3.1 (DVS128 Gesture), AEDAT 2.0 (CIFAR10-DVS) readers,
event-to-frame integration against hand-computed frames, the frame cache and describe().

Real recordings come from ../shared/data (N-MNIST, other event formats); DVS128 Gesture and
CIFAR10-DVS files are written by ``data_fixtures`` in their exact native formats.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import zoo.data as zd
from zoo.data.errors import FormatError, MissingDataError
from zoo.data.events import aedat, cifar10_dvs, gesture, nmnist
from zoo.data.events.integrate import Integration, integrate
from zoo.data.events.stream import make_events

from data_fixtures import (SHARED_DATA, aedat2_bytes, aedat31_bytes, dvs128_address, nmnist_bytes,
                           polarity_packet, special_packet, write_cifar10_dvs, write_gesture,
                           write_nmnist_native)

NMNIST_SMALL = SHARED_DATA / "nmnist" / "NMNISTsmall"
EVENT_SAMPLES = SHARED_DATA / "event-samples" / "tonic"
needs_nmnist = pytest.mark.skipif(not NMNIST_SMALL.is_dir(), reason=f"real N-MNIST not at {NMNIST_SMALL}")
needs_samples = pytest.mark.skipif(not EVENT_SAMPLES.is_dir(), reason=f"event samples not at {EVENT_SAMPLES}")


def events(rows):
    """Event array from (x, y, p, t) rows."""
    x, y, p, t = (np.array(c, dtype=np.int64) for c in zip(*rows)) if rows else ([],) * 4
    return make_events(t, x, y, p)


def rows(ev):
    return [(int(e["x"]), int(e["y"]), int(e["p"]), int(e["t"])) for e in ev]


# --- integration -------------------------------------------------------------------------------
def frames_of(index, ev, shape):
    """Expected counts from a hand-written frame index per event (-1 = dropped)."""
    out = np.zeros(shape, dtype=np.int64)
    for i, (x, y, p, _) in zip(index, ev):
        if i >= 0:
            out[i, p, y, x] += 1
    return out


def test_time_window_starts_at_first_event_and_drops_the_rest():
    ev = [(0, 0, 1, 1000), (1, 0, 0, 1005), (1, 1, 1, 1010), (2, 3, 1, 1025), (3, 3, 0, 1031)]
    spec = Integration("time_window", frames=3, window_us=10)
    assert np.array_equal(integrate(events(ev), (4, 4), spec), frames_of([0, 0, 1, 2, -1], ev, (3, 2, 4, 4)))
    short = Integration("time_window", frames=5, window_us=10)
    got = integrate(events(ev[:2]), (4, 4), short)
    assert got[0].sum() == 2 and got[1:].sum() == 0  # trailing frames stay empty


def test_event_count_and_spikingjelly_bins():
    ev = [(i % 4, i // 4, i % 2, t) for i, t in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 8, 10])]
    shape = (3, 2, 4, 4)
    count = Integration("event_count", frames=3, events_per_frame=3)
    assert np.array_equal(integrate(events(ev), (4, 4), count),
                          frames_of([0, 0, 0, 1, 1, 1, 2, 2, 2, -1], ev, shape))
    # split_by='time': dt = (10 - 0) // 3 = 3; the last frame takes everything from t = 6 on
    assert np.array_equal(integrate(events(ev), (4, 4), Integration("time_bins", frames=3)),
                          frames_of([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], ev, shape))
    # split_by='number': 10 // 3 = 3 events per frame, the last one takes the remainder
    assert np.array_equal(integrate(events(ev), (4, 4), Integration("count_bins", frames=3)),
                          frames_of([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], ev, shape))
    assert np.array_equal(integrate(events(ev[:2]), (4, 4), Integration("count_bins", frames=3)),
                          frames_of([2, 2], ev[:2], shape))  # fewer events than frames
    same_time = [(0, 0, 1, 7)] * 4
    assert integrate(events(same_time), (4, 4), Integration("time_bins", frames=3))[0].sum() == 4


def spikingjelly_reference(t, split_by, frames):
    """SpikingJelly's cal_fixed_frames_number_segment_index, transcribed from its docs."""
    n = len(t)
    j_l, j_r = np.zeros(frames, int), np.zeros(frames, int)
    if split_by == "number":
        di = n // frames
        j_l = np.arange(frames) * di
        j_r = j_l + di
    else:
        dt = (t[-1] - t[0]) // frames
        for i in range(frames):
            inside = np.flatnonzero((t >= t[0] + dt * i) & (t < t[0] + dt * (i + 1)))
            j_l[i], j_r[i] = inside[0], inside[-1] + 1
    j_r[-1] = n
    return j_l, j_r


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_bins_match_spikingjelly_on_random_streams(split_by):
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(40, 200))
        t = np.sort(rng.integers(0, 5000, n))
        t[:4] = [0, 1500, 3000, 4500]  # every time bin holds an event (SpikingJelly needs that)
        t.sort()
        ev = events([(int(rng.integers(0, 8)), int(rng.integers(0, 6)), int(rng.integers(0, 2)), int(v))
                     for v in t])
        j_l, j_r = spikingjelly_reference(t, split_by, 4)
        expected = np.stack([integrate(ev[a:b], (6, 8), Integration("count_bins", frames=1))[0]
                             for a, b in zip(j_l, j_r)])
        method = "count_bins" if split_by == "number" else "time_bins"
        assert np.array_equal(integrate(ev, (6, 8), Integration(method, frames=4)), expected)


def test_downsampling_polarity_and_order():
    ev = [(127, 127, 1, 5), (76, 3, 0, 0), (4, 75, 1, 9)]
    by4 = integrate(events(ev), (128, 128), Integration("count_bins", frames=1, downsample=4))
    assert by4.shape == (1, 2, 32, 32)
    assert by4[0, 1, 31, 31] == 1 and by4[0, 0, 0, 19] == 1 and by4[0, 1, 18, 1] == 1
    mlf = integrate(events(ev), (128, 128), Integration("count_bins", frames=1, downsample=3.04))
    assert mlf.shape == (1, 2, 42, 42)
    assert mlf[0, 0, 0, 24] == 1  # 76 // 3.04 == 24 in floating point, as in the MLF script
    assert mlf[0, 1, 41, 41] == 1
    unsorted = integrate(events(ev), (128, 128), Integration("event_count", frames=3, events_per_frame=1))
    assert unsorted[0, 0, 3, 76] == 1 and unsorted[1, 1, 127, 127] == 1  # sorted by time first
    with pytest.raises(ValueError, match="outside the 128x128 sensor"):
        integrate(events([(128, 0, 0, 0)]), (128, 128), Integration("count_bins", frames=1))
    assert integrate(events([]), (4, 4), Integration("time_bins", frames=2)).sum() == 0


def test_integration_validation_and_hash():
    with pytest.raises(ValueError, match="needs a positive int window_us"):
        Integration("time_window", frames=3)
    with pytest.raises(ValueError, match="window_us does not apply"):
        Integration("count_bins", frames=3, window_us=10)
    with pytest.raises(ValueError, match="method must be one of"):
        Integration("bogus", frames=3)
    base = Integration("time_window", frames=10, window_us=10_000, downsample=3.04)
    variants = [Integration("time_window", frames=11, window_us=10_000, downsample=3.04),
                Integration("time_window", frames=10, window_us=10_001, downsample=3.04),
                Integration("time_window", frames=10, window_us=10_000, downsample=3),
                Integration("time_bins", frames=10, downsample=3.04)]
    hashes = {base.hash()} | {v.hash() for v in variants} | {base.hash("reader/2")}
    assert len(hashes) == 6 and base.hash() == Integration(**base.to_dict()).hash()


# --- N-MNIST -----------------------------------------------------------------------------------
def test_nmnist_bin_decoding_and_errors(tmp_path):
    ev = [(0, 0, 1, 0), (33, 2, 0, 70000), (5, 33, 1, 8_388_607)]  # 23-bit maximum timestamp
    path = tmp_path / "00001.bin"
    path.write_bytes(nmnist_bytes(ev))
    assert rows(nmnist.read_nmnist_bin(path)) == ev
    path.write_bytes(nmnist_bytes(ev) + b"\x01\x02\x03")
    with pytest.raises(FormatError, match=r"00001.bin at byte offset 15: truncated event: 3 trailing"):
        nmnist.read_nmnist_bin(path)
    path.write_bytes(nmnist_bytes(ev[:2] + [(34, 1, 0, 9)]))
    with pytest.raises(FormatError, match=r"at byte offset 10: event 2 has x=34, y=1, outside"):
        nmnist.read_nmnist_bin(path)


@needs_nmnist
def test_real_nmnist_recordings_and_both_layouts(tmp_path):
    first = nmnist.read_nmnist_bin(NMNIST_SMALL / "1.bs2")
    assert len(first) == 4681 and first["x"].max() == 33 and np.all(np.diff(first["t"]) >= 0)
    assert first["t"][:3].tolist() == [893, 1060, 2443] and set(first["p"].tolist()) == {0, 1}
    assert len(nmnist.read_nmnist_bin(SHARED_DATA / "nmnist" / "sample_nmnist.bin")) == 4325

    test = zd.create_dataset("nmnist", SHARED_DATA, "test", cache_dir=False)
    listed = [int(line.split()[1]) for line in (NMNIST_SMALL / "test100.txt").read_text().splitlines()[1:]]
    assert len(test) == 100 and test.labels == listed and test.labels[:4] == [7, 2, 1, 0]
    frames, label = test[0]
    assert frames.shape == (8, 2, 34, 34) and label == 7
    assert frames.sum() == len(nmnist.read_nmnist_bin(NMNIST_SMALL / "60001.bs2"))

    # The native Train/Test/<digit>/<index>.bin layout, rebuilt as SOURCE.md describes, with the
    # first listed recording of each digit (an empty digit folder is refused).
    first_of = {digit: listed.index(digit) + 1 for digit in range(10)}
    for digit, k in first_of.items():
        target = tmp_path / "NMNIST" / "Test" / str(digit) / f"{k:05d}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NMNIST_SMALL / f"{60000 + k}.bs2", target)
    native = zd.create_dataset("nmnist", tmp_path, "test", cache_dir=False)
    assert native.labels == list(range(10))
    for digit, k in first_of.items():
        assert np.array_equal(native[digit][0], test[k - 1][0])


# --- AEDAT 3.1 / DVS128 Gesture ----------------------------------------------------------------
def test_aedat31_packets(tmp_path):
    path = tmp_path / "rec.aedat"
    path.write_bytes(aedat31_bytes(
        polarity_packet([(1, 2, 1, 10), (3, 4, 0, 20), (127, 0, 1, 30)], invalid={1}, spare=2),
        special_packet(),
        polarity_packet([(5, 6, 0, 7)], overflow=1)))
    ev = aedat.read_aedat31(path, (128, 128))
    assert rows(ev) == [(1, 2, 1, 10), (127, 0, 1, 30), (5, 6, 0, (1 << 31) | 7)]
    empty = tmp_path / "empty.aedat"
    empty.write_bytes(aedat31_bytes())
    assert len(aedat.read_aedat31(empty)) == 0


def test_aedat31_errors_name_file_and_offset(tmp_path):
    gesture_header = aedat31_bytes()
    head = len(gesture_header)
    packet = polarity_packet([(1, 2, 1, 10), (3, 4, 0, 20)])
    cases = {
        "cut-header.aedat": (gesture_header + packet + packet[:12],
                             rf"at byte offset {head + len(packet)}: truncated packet header: 12 of 28"),
        "cut-events.aedat": (gesture_header + packet[:-3],
                             rf"at byte offset {head}: truncated packet: its header declares 2 events"),
        "bad-size.aedat": (gesture_header + packet[:4] + b"\x07\0\0\0" + packet[8:],
                           rf"at byte offset {head}: polarity packet with eventSize 7"),
        "bad-count.aedat": (gesture_header + packet[:20] + b"\x09\0\0\0" + packet[24:],
                            rf"at byte offset {head}: corrupt packet header .*eventNumber 9"),
        "outside.aedat": (gesture_header + polarity_packet([(1, 2, 1, 10), (128, 4, 0, 20)]),
                          rf"at byte offset {head + 28 + 8}: event 1 has x=128, y=4, outside the 128x128"),
        "no-end.aedat": (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "no '#!END-HEADER' line"),
        "compressed.aedat": (b"#!AER-DAT3.1\r\n#Format: SerializedTS\r\n#!END-HEADER\r\n", "only RAW"),
        "v2.aedat": (aedat2_bytes([]), "this is an AEDAT 2.0 file, expected AEDAT 3.1; read it with read_aedat2"),
        "text.aedat": (b"hello", "at byte offset 0: not an AEDAT file"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FormatError, match=message) as err:
            aedat.read_aedat31(tmp_path / name, (128, 128))
        assert str(err.value).startswith(str(tmp_path / name))


GESTURE_TRIALS = {
    "user01_fluorescent": ([(1, 1, 1, 100), (2, 2, 0, 150), (3, 3, 1, 199), (4, 4, 1, 200), (5, 5, 0, 260),
                            (6, 6, 1, 300), (7, 7, 0, 330)], [(1, 100, 200), (11, 250, 400)]),
    "user02_led": ([(8, 8, 1, 1000), (9, 9, 1, 1010), (10, 10, 0, 1020)], [(5, 1000, 1015)]),
    "user24_lab": ([(0, 0, 0, 5), (127, 127, 1, 50)], [(2, 0, 60)]),
}


def test_gesture_dataset_windows_and_split(tmp_path):
    write_gesture(tmp_path, GESTURE_TRIALS)
    train = zd.create_dataset("dvs128_gesture", tmp_path, "train", cache_dir=False, downsample=1,
                              frames=4, window_us=25)
    assert len(train) == 3 and train.labels == [0, 10, 4] and train.input_size == (4, 2, 128, 128)
    frames, label = train[0]  # events at t = 100, 150, 199 (t = 200 is the end, excluded)
    assert label == 0 and frames.sum() == 3
    assert frames[0, 1, 1, 1] == 1 and frames[2, 0, 2, 2] == 1 and frames[3, 1, 3, 3] == 1
    assert train[1][0].sum() == 3  # 260, 300 in frames 0 and 1; 330 is t0 + 70, frame 2
    test = zd.create_dataset("dvs128_gesture", tmp_path / "DvsGesture", "test", cache_dir=False)
    assert test.labels == [1] and test.input_size == (40, 2, 32, 32)
    assert test[0][0][0, 1, 31, 31] == 1 and test[0][0][0, 0, 0, 0] == 1
    info = json.loads(json.dumps(test.describe()))
    assert info["preset"] == "mlf" and info["integration"]["window_us"] == 30_000
    assert train.describe()["preset"] is None
    assert "trials_to_train.txt" in info["split_rule"]


def test_gesture_labels_and_split_file_errors(tmp_path):
    folder = write_gesture(tmp_path, GESTURE_TRIALS)
    csv = folder / "user02_led_labels.csv"
    csv.write_text("class,startTime_usec,endTime_usec\n5,1000,1015\n3,1020\n")
    with pytest.raises(FormatError, match=r"user02_led_labels.csv: line 3: expected 3 integer fields"):
        zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=False)
    csv.write_text("class,startTime_usec\n5,1000,1015\n")
    with pytest.raises(FormatError, match="line 1: expected the header class,startTime_usec,endTime_usec"):
        zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=False)
    csv.write_text("class,startTime_usec,endTime_usec\n12,1000,1015\n")
    with pytest.raises(FormatError, match="line 2: class must be 1..11"):
        gesture.read_labels_csv(csv)
    csv.unlink()
    with pytest.raises(MissingDataError, match=r"lists user02_led.aedat, but .*user02_led_labels.csv not found"):
        zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=False)
    (folder / "trials_to_test.txt").unlink()
    with pytest.raises(MissingDataError, match=r"(?s)DvsGesture  \(missing trials_to_test.txt\)"):
        zd.create_dataset("dvs128_gesture", tmp_path, "test", cache_dir=False)


# --- AEDAT 2.0 / CIFAR10-DVS -------------------------------------------------------------------
def test_cifar10_dvs_decoding_matches_the_dvs128_layout(tmp_path):
    # raw address: row 0, column 0, bit0 0 (ON) -> x = 127, y = 127, p = 1 (SpikingJelly's rule)
    assert rows(cifar10_dvs.decode_dvs128(np.array([0], np.uint32), np.array([5]))) == [(127, 127, 1, 5)]
    assert dvs128_address(127, 127, 1) == 0
    row3_col5_off = (3 << 8) | (5 << 1) | 1
    assert rows(cifar10_dvs.decode_dvs128(np.array([row3_col5_off], np.uint32), np.array([9]))) \
        == [(124, 122, 0, 9)]
    ev = [(0, 0, 1, 0), (127, 5, 0, 4000), (64, 100, 1, 2_000_000_000)]
    path = tmp_path / "cifar10_cat_7.aedat"
    path.write_bytes(aedat2_bytes(ev))
    assert rows(cifar10_dvs.read_cifar10_dvs(path)) == ev
    assert aedat.read_aedat2(path).header.lines[0] == "#!AER-DAT2.0"
    path.write_bytes(aedat2_bytes(ev) + b"\0\0\0\x01\0")
    with pytest.raises(FormatError, match=rf"cifar10_cat_7.aedat at byte offset {len(aedat2_bytes(ev))}: "
                                          "truncated event: 5 trailing"):
        cifar10_dvs.read_cifar10_dvs(path)


def test_cifar10_dvs_pinned_split(tmp_path):
    write_cifar10_dvs(tmp_path / "CIFAR10DVS")
    train = zd.create_dataset("cifar10_dvs", tmp_path, "train", cache_dir=False)
    test = zd.create_dataset("cifar10_dvs", tmp_path, "test", cache_dir=False)
    assert [u.files[0].name for u in train.units[:2]] == ["cifar10_airplane_3.aedat", "cifar10_airplane_150.aedat"]
    assert [u.files[0].name for u in test.units] == [f"cifar10_{c}_905.aedat" for c in zd.static.CIFAR10_CLASSES]
    assert len(train) == 20 and test.labels == list(range(10))
    tebn = zd.create_dataset("cifar10_dvs", tmp_path, "test", cache_dir=False, split_rule="tebn")
    assert [u.files[0].name for u in tebn.units][:1] == ["cifar10_airplane_3.aedat"] and len(tebn) == 10
    frames, label = test[9]
    assert frames.shape == (10, 2, 42, 42) and label == 9
    assert frames[0, 1, int(9 // 3.04), int(905 % 128 // 3.04)] == 1 and frames.sum() == 1
    info = test.describe()
    assert info["split_rule"].startswith("first900: per class, file index 0-899 train")
    assert info["integration"] == {"method": "time_window", "frames": 10, "window_us": 10_000,
                                   "events_per_frame": None, "downsample": 3.04}
    assert tebn.describe()["split_rule"].startswith("tebn")
    with pytest.raises(ValueError, match="split_rule must be one of"):
        zd.create_dataset("cifar10_dvs", tmp_path, cache_dir=False, split_rule="random")
    (tmp_path / "CIFAR10DVS" / "dog" / "dog_7.aedat").write_bytes(aedat2_bytes([]))  # short name accepted
    assert len(zd.create_dataset("cifar10_dvs", tmp_path, cache_dir=False)) == 21
    (tmp_path / "CIFAR10DVS" / "dog" / "cifar10_dog_7.aedat").write_bytes(aedat2_bytes([]))
    with pytest.raises(MissingDataError, match="index 7 also used by"):
        zd.create_dataset("cifar10_dvs", tmp_path, cache_dir=False)


@needs_samples
def test_real_event_samples_are_handled_or_refused():
    header_only = aedat.read_aedat2(EVENT_SAMPLES / "sample_aedat_header.aedat")
    assert header_only.header.version == "2.0" and header_only.header.data_offset == 599
    assert len(header_only.address) == 0
    assert "# AEChip: eu.seebetter.ini.chips.davis.Davis346red" in header_only.header.lines
    with pytest.raises(FormatError, match="Davis346red; CIFAR10-DVS decoding assumes the DVS128"):
        cifar10_dvs.read_cifar10_dvs(EVENT_SAMPLES / "sample_aedat_header.aedat")
    with pytest.raises(FormatError, match="AEDAT 2.0 file, expected AEDAT 3.1"):
        aedat.read_aedat31(EVENT_SAMPLES / "sample_aedat_header.aedat")
    for reader in (aedat.read_aedat2, aedat.read_aedat31):
        with pytest.raises(FormatError, match="sample.aedat4 at byte offset 0: this is an AEDAT 4.0 file"):
            reader(EVENT_SAMPLES / "sample.aedat4")
        with pytest.raises(FormatError, match="sample_ncars.dat at byte offset 0: not an AEDAT file"):
            reader(EVENT_SAMPLES / "sample_ncars.dat")
    with pytest.raises(FormatError, match=r"sample_stmnist.mat at byte offset \d+: (truncated|event)"):
        nmnist.read_nmnist_bin(EVENT_SAMPLES / "sample_stmnist.mat")


# --- cache -------------------------------------------------------------------------------------
def test_cache_is_reused_keyed_and_atomic(tmp_path, monkeypatch):
    write_nmnist_native(tmp_path / "data")
    cache = tmp_path / "cache"
    monkeypatch.setattr(nmnist.NMNIST, "shard_bytes", 6 * 4 * (8 * 2 * 34 * 34))  # 6 samples a shard
    first = zd.create_dataset("nmnist", tmp_path / "data", cache_dir=cache, progress=False)
    shards = sorted(first.cache.folder.glob("shard-*.npy"))
    assert len(shards) == 4 and (first.cache.folder / "meta.json").is_file()
    assert not list(first.cache.folder.glob(".*")), "temporary files left behind"
    meta = json.loads((first.cache.folder / "meta.json").read_text())
    assert meta["describe"] == first.describe() and meta["key"] == first.cache.key
    uncached = zd.create_dataset("nmnist", tmp_path / "data", cache_dir=False)
    assert all(np.array_equal(first[i][0], uncached[i][0]) for i in range(len(first)))

    calls = []
    real_reader = nmnist.read_nmnist_bin
    monkeypatch.setattr(nmnist, "read_nmnist_bin", lambda p: calls.append(p) or real_reader(p))
    again = zd.create_dataset("nmnist", tmp_path / "data", cache_dir=cache, progress=False)
    assert calls == [] and again.cache.folder == first.cache.folder
    assert np.array_equal(again[7][0], first[7][0]) and again[7][1] == first[7][1]

    shards[1].unlink()  # an interrupted run: only the missing shard is recomputed
    zd.create_dataset("nmnist", tmp_path / "data", cache_dir=cache, progress=False)
    assert len(calls) == 6 and shards[1].is_file()

    folders = {first.cache.folder}
    for params in (dict(frames=9), dict(method="time_bins"), dict(downsample=2),
                   dict(method="time_window", window_us=1000), dict(method="event_count", events_per_frame=5)):
        calls.clear()
        ds = zd.create_dataset("nmnist", tmp_path / "data", cache_dir=cache, progress=False, **params)
        assert len(calls) == 20 and ds.cache.folder not in folders, params
        folders.add(ds.cache.folder)
    test = zd.create_dataset("nmnist", tmp_path / "data", "test", cache_dir=cache, progress=False)
    assert test.cache.folder not in folders
    monkeypatch.setattr(nmnist.NMNIST, "reader_version", "nmnist-bin/2")
    assert zd.create_dataset("nmnist", tmp_path / "data", cache_dir=cache, progress=False).cache.folder \
        not in folders
    monkeypatch.undo()
    with open(tmp_path / "data" / "Train" / "3" / "00007.bin", "ab") as f:  # the source data changed
        f.write(nmnist_bytes([(1, 1, 1, 299_999)]))
    assert zd.create_dataset("nmnist", tmp_path / "data", cache_dir=cache, progress=False).cache.folder \
        not in folders


def test_cifar10_dvs_cache_key_covers_the_split_rule(tmp_path):
    write_cifar10_dvs(tmp_path / "cifar10_dvs", indices=(50,))
    first = zd.create_dataset("cifar10_dvs", tmp_path, "test", cache_dir=tmp_path / "c",
                              split_rule="tebn", progress=False)
    other = zd.create_dataset("cifar10_dvs", tmp_path, "train", cache_dir=tmp_path / "c",
                              split_rule="first900", progress=False)
    assert len(first) == len(other) == 10 and first.cache.folder != other.cache.folder
    assert np.array_equal(first[4][0], other[4][0])
    assert first.describe()["integration_hash"] == other.describe()["integration_hash"]
    with pytest.raises(MissingDataError, match="no test recordings"):
        zd.create_dataset("cifar10_dvs", tmp_path, "test", cache_dir=False)


def test_missing_event_data_and_download(tmp_path):
    with pytest.raises(MissingDataError) as err:
        zd.create_dataset("nmnist", tmp_path, cache_dir=False)
    message = str(err.value)
    assert f"{tmp_path}/NMNIST/Train  (folder does not exist)" in message
    assert f"{tmp_path}/NMNISTsmall  (folder does not exist)" in message
    assert f"{tmp_path}  (missing train1K.txt)" in message and "garrickorchard.com" in message
    with pytest.raises(ValueError, match="dvs128_gesture: download=True is not supported; get the data"):
        zd.create_dataset("dvs128_gesture", tmp_path, download=True)


def mlf_gesture_reference(t, x, y, p, start, end, frames=40, dt=30_000, ds=4):
    """The MLF authors' DVS_Gesture_preprocess.py (get_slice, then sample), transcribed."""
    import bisect
    beg, stop = bisect.bisect_left(t, start), bisect.bisect_left(t, end)
    times = t[beg:stop] - t[beg]
    keep = times < frames * dt
    out = np.zeros((frames, 2, 32, 32), np.int64)
    np.add.at(out, (times[keep] // dt, p[beg:stop][keep], y[beg:stop][keep] // ds, x[beg:stop][keep] // ds), 1)
    return out


def test_gesture_mlf_preset_matches_the_authors_preprocessing(tmp_path):
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 3_000_000, 3000))
    ev = [(int(a), int(b), int(c), int(d)) for a, b, c, d in
          zip(rng.integers(0, 128, 3000), rng.integers(0, 128, 3000), rng.integers(0, 2, 3000), t)]
    labels = [(3, 10_000, 1_500_000), (7, 1_400_000, 2_900_000)]  # overlapping, as in user22_led
    write_gesture(tmp_path, {"user05_natural": (ev, labels)})
    ds = zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=tmp_path / "cache", progress=False)
    x, y, p = (np.array([e[i] for e in ev]) for i in range(3))
    for i, (_, start, end) in enumerate(labels):
        assert np.array_equal(ds[i][0].numpy(), mlf_gesture_reference(t, x, y, p, start, end))
