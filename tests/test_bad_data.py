"""Bad input to the data readers: every refusal is one of the zoo's own errors
(:class:`FormatError` / :class:`MissingDataError`, both :class:`DataError`) whose message names
the file and the field, line or byte offset; nothing bad is accepted silently.

One section per class of problem (stale cache, damaged cache, text, IDX, CIFAR pickles, images,
event recordings and listings), then a bounded, seeded fuzzer over every binary reader: a few
hundred mutated files (bit flips, truncations, inserted and duplicated chunks, huge header
values), each either read into a well-formed result or refused with a zoo error, under a CPU-time
limit. The fuzzer also mutates the real files under ../shared/data when they are present.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import signal
import socket
import struct
import time
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

import zoo.data as zd
from zoo.data import static
from zoo.data.errors import DataError, FormatError, MissingDataError
from zoo.data.events import aedat, cifar10_dvs, gesture, nmnist
from zoo.data.events.cache import remove_stale_temporaries
from zoo.data.events.integrate import Integration, integrate
from zoo.data.events.stream import EVENT_DTYPE, check_events, make_events
from zoo.data.files import parse_uint, read_text
from zoo.data.idx import read_idx
from zoo.data.safe_pickle import load_cifar_batch

from data_fixtures import (SHARED_DATA, aedat2_bytes, aedat31_bytes, cifar_batch_bytes, idx_bytes,
                           nmnist_bytes, polarity_packet, special_packet, write_cifar10_dvs,
                           write_cifar_python, write_gesture, write_image, write_mnist,
                           write_nmnist_native)

NMNIST_SMALL = SHARED_DATA / "nmnist" / "NMNISTsmall"


@pytest.fixture(autouse=True)
def no_env_root(monkeypatch):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)


def refused(error_class, path, *fragments):
    """``pytest.raises`` for exactly ``error_class`` (not a subclass or a raw error) whose message
    names ``path`` and contains every fragment (plain text, not regexes)."""
    return _Refusal(error_class, str(path), fragments)


class _Refusal:
    def __init__(self, error_class, path, fragments):
        self.error_class, self.path, self.fragments = error_class, path, fragments

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        assert kind is not None, f"nothing was raised; expected {self.error_class.__name__}"
        assert kind is self.error_class, f"raised {kind.__name__}: {error}"
        message = str(error)
        assert self.path in message, f"{message!r} does not name {self.path}"
        for fragment in self.fragments:
            assert fragment in message, f"{message!r} lacks {fragment!r}"
        self.message = message
        return True


def test_errors_survive_dataloader_workers(tmp_path):
    """DataLoader workers pickle the error, or re-create it from its message alone; both keep the
    class (and pickling keeps the path and offset)."""
    error = FormatError(tmp_path / "x.bin", "truncated event", 15)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is FormatError and str(again) == str(error) and again.offset == 15
    assert again.path == str(tmp_path / "x.bin") and isinstance(again, (DataError, ValueError))
    assert str(FormatError(str(error))) == str(error)
    assert issubclass(MissingDataError, DataError) and issubclass(MissingDataError, FileNotFoundError)


# --- 1. stale or damaged frame cache -----------------------------------------------------------
SIX_PER_SHARD = 6 * 4 * (8 * 2 * 34 * 34)


def nmnist_set(root, cache, **kwargs):
    return zd.create_dataset("nmnist", root, cache_dir=cache, progress=False, **kwargs)


def test_cache_key_follows_file_content_not_size(tmp_path, monkeypatch):
    monkeypatch.setattr(nmnist.NMNIST, "shard_bytes", SIX_PER_SHARD)
    write_nmnist_native(tmp_path / "data")
    first = nmnist_set(tmp_path / "data", tmp_path / "cache")
    target = tmp_path / "data" / "Train" / "0" / "00001.bin"
    old = target.read_bytes()
    new = nmnist_bytes([(33 - (i % 34), i % 34, 1, 1000 * i) for i in range(len(old) // 5)])
    assert len(new) == len(old) and new != old
    target.write_bytes(new)  # rewritten in place at the same size
    second = nmnist_set(tmp_path / "data", tmp_path / "cache")
    assert second.cache.folder != first.cache.folder
    uncached = nmnist_set(tmp_path / "data", False)
    assert np.array_equal(second[0][0], uncached[0][0]) and not np.array_equal(second[0][0], first[0][0])
    assert first.cache.payload["shard_bytes"] == SIX_PER_SHARD  # the shard layout is in the key too


def test_damaged_shards_are_rebuilt_or_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(nmnist.NMNIST, "shard_bytes", SIX_PER_SHARD)
    write_nmnist_native(tmp_path / "data")
    first = nmnist_set(tmp_path / "data", tmp_path / "cache")
    expected = [first[i][0] for i in range(len(first))]
    shards = sorted(first.cache.folder.glob("shard-*.npy"))
    intact = shards[0].read_bytes()
    damages = {
        "truncated": intact[:len(intact) // 2],
        "garbage": b"\x93NUMPY\x01\x00\xff\xff" + bytes(100),
        "not npy": b"hello",
        "wrong shape": intact.replace(b"(6, 8, 2, 34, 34)", b"(6, 8, 2, 34, 17)"),
        "object dtype": intact.replace(b"'descr': '|u1'", b"'descr': '|O' "),
        "extra bytes": intact + b"\0" * 7,
    }
    for damage, data in damages.items():
        shards[0].write_bytes(data)
        with pytest.warns(UserWarning, match=f"{shards[0].name}: damaged frame cache shard"):
            again = nmnist_set(tmp_path / "data", tmp_path / "cache")
        assert shards[0].read_bytes() == intact, damage
        assert all(np.array_equal(again[i][0], expected[i]) for i in range(len(again))), damage
    # damaged after the data set was built, before its first read: refused, naming the shard
    built = nmnist_set(tmp_path / "data", tmp_path / "cache")
    shards[1].write_bytes(shards[1].read_bytes()[:300])
    with refused(FormatError, shards[1], "damaged frame cache shard", "expected"):
        built[6]
    (first.cache.folder / "meta.json").write_text("{not json")
    with pytest.warns(UserWarning, match=f"{shards[1].name}: damaged frame cache shard"):
        nmnist_set(tmp_path / "data", tmp_path / "cache")
    assert json.loads((first.cache.folder / "meta.json").read_text())["key"] == first.cache.key


def test_temporary_files_of_killed_runs_are_removed(tmp_path):
    write_nmnist_native(tmp_path / "data")
    first = nmnist_set(tmp_path / "data", tmp_path / "cache")
    folder, host = first.cache.folder, socket.gethostname()
    dead = folder / f".shard-00000.npy~{host}~{2**22 + 12345}~abc.tmp"  # beyond pid_max: not running
    old = folder / ".shard-00001.npy.k3j2.tmp"  # the old naming, a day and more old
    live = folder / f".shard-00002.npy~{host}~{os.getpid()}~xyz.tmp"  # a running writer's
    other_host = folder / ".meta.json~elsewhere~1~q.tmp"
    for path in (dead, old, live, other_host):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    nmnist_set(tmp_path / "data", tmp_path / "cache")
    assert not dead.exists() and not old.exists() and live.exists() and other_host.exists()
    later = time.time() + 2 * 86400  # a day later, every leftover is stale
    assert sorted(remove_stale_temporaries(folder, now=later)) == sorted([live, other_host])


# --- 2. text files: encoding, numbers, listings ------------------------------------------------
def test_text_must_be_utf8_with_offset_and_line(tmp_path):
    folder = write_gesture(tmp_path, {"user01_led": ([(1, 1, 1, 10), (2, 2, 0, 20)], [(1, 0, 30)])})
    csv = folder / "user01_led_labels.csv"
    csv.write_bytes(b"class,startTime_usec,endTime_usec\n1,0,\xff30\n")
    with refused(FormatError, csv, "at byte offset 38", "line 2", "byte 0xff is not UTF-8"):
        zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=False)
    trials = folder / "trials_to_train.txt"
    trials.write_bytes(b"user01_led.aedat\nuser\xe9.aedat\n")
    with refused(FormatError, trials, "at byte offset 21", "line 2"):
        zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=False)
    listing = tmp_path / "train1K.txt"
    listing.write_bytes(b"#sample #class\n1\t5\n2\t\xc3\n")
    with refused(FormatError, listing, "line 3", "not UTF-8"):
        zd.create_dataset("nmnist", tmp_path, cache_dir=False)
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfok\n")
    assert read_text(bom) == "ok\n"
    folder_not_file = tmp_path / "dir.txt"
    folder_not_file.mkdir()
    with refused(FormatError, folder_not_file, "expected a data file, found a folder"):
        read_text(folder_not_file)


def test_numbers_must_be_ascii_decimal(tmp_path):
    assert parse_uint("42") == 42 and parse_uint("²") is None and parse_uint("١") is None
    assert parse_uint("-1") is None and parse_uint("9" * 19) is None
    folder = write_gesture(tmp_path, {"user01_led": ([(1, 1, 1, 10), (2, 2, 0, 20)], [(1, 0, 30)])})
    csv = folder / "user01_led_labels.csv"
    for row in ("1,0,3²", "1,0,30.5", "1,-5,30", "1,0,30,7"):
        csv.write_text(f"class,startTime_usec,endTime_usec\n{row}\n")
        with refused(FormatError, csv, "line 2: expected 3 integer fields", row):
            gesture.read_labels_csv(csv)
    listing = tmp_path / "test100.txt"
    listing.write_text("#sample #class\n60001\t²\n")
    with refused(FormatError, listing, "line 2: expected '<sample id> <class 0..9>'"):
        zd.create_dataset("nmnist", tmp_path, "test", cache_dir=False)
    listing.write_text("#sample #class\n../../etc/passwd\t1\n")  # ids are numbers, never paths
    with refused(FormatError, listing, "line 2"):
        zd.create_dataset("nmnist", tmp_path, "test", cache_dir=False)


def test_one_recording_with_two_labels_and_empty_listings(tmp_path):
    listing = tmp_path / "train1K.txt"
    (tmp_path / "7.bs2").write_bytes(nmnist_bytes([(1, 1, 1, 5)]))
    listing.write_text("#sample #class\n7\t1\n8\t2\n7\t3\n")
    with refused(FormatError, listing, "line 4: sample 7 is listed again", "line 2 with class 1",
                 "here with class 3"):
        zd.create_dataset("nmnist", tmp_path, cache_dir=False)
    listing.write_text("#sample #class\n\n")
    with refused(FormatError, listing, "names no samples"):
        zd.create_dataset("nmnist", tmp_path, cache_dir=False)

    folder = write_gesture(tmp_path / "g", {"user01_led": ([(1, 1, 1, 10), (2, 2, 0, 20)], [(1, 0, 30)])})
    trials = folder / "trials_to_train.txt"
    trials.write_text("\n\n")
    with refused(FormatError, trials, "lists no recordings"):
        zd.create_dataset("dvs128_gesture", tmp_path / "g", cache_dir=False)
    trials.write_text("user01_led.aedat\nuser01_led.aedat\n")
    with refused(FormatError, trials, "line 2: user01_led.aedat is listed again (first on line 1)"):
        zd.create_dataset("dvs128_gesture", tmp_path / "g", cache_dir=False)
    for name in ("../user01_led.aedat", "/etc/x.aedat", ".hidden.aedat", "a b.aedat"):
        trials.write_text(f"{name}\n")
        with refused(FormatError, trials, "line 1: expected one .aedat file name per line"):
            gesture.read_trials(trials)
    csv = folder / "user01_led_labels.csv"
    csv.write_text("class,startTime_usec,endTime_usec\n")
    with refused(FormatError, csv, "no gesture rows after the header"):
        gesture.read_labels_csv(csv)


# --- 3. IDX ------------------------------------------------------------------------------------
def test_idx_headers_are_checked_before_allocating(tmp_path):
    path = tmp_path / "bad-idx"
    path.write_bytes(bytes([0, 0, 8, 255]) + b"\xff" * 16)  # 255 dimensions
    with refused(FormatError, path, "at byte offset 3", "declares 255 dimensions, at most 32"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 40]) + bytes(160))  # 40 zero sizes: 0 bytes of data, too many dims
    with refused(FormatError, path, "40 dimensions"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">II", 2**32 - 1, 2**32 - 1) + bytes(4))
    with refused(FormatError, path, "more than the", "bytes allowed"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 1000) + bytes(12))
    with refused(FormatError, path, "at byte offset 20: IDX data truncated", "1000 elements of 4 byte(s)"):
        read_idx(path)
    gz = tmp_path / "bomb-idx.gz"  # a small gzip file that declares 100 MB
    gz.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 100_000_000) + bytes(10)))
    with refused(FormatError, gz, "at byte offset 8: IDX data truncated", "gzip file can hold"):
        read_idx(gz)
    gz.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8)) + b"extra"))
    with refused(FormatError, gz, "at byte offset 11: unexpected bytes after the 3 IDX data"):
        read_idx(gz)
    gz.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8)))[:-4] + b"\0\0\0\0")  # bad size
    with refused(FormatError, gz, "corrupt or truncated gzip stream"):
        read_idx(gz)


def test_mnist_images_and_labels_must_agree(tmp_path):
    write_mnist(tmp_path, gz=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.array([1, 2, 10], np.uint8)))
    with refused(FormatError, labels, "label 2 is 10, outside 0..9"):
        zd.load_arrays("mnist", tmp_path, "test")
    labels.write_bytes(idx_bytes(np.zeros((3, 1), np.uint8)))
    with refused(FormatError, labels, "expected 3 uint8 labels", "found uint8 3x1"):
        zd.load_arrays("mnist", tmp_path, "test")
    labels.write_bytes(idx_bytes(np.zeros(3, np.int32)))
    with refused(FormatError, labels, "expected 3 uint8 labels", "int32"):
        zd.load_arrays("mnist", tmp_path, "test")
    write_mnist(tmp_path, n_test=0, gz=False)
    with refused(FormatError, tmp_path / "t10k-images-idx3-ubyte", "declares 0 images"):
        zd.load_arrays("mnist", tmp_path, "test")
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.unlink()
    images.mkdir()
    with refused(FormatError, images, "found a folder"):
        zd.load_arrays("mnist", tmp_path, "test")


# --- 4. CIFAR pickles --------------------------------------------------------------------------
def cifar_folder(tmp_path, data: bytes):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_python(folder, "cifar10", {"test": 2})
    (folder / "test_batch").write_bytes(data)
    return folder


ARRAY_2_60 = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
              b"(K\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10\x85cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
              b"\x89U\x01xtb.")  # an array of 2^60 uint8 with one byte of data


@pytest.mark.parametrize("name, data, fragments", [
    ("array-2^60", ARRAY_2_60, ("holds 1 bytes", "needs 1152921504606846976")),
    ("array-overflow", ARRAY_2_60.replace(b"\x10\x85", b"\x10\x8a\x08" + b"\0" * 7 + b"\x10\x86"),
     ("holds 1 bytes",)),
    ("bytes8-2^60", b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"x.", ("at byte offset 2", "bytes8")),
    ("memo-2^32", b"\x80\x02}r\xff\xff\xff\xff.", ("at byte offset 3", "memo index 4294967295")),
    ("frame-2^60", b"\x80\x04\x95" + struct.pack("<Q", 2**60) + b"}.", ("at byte offset 2", "frame of")),
    ("trailing", pickle.dumps({}, 2) + b"zz", ("at byte offset 6", "2 unexpected bytes after")),
    ("no-stop", pickle.dumps({}, 2)[:-1], ("not a valid pickle",)),
    ("global", b"\x80\x02cbuiltins\neval\n.", ("refusing to load global builtins.eval",)),
    ("stack-global", b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93.", ("refusing to load global os.system",)),
    ("string-dtype", ARRAY_2_60.replace(b"U\x02u1", b"U\x02S1"), ("not a plain number type",)),
    ("list-data", b"\x80\x02}U\x04data](K\x01es.", ("'data' must be a uint8 array N x 3072",)),
])
def test_cifar_pickles_are_bounded_and_refused(tmp_path, name, data, fragments):
    path = tmp_path / name
    path.write_bytes(data)
    if name == "list-data":
        folder = cifar_folder(tmp_path, data)
        with refused(FormatError, folder / "test_batch", *fragments):
            zd.load_arrays("cifar10", tmp_path, "test")
        return
    with refused(FormatError, path, *fragments):
        load_cifar_batch(path)


@pytest.mark.parametrize("labels, fragments", [
    ([1.0, 2.0], ("'labels' must be a list of int labels",)),
    (["1", "2"], ("'labels' must be a list of int labels",)),
    ([True, False], ("'labels' must be a list of int labels",)),
    ([1], ("one label per image (2), found 1",)),
    ([1, 10], ("'labels' entry 1 is 10, outside 0..9",)),
    ("no images", ("'data' must be a uint8 array N x 3072 with N > 0, found uint8 (0, 3072)",)),
    ([-1, 0], ("'labels' entry 0 is -1, outside 0..9",)),
    (7, ("'labels' must be a list of int labels, found int",)),
    (None, ("no such field",)),
])
def test_cifar_label_fields_are_typed(tmp_path, labels, fragments):
    data = np.zeros((2, 3072), np.uint8)
    if labels == "no images":
        data, labels = data[:0], []
    batch = {"data": data, "filenames": ["a", "b"]}
    if labels is not None:
        batch["labels"] = labels
    folder = cifar_folder(tmp_path, pickle.dumps(batch, protocol=4))  # protocol 2 would store
    with refused(FormatError, folder / "test_batch", *fragments):       # b"" as builtins.bytes()
        zd.load_arrays("cifar10", tmp_path, "test")


def test_python3_pickles_of_plain_arrays_still_load(tmp_path):
    for protocol in (2, 3, 4):
        batch = {"data": np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072), "labels": [3, 4],
                 "extra": np.array([1.5, -2], ">f8")}
        folder = cifar_folder(tmp_path / str(protocol), pickle.dumps(batch, protocol=protocol))
        loaded = load_cifar_batch(folder / "test_batch")
        assert np.array_equal(loaded["data"], batch["data"]) and loaded["data"].flags.writeable
        assert loaded["extra"].dtype == np.float64 and loaded["extra"].tolist() == [1.5, -2]


# --- 5. images ---------------------------------------------------------------------------------
def png_bytes(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG signature, an RGB IHDR declaring ``width x height``, one IDAT and IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat or zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def cifar_png_folders(tmp_path):
    for cls in static.CIFAR10_CLASSES:
        write_image(tmp_path / "cifar10" / "test" / cls / "a.png", np.zeros((32, 32, 3), np.uint8))
    return tmp_path / "cifar10" / "test"


def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    folder = cifar_png_folders(tmp_path)
    bomb = folder / "cat" / "bomb.png"
    bomb.write_bytes(png_bytes(10_000, 10_000))
    with refused(FormatError, bomb, "expected a 32x32 image, found 10000x10000"):
        zd.load_arrays("cifar10", tmp_path, "test")
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 < 2 * Image.MAX_IMAGE_PIXELS
    for side, fragment in ((10_000, "100000000 pixels, more than the"),
                           (100_000, "DecompressionBombError")):
        image = tmp_path / "imagenet" / "val" / "n01440764" / f"bomb{side}.JPEG"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(png_bytes(side, side))  # ImageNet has PNGs named .JPEG
        ds = zd.create_dataset("imagenet", tmp_path, "test")
        with refused(FormatError, image, fragment):
            ds[[p for p, _ in ds.files].index(image)]
        image.unlink()


def test_image_folders_and_files_are_what_they_claim(tmp_path):
    folder = cifar_png_folders(tmp_path)
    gif = folder / "dog" / "b.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(gif, format="GIF")  # only PNG/JPEG decoders
    with refused(FormatError, gif, "cannot decode image"):
        zd.load_arrays("cifar10", tmp_path, "test")
    gif.unlink()
    (folder / "dog" / "c.png").mkdir()
    with refused(FormatError, folder / "dog" / "c.png", "expected a data file, found a folder"):
        zd.load_arrays("cifar10", tmp_path, "test")
    (folder / "dog" / "c.png").rmdir()
    (folder / "frog" / "a.png").unlink()
    with refused(MissingDataError, folder / "frog", "no image files", "class 'frog'"):
        zd.load_arrays("cifar10", tmp_path, "test")
    (folder / "frog").rmdir()
    (folder / "frog").write_bytes(b"")
    with refused(FormatError, folder / "frog", "expected the folder of class 'frog'"):
        zd.load_arrays("cifar10", tmp_path, "test")


# --- 6. event recordings and event data sets ---------------------------------------------------
def test_nmnist_recordings_must_hold_ordered_events(tmp_path):
    path = tmp_path / "00001.bin"
    path.write_bytes(b"")
    with refused(FormatError, path, "at byte offset 0: empty recording"):
        nmnist.read_nmnist_bin(path)
    path.write_bytes(nmnist_bytes([(1, 1, 1, 100), (2, 2, 0, 200), (3, 3, 1, 150)]))
    with refused(FormatError, path, "at byte offset 10: event 2 has timestamp 150 us, before event 1's 200"):
        nmnist.read_nmnist_bin(path)
    path.write_bytes(nmnist_bytes([(1, 1, 1, 100), (1, 240, 0, 200)]))  # the ATIS overflow marker
    with refused(FormatError, path, "at byte offset 5: event 1 has x=1, y=240, outside the 34x34"):
        nmnist.read_nmnist_bin(path)


def test_empty_nmnist_recording_and_class_in_a_data_set(tmp_path):
    write_nmnist_native(tmp_path, per_digit=1)
    empty = tmp_path / "Train" / "4" / "00005.bin"
    empty.write_bytes(b"")
    ds = zd.create_dataset("nmnist", tmp_path, cache_dir=False)
    with refused(FormatError, empty, "empty recording"):
        ds[4]
    with refused(FormatError, empty, "empty recording"):
        zd.create_dataset("nmnist", tmp_path, cache_dir=tmp_path / "cache", progress=False)
    empty.unlink()
    with refused(MissingDataError, tmp_path / "Train" / "4", "no .bin recordings for class 4"):
        zd.create_dataset("nmnist", tmp_path, cache_dir=False)
    (tmp_path / "Train" / "4" / "00005.bin").mkdir()
    with refused(FormatError, tmp_path / "Train" / "4" / "00005.bin", "found a folder"):
        zd.create_dataset("nmnist", tmp_path, cache_dir=False)


def test_gesture_window_after_the_recording_ends(tmp_path):
    trials = {"user01_led": ([(1, 1, 1, 100), (2, 2, 0, 150)], [(1, 100, 200)]),
              "user02_led": ([(1, 1, 1, 100), (2, 2, 0, 150), (3, 3, 1, 330)],
                             [(1, 100, 200), (4, 5_000, 6_000)])}
    folder = write_gesture(tmp_path, trials)
    ds = zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=False)
    assert ds[0][0].sum() == 2
    with refused(FormatError, folder / "user02_led_labels.csv",
                 "line 3: the window 5000..6000 us holds no events of user02_led.aedat",
                 "its events span 100..330 us"):
        ds[1]  # the unit of sample 1 (both rows of user02) is decoded at once
    with refused(FormatError, folder / "user02_led_labels.csv", "line 3"):
        zd.create_dataset("dvs128_gesture", tmp_path, cache_dir=tmp_path / "cache", progress=False)


def test_aedat31_timestamps_and_overflow(tmp_path):
    path = tmp_path / "rec.aedat"
    head = len(aedat31_bytes())
    path.write_bytes(aedat31_bytes(polarity_packet([(1, 1, 1, 10), (2, 2, 0, -5)])))
    with refused(FormatError, path, f"at byte offset {head + 28 + 8}: event 1 has a negative timestamp -5"):
        aedat.read_aedat31(path, (128, 128))
    path.write_bytes(aedat31_bytes(polarity_packet([(1, 1, 1, 10)], overflow=-1)))
    with refused(FormatError, path, f"at byte offset {head + 12}: polarity packet with a negative eventTSOverflow"):
        aedat.read_aedat31(path)


def test_cifar10_dvs_recordings_and_classes(tmp_path):
    write_cifar10_dvs(tmp_path / "CIFAR10DVS")
    empty = tmp_path / "CIFAR10DVS" / "dog" / "cifar10_dog_3.aedat"
    empty.write_bytes(aedat2_bytes([]))
    with refused(FormatError, empty, "empty recording: no events after the header"):
        cifar10_dvs.read_cifar10_dvs(empty)
    ds = zd.create_dataset("cifar10_dvs", tmp_path, cache_dir=False)
    with refused(FormatError, empty, "empty recording"):
        ds[10]
    for path in (tmp_path / "CIFAR10DVS" / "ship").glob("*_905.aedat"):
        path.unlink()
    with refused(MissingDataError, tmp_path / "CIFAR10DVS" / "ship", "no test recordings of class 'ship'"):
        zd.create_dataset("cifar10_dvs", tmp_path, "test", cache_dir=False)
    odd = tmp_path / "CIFAR10DVS" / "cat" / "cifar10_cat_1000.aedat"
    odd.write_bytes(aedat2_bytes([(1, 1, 1, 1)]))
    with refused(MissingDataError, odd, "expected cifar10_cat_<index 0..999>.aedat"):
        zd.create_dataset("cifar10_dvs", tmp_path, cache_dir=False)


def test_polarity_outside_0_1_is_refused(tmp_path):
    path = tmp_path / "rec.bin"
    p = np.array([0, 1, 2, 1])
    x = y = np.zeros(4, np.int64)
    t = np.arange(4)
    with refused(FormatError, path, "at byte offset 10: event 2 has polarity 2, expected 0 (OFF) or 1 (ON)"):
        check_events(path, x, y, p, t, (34, 34), lambda i: 5 * i)
    with refused(FormatError, path, "at byte offset 15: event 3 has x=0, y=-1, outside the 4x4 sensor"):
        check_events(path, x, np.array([0, 0, 0, -1]), p % 2, t, (4, 4), lambda i: 5 * i)
    events = make_events(t, x, y, p)
    with pytest.raises(ValueError, match=r"event 2 \(x=0, y=0, p=2\) with a polarity other than 0 or 1"):
        integrate(events, (34, 34), Integration("count_bins", frames=2))


# --- 7. the fuzzer -----------------------------------------------------------------------------
class CPUTimeExceeded(BaseException):  # not an Exception: no reader may swallow it
    pass


@contextmanager
def cpu_limit(seconds: float):
    """Raise CPUTimeExceeded when this process has used ``seconds`` of CPU inside the block (CPU
    time, not wall time, so a slow shared machine does not count as a hang)."""
    def expire(signum, frame):
        raise CPUTimeExceeded(f"more than {seconds} s of CPU")
    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 2**63 - 1)


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of ``data``: its description and the mutated bytes."""
    data = bytearray(data)
    n = len(data)
    kind = rng.integers(0, 6)
    if kind == 0 and n:
        bits = rng.integers(0, 8 * n, int(rng.integers(1, 9)))
        for b in bits:
            data[b // 8] ^= 1 << (b % 8)
        return f"flip bits {sorted(bits.tolist())}", bytes(data)
    if kind == 1:
        cut = int(rng.integers(0, n + 1))
        return f"truncate at {cut}", bytes(data[:cut])
    if kind == 2:
        at, size = int(rng.integers(0, n + 1)), int(rng.integers(1, 64))
        return f"insert {size} random bytes at {at}", bytes(data[:at] + rng.bytes(size) + data[at:])
    if kind == 3 and n:
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 256)))
        at = int(rng.integers(0, n + 1))
        return f"duplicate {a}:{b} at {at}", bytes(data[:at] + data[a:b] + data[at:])
    if kind == 4 and n >= 8:
        value, width = HUGE[int(rng.integers(0, len(HUGE)))], (4, 8)[int(rng.integers(0, 2))]
        order = "<>"[int(rng.integers(0, 2))]
        window = n if rng.integers(0, 2) else min(n, 96)  # anywhere, or in the header region
        at = int(rng.integers(0, window - width + 1)) if window >= width else 0
        packed = struct.pack(f"{order}{'I' if width == 4 else 'Q'}", value & (2 ** (8 * width) - 1))
        data[at:at + width] = packed
        return f"write {value:#x} ({order}{width}) at {at}", bytes(data)
    at, size = int(rng.integers(0, n + 1)), int(rng.integers(1, 32))
    data[at:at + size] = bytes(len(data[at:at + size]))
    return f"zero {size} bytes at {at}", bytes(data)


def well_formed_events(events, sensor=(128, 128), ordered=False):
    assert events.dtype == EVENT_DTYPE
    if len(events):
        assert 0 <= events["x"].min() and events["x"].max() < sensor[1]
        assert 0 <= events["y"].min() and events["y"].max() < sensor[0]
        assert set(np.unique(events["p"]).tolist()) <= {0, 1} and events["t"].min() >= 0
        assert not ordered or np.all(np.diff(events["t"]) >= 0)


def read_cifar_batch_folder(path):
    images, labels = zd.load_arrays("cifar10", path.parent, "test")
    assert images.dtype.is_floating_point is False and tuple(images.shape[1:]) == (3, 32, 32)
    assert len(images) == len(labels) and (len(labels) == 0 or 0 <= labels.min() <= labels.max() <= 9)


def read_nmnist(path):
    events = nmnist.read_nmnist_bin(path)
    assert len(events)
    well_formed_events(events, (34, 34), ordered=True)


def read_png(path):
    image = static._decode(path, "RGB", (32, 32))
    assert image.shape == (3, 32, 32) and image.dtype == np.uint8


def read_idx_file(path):
    array = read_idx(path, max_bytes=1 << 24)
    assert isinstance(array, np.ndarray) and array.dtype.isnative


def read_labels(path):
    for label, start, end in gesture.read_labels_csv(path):
        assert 0 <= label <= 10 and start < end


def read_trial_list(path):
    names = gesture.read_trials(path)
    assert names and all(n.endswith(".aedat") and "/" not in n for n in names)


def read_slayer(path):
    entries = nmnist._read_slayer_list(path)
    assert entries and all(0 <= label <= 9 for _, label in entries)
    assert len({sample for sample, _ in entries}) == len(entries)


def fuzz_seeds():
    """``(name, reader, valid bytes, number of mutations)`` for every reader of a binary or text
    format, from the fixture writers (and the real files when ../shared/data is present)."""
    rng = np.random.default_rng(0)
    ev = [(int(x), int(y), int(p), int(t)) for x, y, p, t in zip(
        rng.integers(0, 34, 30), rng.integers(0, 34, 30), rng.integers(0, 2, 30),
        np.sort(rng.integers(0, 300_000, 30)))]
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
    png = buffer.getvalue()
    idx = idx_bytes(rng.integers(0, 256, (3, 5, 4), dtype=np.uint8))
    seeds = [
        ("idx", "x-idx3-ubyte", read_idx_file, idx, 40),
        ("idx.gz", "x-idx3-ubyte.gz", read_idx_file, gzip.compress(idx), 25),
        ("idx.gz-inner", "x-idx3-ubyte.gz", read_idx_file, idx, 15),  # mutated, then compressed
        ("cifar", "test_batch", read_cifar_batch_folder, cifar_batch_bytes(
            rng.integers(0, 256, (2, 3072), dtype=np.uint8), [3, 9], ["a.png", "b.png"]), 60),
        ("png", "a.png", read_png, png, 40),
        ("nmnist", "00001.bin", read_nmnist, nmnist_bytes(ev), 40),
        ("aedat31", "rec.aedat", lambda p: well_formed_events(aedat.read_aedat31(p, (128, 128))),
         aedat31_bytes(polarity_packet(ev[:10], invalid={2}, spare=1), special_packet(),
                       polarity_packet(ev[10:], overflow=1)), 40),
        ("aedat2", "cifar10_cat_1.aedat",
         lambda p: well_formed_events(cifar10_dvs.read_cifar10_dvs(p)), aedat2_bytes(ev), 40),
        ("labels.csv", "user01_led_labels.csv", read_labels,
         b"class,startTime_usec,endTime_usec\n1,100,200\n11,150,400\n", 15),
        ("trials", "trials_to_train.txt", read_trial_list, b"user01_led.aedat\nuser02_lab.aedat\n", 15),
        ("slayer", "train1K.txt", read_slayer, b"#sample #class\n1\t5\n2\t0\n", 15),
    ]
    if NMNIST_SMALL.is_dir():
        seeds.append(("real nmnist", "60001.bs2", read_nmnist, (NMNIST_SMALL / "60001.bs2").read_bytes(), 15))
    real_png = SHARED_DATA / "foolbox-samples" / "cifar10_00_3.png"
    if real_png.is_file():
        seeds.append(("real png", "a.png", read_png, real_png.read_bytes(), 15))
    real_idx = SHARED_DATA / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    if real_idx.is_file():
        seeds.append(("real idx.gz", "x-idx1-ubyte.gz", read_idx_file, real_idx.read_bytes(), 10))
    return seeds


def test_fuzzed_files_are_read_or_refused_with_a_zoo_error(tmp_path):
    rng = np.random.default_rng(20240601)
    outcomes = {"read": 0, "refused": 0}
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_python(folder, "cifar10", {"test": 1})
    for name, file_name, reader, valid, count in fuzz_seeds():
        path = (folder if name == "cifar" else tmp_path) / file_name
        path.write_bytes(valid)
        with cpu_limit(10):
            reader(path)  # the seed itself is well-formed
        for case in range(count):
            what, data = mutate(valid, rng)
            if name == "idx.gz-inner":
                data = gzip.compress(data)
            path.write_bytes(data)
            context = f"{name} case {case} ({what})"
            try:
                with cpu_limit(5):
                    reader(path)
                outcomes["read"] += 1
            except DataError as err:
                assert type(err) in (FormatError, MissingDataError), f"{context}: {type(err)}"
                assert str(path) in str(err) or path.name in str(err), f"{context}: {err}"
                outcomes["refused"] += 1
            except CPUTimeExceeded:
                pytest.fail(f"{context}: the reader did not finish in 5 s of CPU")
            except AssertionError as err:
                pytest.fail(f"{context}: accepted, but the result is malformed: {err}")
            except Exception as err:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{context}: raw {type(err).__name__}: {err}")
    total = outcomes["read"] + outcomes["refused"]
    print(f"fuzzed {total} files: {outcomes}")
    assert total >= 300 and outcomes["refused"] > total // 3, outcomes


@pytest.mark.skipif(not NMNIST_SMALL.is_dir(), reason=f"real N-MNIST not at {NMNIST_SMALL}")
def test_real_nmnist_recordings_pass_every_check():
    for path in sorted(NMNIST_SMALL.glob("*.bs2")):
        nmnist.read_nmnist_bin(path)  # non-empty, inside the sensor, in time order
    entries = nmnist._read_slayer_list(NMNIST_SMALL / "train1K.txt")
    assert len(entries) == 1000 and len({s for s, _ in entries}) == 1000
