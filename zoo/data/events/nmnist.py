"""N-MNIST: the native 40-bit ``.bin`` event files and the data set built on them.

Format (Orchard, Jayawant, Cohen, Thakor 2015, "Converting Static Image Datasets to Spiking
Neuromorphic Datasets Using Saccades", Front. Neurosci. 9:437): each event is 5 bytes,

    byte 0: x (0..33)   byte 1: y (0..33)
    bytes 2-4, big-endian 24 bits: bit 23 = polarity (1 = ON), bits 22..0 = timestamp in us.

A file's length must be a multiple of 5. The ATIS reader of the same authors also knows a
timestamp-overflow marker (y = 240); N-MNIST recordings (about 300 ms, far below the 2^23 us
range) never contain one, so any coordinate outside the 34x34 sensor is reported as corruption.
So are an empty file (it would be an all-zero sample) and a timestamp earlier than the previous
event's (the recordings are written in time order).

Layouts accepted under the root (``root``, ``root/NMNIST``, ``root/nmnist`` or ``root/N-MNIST``):

- native: ``Train/<digit>/<index>.bin`` and ``Test/<digit>/<index>.bin`` (the archives from the
  authors; 60,000 + 10,000 recordings);
- SLAYER's ``NMNISTsmall``: ``<id>.bs2`` files (the same 5-byte format) listed with their class in
  ``train1K.txt`` / ``test100.txt`` (``#sample #class`` header, then ``id<TAB>class`` lines), as in
  ``shared/data/nmnist/NMNISTsmall``.

A digit folder without recordings, a sample listed twice and an empty list are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FormatError, MissingDataError
from ..files import check_regular_file, list_files, parse_uint, read_file, text_lines
from ..roots import Layout, locate
from .base import EventFrameDataset, Unit
from .integrate import Integration
from .stream import check_events, make_events

SENSOR_SIZE = (34, 34)  # (H, W)
CLASSES = tuple("0123456789")
READER_VERSION = "nmnist-bin/1"
MAX_BYTES = 64 << 20  # a recording of about 300 ms holds a few thousand 5-byte events (~25 kB)
SLAYER_LISTS = {"train": "train1K.txt", "test": "test100.txt"}


def read_nmnist_bin(path: str | Path) -> np.ndarray:
    """Decode one N-MNIST ``.bin`` (or SLAYER ``.bs2``) file into an event array.

    Refused, with the byte offset: an empty file (it would give an all-zero sample), a length
    that is not a multiple of 5, a pixel outside the 34x34 sensor and a timestamp earlier than
    the previous event's (the recordings are written in time order; all 1,100 recordings of
    ``NMNISTsmall`` are).
    """
    path = Path(path)
    raw = np.frombuffer(read_file(path, MAX_BYTES, "N-MNIST recording"), dtype=np.uint8)
    if not len(raw):
        raise FormatError(path, "empty recording: an N-MNIST file holds at least one 5-byte event", 0)
    if len(raw) % 5:
        whole = len(raw) - len(raw) % 5
        raise FormatError(path, f"truncated event: {len(raw) % 5} trailing byte(s) of a 5-byte "
                                f"event after {whole // 5} whole events", whole)
    raw = raw.reshape(-1, 5).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    check_events(path, x, y, p, t, SENSOR_SIZE, lambda i: 5 * i, ordered=True, what="N-MNIST")
    return make_events(t, x, y, p)


def _read_slayer_list(path: Path) -> list[tuple[str, int]]:
    """``(sample id, label)`` per line of a SLAYER list (``#`` lines are comments).

    Refused: a line that is not ``<id> <class 0..9>`` with decimal ASCII fields, a sample listed
    twice (with the same or another label) and a list without samples."""
    entries, seen = [], {}
    for number, line in text_lines(path, "N-MNIST sample list"):
        if line.lstrip().startswith("#"):
            continue
        fields = line.split()
        label = parse_uint(fields[1]) if len(fields) == 2 else None
        if label is None or label >= len(CLASSES) or parse_uint(fields[0]) is None:
            raise FormatError(path, f"line {number}: expected '<sample id> <class 0..9>' "
                                    f"(decimal numbers), found {line[:120]!r}")
        if fields[0] in seen:
            raise FormatError(path, f"line {number}: sample {fields[0]} is listed again (first on "
                                    f"line {seen[fields[0]][0]} with class {seen[fields[0]][1]}, "
                                    f"here with class {label})")
        seen[fields[0]] = (number, label)
        entries.append((fields[0], label))
    if not entries:
        raise FormatError(path, "the list names no samples (a data set of 0 samples)")
    return entries


class NMNIST(EventFrameDataset):
    """N-MNIST (34x34, 10 classes) as event frames ``[T, 2, H, W]``; see the module docstring."""

    name = "nmnist"
    classes = CLASSES
    sensor_size = SENSOR_SIZE
    reader_version = READER_VERSION
    split_rule = "the recordings' own Train/Test split (SLAYER lists: train1K.txt / test100.txt)"
    presets = {
        # Our reading of the PLIF setup (Fang et al., ICCV 2021): SpikingJelly frames split by
        # event number (split_by='number') into T = 8 frames at the full 34x34 resolution.
        "plif": Integration("count_bins", frames=8),
    }
    source_url = "https://www.garrickorchard.com/datasets/n-mnist"
    default_preset = "plif"

    def _units(self, root, hint: str) -> tuple[Path, list[Unit]]:
        native = "Train" if self.split == "train" else "Test"
        layouts = [Layout(f"{parent}/{native}".lstrip("/"), CLASSES, "native")
                   for parent in ("", "NMNIST", "nmnist", "N-MNIST")]
        layouts += [Layout(parent, (SLAYER_LISTS[self.split],), "slayer")
                    for parent in ("", "NMNISTsmall", "nmnist/NMNISTsmall")]
        folder, layout = locate(self.name, root, layouts, hint)
        units = self._native_units(folder) if layout.kind == "native" else self._slayer_units(folder)
        return folder, units

    @staticmethod
    def _native_units(folder: Path) -> list[Unit]:
        """One unit per ``<digit>/*.bin``; a digit folder without recordings is refused (the class
        would be silently absent)."""
        units = []
        for label, digit in enumerate(CLASSES):
            if not (folder / digit).is_dir():
                raise FormatError(folder / digit, f"expected the folder of class {digit}, found a file")
            files = list_files(folder / digit, (".bin",))
            if not files:
                raise MissingDataError(f"{folder / digit}: no .bin recordings for class {digit}")
            units += [Unit((p,), (label,)) for p in files]
        return units

    def _slayer_units(self, folder: Path) -> list[Unit]:
        """One unit per line of the SLAYER list; every listed ``<id>.bs2`` must exist."""
        listing = folder / SLAYER_LISTS[self.split]
        units = []
        for sample, label in _read_slayer_list(listing):
            path = folder / f"{sample}.bs2"
            if not path.exists():
                raise MissingDataError(f"{path}: listed in {listing.name} but missing")
            units.append(Unit((check_regular_file(path),), (label,)))
        return units

    def _load(self, unit: Unit) -> list[np.ndarray]:
        return [read_nmnist_bin(unit.files[0])]
