"""Writers for tiny files in the exact native formats that zoo.data reads, for the data tests.

Each writer follows the format description in the matching reader's docstring, independently of
the reader's code: IDX, CIFAR python batches (a Python 2 protocol-2 pickle, byte for byte the
structure of the official files), PNG, N-MNIST 40-bit events, AEDAT 3.1 packets and AEDAT 2.0,
and whole event data set folders (DVS128 Gesture, CIFAR10-DVS, N-MNIST) built from them.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --- IDX ---------------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    return (bytes([0, 0, codes[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(dtype).tobytes())


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist(folder: Path, n_train: int = 5, n_test: int = 3, gz: bool = True, seed: int = 0):
    """Four MNIST IDX files of random digits; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
        out[split] = (images, labels)
    return out


# --- CIFAR python batches (Python 2 cPickle, protocol 2) ---------------------------------------
def _pstr(s: str | bytes) -> bytes:  # SHORT_BINSTRING: a Python 2 str
    s = s.encode("latin1") if isinstance(s, str) else s
    return b"U" + bytes([len(s)]) + s


def _pint(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _pdtype(code: str) -> bytes:
    return (b"cnumpy\ndtype\n" + _pstr(code) + b"K\x00K\x01\x87R"
            + b"(K\x03" + _pstr("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")


def _pndarray(a: np.ndarray) -> bytes:
    """numpy's ndarray.__reduce__ as Python 2 wrote it: _reconstruct + BUILD with raw bytes."""
    raw = a.tobytes()
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _pstr("b")
            + b"\x87R(K\x01" + b"".join(_pint(d) for d in a.shape) + bytes([0x84 + a.ndim])
            + _pdtype(a.dtype.str[1:]) + b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb")


def cifar_batch_bytes(data: np.ndarray, labels, filenames, label_key: str = "labels",
                      extra: dict | None = None) -> bytes:
    """A CIFAR batch dict pickled the way the official Python 2 files are."""
    items = [(_pstr("data"), _pndarray(data)),
             (_pstr(label_key), b"](" + b"".join(_pint(int(v)) for v in labels) + b"e"),
             (_pstr("batch_label"), _pstr("testing batch 1 of 1")),
             (_pstr("filenames"), b"](" + b"".join(_pstr(f) for f in filenames) + b"e")]
    for key, values in (extra or {}).items():
        items.append((_pstr(key), b"](" + b"".join(_pint(int(v)) for v in values) + b"e"))
    return b"\x80\x02}(" + b"".join(k + v for k, v in items) + b"u."


def write_cifar_python(folder: Path, name: str, split_sizes: dict[str, int], seed: int = 0):
    """cifar-10-batches-py (name='cifar10') or cifar-100-python files; returns {split: (uint8 [N,3,32,32], labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    classes = 10 if name == "cifar10" else 100
    out = {}
    for split, n in split_sizes.items():
        files = ([f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]) \
            if name == "cifar10" else [split]
        images, labels = [], []
        for file in files:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            lab = rng.integers(0, classes, n)
            key = "labels" if name == "cifar10" else "fine_labels"
            extra = {"coarse_labels": lab // 5} if name == "cifar100" else None
            (folder / file).write_bytes(
                cifar_batch_bytes(data, lab, [f"img_{i}.png" for i in range(n)], key, extra))
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(lab)
        out[split] = (np.concatenate(images), np.concatenate(labels))
    return out


# --- images ------------------------------------------------------------------------------------
def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


# --- N-MNIST -----------------------------------------------------------------------------------
def nmnist_bytes(events) -> bytes:
    """Events (x, y, p, t) in the 5-byte N-MNIST format (Orchard et al. 2015)."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


# --- AEDAT 3.1 ---------------------------------------------------------------------------------
AEDAT31_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#Start-Time: 2017-06-01 10:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def polarity_packet(events, overflow: int = 0, invalid=(), spare: int = 0) -> bytes:
    """A libcaer polarity packet: events (x, y, p, t); indices in ``invalid`` get validity 0;
    ``spare`` unused slots beyond eventNumber (capacity = number + spare)."""
    words = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | (i not in invalid), t)
                     for i, (x, y, p, t) in enumerate(events))
    n = len(events)
    header = struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n + spare, n, n - len(invalid))
    return header + words + b"\0" * (8 * spare)


def special_packet(n: int = 2) -> bytes:
    """A packet of special events (eventType 0), which polarity readers skip."""
    return struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, n, n, n) + b"\x07\0\0\0\x10\0\0\0" * n


def aedat31_bytes(*packets: bytes, header: bytes = AEDAT31_HEADER) -> bytes:
    return header + b"".join(packets)


# --- AEDAT 2.0 / CIFAR10-DVS -------------------------------------------------------------------
AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                 b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
                 b"# Timestamps tick is 1 us\r\n# created Mon Jan 09 10:00:00 CST 2017\r\n")


def dvs128_address(x: int, y: int, p: int) -> int:
    """The DVS128 jAER address whose event the zoo decodes to (x, y, p) (SpikingJelly orientation:
    x = 127 - row, y = 127 - column, p = 1 - bit0)."""
    row, column, bit0 = 127 - x, 127 - y, 1 - p
    return (row << 8) | (column << 1) | bit0


def aedat2_bytes(events, header: bytes = AEDAT2_HEADER) -> bytes:
    """Events (x, y, p, t) as big-endian DVS128 (address, timestamp) pairs after the header."""
    return header + b"".join(struct.pack(">II", dvs128_address(x, y, p), t) for x, y, p, t in events)


# --- whole event data sets ---------------------------------------------------------------------
def write_gesture(root, trials):
    """DvsGesture folder: {name: (events, [(class 1..11, start, end)])}; users < 24 train."""
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    for name, (ev, labels) in trials.items():
        (folder / f"{name}.aedat").write_bytes(aedat31_bytes(polarity_packet(ev[:2]), special_packet(),
                                                             polarity_packet(ev[2:])))
        (folder / f"{name}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in labels))
    for split, users in (("train", range(1, 24)), ("test", range(24, 30))):
        names = [n for n in trials if int(n[4:6]) in users]
        (folder / f"trials_to_{split}.txt").write_text("".join(f"{n}.aedat\n" for n in names) + "\n")
    return folder


def write_cifar10_dvs(root, indices=(3, 150, 905)):
    """CIFAR10-DVS class folders under ``root``: two events per recording, one per index."""
    for label, cls in enumerate(CIFAR10_CLASSES):
        for i in indices:
            ev = [(label, i % 128, 1, 0), (label, 0, 0, 100_000 + i)]  # 2nd: after 10 x 10 ms
            (root / cls).mkdir(parents=True, exist_ok=True)
            (root / cls / f"cifar10_{cls}_{i}.aedat").write_bytes(aedat2_bytes(ev))


def write_nmnist_native(root, per_digit=2):
    """N-MNIST ``Train``/``Test`` digit folders under ``root``: 50 random time-ordered events per file."""
    rng = np.random.default_rng(0)
    for split in ("Train", "Test"):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for k in range(per_digit):
                t = np.sort(rng.integers(0, 300_000, 50))
                (folder / f"{digit * per_digit + k + 1:05d}.bin").write_bytes(nmnist_bytes(
                    [(int(rng.integers(0, 34)), int(rng.integers(0, 34)), int(rng.integers(0, 2)), int(v))
                     for v in t]))
