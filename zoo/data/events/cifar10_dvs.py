"""CIFAR10-DVS (Li, Liu, Ji, Li, Shi 2017, "CIFAR10-DVS: An Event-Stream Dataset for Object
Classification", Front. Neurosci. 11:309): 10,000 recordings (1,000 per class) of moving
CIFAR-10 images, taken with a DVS128 through jAER.

Native layout: one folder per class (``airplane/`` ... ``truck/``, the unpacked per-class zips),
holding ``cifar10_<class>_<index>.aedat`` (index 0..999; ``<class>_<index>.aedat`` is also
accepted). Searched under the root: ``root``, ``root/CIFAR10DVS``, ``root/CIFAR10-DVS``,
``root/cifar10_dvs``, ``root/cifar10-dvs`` and SpikingJelly's ``root/extract``.

Decoding: AEDAT 2.0 (:func:`zoo.data.events.aedat.read_aedat2`), DVS128 address layout
(jAER ``DVS128``): bit 0 polarity (0 = ON), bits 1-7 column, bits 8-14 row, higher bits
ignored. Following SpikingJelly (``cifar10_dvs.py``, after events-tfds PR #1, chosen so that
the images appear upright)::

    x = 127 - row,  y = 127 - column,  p = 1 - bit0        (so p = 1 is ON)

The MLF authors' script decodes ``x = 127 - column, y = row, p = bit0`` and indexes frames
``[p, x, y]``: at full resolution their frames are ours flipped left-right with the two
polarity channels swapped; after their ``// 3.04`` downsampling the column bins also differ at
the edges, because the flip happens before the binning. A file whose header names a DAVIS chip
(other address layout) is refused, and so is a recording without events.

Split: the data set has none, and frameworks disagree (random 9:1; the MLF script takes the
first 900 files per class in file-system order; TEBN/SpikingJelly use indices 0-99 as test).
The zoo pins ``split_rule="first900"``: per class, recordings with index 0-899 are train and
900-999 test, by the index in the file name. ``split_rule="tebn"`` (index 0-99 test, 100-999
train; Duan et al., NeurIPS 2022) is available for comparison with papers that use it.
A class without recordings in the split (it would be silently absent), an index outside
0..999 and two recordings with one index are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import FormatError, MissingDataError
from ..files import list_files
from ..roots import Layout, locate
from ..static import CIFAR10_CLASSES
from .aedat import read_aedat2
from .base import EventFrameDataset, Unit
from .integrate import Integration
from .stream import check_events, make_events

SENSOR_SIZE = (128, 128)
SPLIT_RULES = {
    "first900": "per class, file index 0-899 train, 900-999 test",
    "tebn": "per class, file index 100-999 train, 0-99 test (TEBN, SpikingJelly CIFAR10DVSTEBNSplit)",
}
FOLDERS = ("", "CIFAR10DVS", "CIFAR10-DVS", "cifar10_dvs", "cifar10-dvs", "extract", "CIFAR10DVS/extract")


def decode_dvs128(address: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """DVS128 jAER addresses to events, oriented as in SpikingJelly (module docstring)."""
    column = (address & 0xFE) >> 1
    row = (address & 0x7F00) >> 8
    return make_events(timestamp, 127 - row, 127 - column, 1 - (address & 1))


def read_cifar10_dvs(path: str | Path) -> np.ndarray:
    """Read one CIFAR10-DVS ``.aedat`` recording into an event array.

    Refused: a header naming a DAVIS chip (another address layout) and a recording without
    events (it would give an all-zero sample)."""
    raw = read_aedat2(path)
    for line in raw.header.lines:
        if line.startswith("# AEChip:") and "davis" in line.lower():
            raise FormatError(path, f"header names {line[len('# AEChip:'):].strip():.80}; "
                                    "CIFAR10-DVS decoding assumes the DVS128 address layout", 0)
    if not len(raw.address):
        raise FormatError(path, "empty recording: no events after the header", raw.header.data_offset)
    events = decode_dvs128(raw.address, raw.timestamp)
    check_events(Path(path), events["x"], events["y"], events["p"], events["t"], SENSOR_SIZE,
                 lambda i: raw.header.data_offset + 8 * i)
    return events


def in_split(index: int, split: str, rule: str) -> bool:
    """Whether recording ``index`` of a class belongs to ``split`` under ``rule``."""
    train = index < 900 if rule == "first900" else index >= 100
    return train == (split == "train")


def recordings_by_index(folder: Path, cls: str) -> dict[int, Path]:
    """``{index: path}`` of the ``.aedat`` recordings of class ``cls`` in ``folder``.

    Refused: a class entry that is not a folder, a recording that is not a file, a recording
    name without an index 0..999, and two recordings with one index."""
    if not folder.is_dir():
        raise FormatError(folder, f"expected the folder of class {cls!r}, found a file")
    pattern = re.compile(rf"(?:cifar10_)?{cls}_([0-9]{{1,3}})\.aedat")
    indexed: dict[int, Path] = {}
    for path in list_files(folder, (".aedat",)):
        match = pattern.fullmatch(path.name)
        if not match:
            raise MissingDataError(f"{path}: unexpected name, expected cifar10_{cls}_<index 0..999>.aedat")
        index = int(match.group(1))
        if index in indexed:
            raise MissingDataError(f"{path}: index {index} also used by {indexed[index]}")
        indexed[index] = path
    return indexed


class CIFAR10DVS(EventFrameDataset):
    """CIFAR10-DVS as event frames ``[T, 2, H, W]``; see the module docstring for the split."""

    name = "cifar10_dvs"
    classes = CIFAR10_CLASSES
    sensor_size = SENSOR_SIZE
    reader_version = "aedat2-dvs128-sj/1"
    presets = {
        # MLF (authors' DVS_CIFAR10_preprocess.py): 10 frames of 10 ms from the first event,
        # coordinates // 3.04 (128 -> 42).
        "mlf": Integration("time_window", frames=10, window_us=10_000, downsample=3.04),
    }
    source_url = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
    default_preset = "mlf"

    def __init__(self, root=None, split: str = "train", *, split_rule: str = "first900", **kwargs):
        if split_rule not in SPLIT_RULES:
            raise ValueError(f"split_rule must be one of {', '.join(SPLIT_RULES)}, got {split_rule!r}")
        self.rule = split_rule
        self.split_rule = f"{split_rule}: {SPLIT_RULES[split_rule]}"
        super().__init__(root, split, **kwargs)

    def _units(self, root, hint: str) -> tuple[Path, list[Unit]]:
        folder, _ = locate(self.name, root, [Layout(f, CIFAR10_CLASSES) for f in FOLDERS], hint)
        units = []
        for label, cls in enumerate(CIFAR10_CLASSES):
            indexed = recordings_by_index(folder / cls, cls)
            chosen = [i for i in sorted(indexed) if in_split(i, self.split, self.rule)]
            if not chosen:  # the class would be silently absent
                raise MissingDataError(f"{folder / cls}: no {self.split} recordings of class {cls!r} "
                                       f"(split rule {self.rule}: {SPLIT_RULES[self.rule]})")
            units += [Unit((indexed[i],), (label,)) for i in chosen]
        return folder, units

    def _load(self, unit: Unit) -> list[np.ndarray]:
        return [read_cifar10_dvs(unit.files[0])]
