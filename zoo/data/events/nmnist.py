"""N-MNIST: the native 40-bit ``.bin`` event files and the data set built on them.

Format (Orchard, Jayawant, Cohen, Thakor 2015, "Converting Static Image Datasets to Spiking
Neuromorphic Datasets Using Saccades", Front. Neurosci. 9:437): each event is 5 bytes,

    byte 0: x (0..33)   byte 1: y (0..33)
    bytes 2-4, big-endian 24 bits: bit 23 = polarity (1 = ON), bits 22..0 = timestamp in us.

A file's length must be a multiple of 5. The ATIS reader of the same authors also knows a
timestamp-overflow marker (y = 240); N-MNIST recordings (about 300 ms, far below the 2^23 us
range) never contain one, so any coordinate outside the 34x34 sensor is reported as corruption.

Layouts accepted under the root (``root``, ``root/NMNIST``, ``root/nmnist`` or ``root/N-MNIST``):

- native: ``Train/<digit>/<index>.bin`` and ``Test/<digit>/<index>.bin`` (the archives from the
  authors; 60,000 + 10,000 recordings);
- SLAYER's ``NMNISTsmall``: ``<id>.bs2`` files (the same 5-byte format) listed with their class in
  ``train1K.txt`` / ``test100.txt`` (``#sample #class`` header, then ``id<TAB>class`` lines), as in
  ``shared/data/nmnist/NMNISTsmall``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FormatError, MissingDataError
from ..roots import Layout, locate
from .base import EventFrameDataset, Unit
from .integrate import Integration
from .stream import make_events

SENSOR_SIZE = (34, 34)  # (H, W)
CLASSES = tuple("0123456789")
READER_VERSION = "nmnist-bin/1"
SLAYER_LISTS = {"train": "train1K.txt", "test": "test100.txt"}


def read_nmnist_bin(path: str | Path) -> np.ndarray:
    """Decode one N-MNIST ``.bin`` (or SLAYER ``.bs2``) file into an event array."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) % 5:
        whole = len(raw) - len(raw) % 5
        raise FormatError(path, f"truncated event: {len(raw) % 5} trailing byte(s) of a 5-byte "
                                f"event after {whole // 5} whole events", whole)
    raw = raw.reshape(-1, 5).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    outside = np.flatnonzero((x >= SENSOR_SIZE[1]) | (y >= SENSOR_SIZE[0]))
    if outside.size:
        i = outside[0]
        raise FormatError(path, f"event {i} has x={x[i]}, y={y[i]}, outside the 34x34 N-MNIST sensor",
                          5 * int(i))
    p = raw[:, 2] >> 7
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return make_events(t, x, y, p)


def _read_slayer_list(path: Path) -> list[tuple[str, int]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) >= len(CLASSES):
            raise FormatError(path, f"line {number}: expected '<id> <class 0..9>', found {line!r}")
        entries.append((fields[0], int(fields[1])))
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
        if layout.kind == "native":
            units = [Unit((p,), (label,)) for label, digit in enumerate(CLASSES)
                     for p in sorted((folder / digit).glob("*.bin"))]
        else:
            units = []
            for sample, label in _read_slayer_list(folder / SLAYER_LISTS[self.split]):
                path = folder / f"{sample}.bs2"
                if not path.is_file():
                    raise MissingDataError(f"{path}: listed in {SLAYER_LISTS[self.split]} but missing")
                units.append(Unit((path,), (label,)))
        if not units:
            raise MissingDataError(f"{self.name}: no recordings found in {folder}")
        return folder, units

    def _load(self, unit: Unit) -> list[np.ndarray]:
        return [read_nmnist_bin(unit.files[0])]
