"""DVS128 Gesture (Amir et al., CVPR 2017, "A Low Power, Fully Event-Based Gesture Recognition
System"): 29 users x up to 5 lighting conditions recorded with a DVS128 (128x128), 11 classes.

Native layout (the ``DvsGesture`` folder of ``DvsGesture.tar.gz``):

- ``userXX_<lighting>.aedat``: AEDAT 3.1 recordings (:func:`zoo.data.events.aedat.read_aedat31`),
  each holding all gestures of one trial;
- ``userXX_<lighting>_labels.csv``: header ``class,startTime_usec,endTime_usec``, then one row per
  gesture (class 1..11; times in the recording's microseconds);
- ``trials_to_train.txt`` / ``trials_to_test.txt``: the standard split, one ``.aedat`` name per
  line (users 1-23 train, 24-29 test).

One sample per labels row: the events with ``startTime_usec <= t < endTime_usec``, label
``class - 1``. This is what SpikingJelly and the MLF code do (1,176 train / 288 test samples
on the full data set; tonic drops some and gets 1,077 / 264).

Searched under the root: ``root``, ``root/DvsGesture``, ``root/DVS128Gesture``,
``root/dvs128_gesture``, ``root/dvs128-gesture`` and ``<those>/DvsGesture``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import FormatError, MissingDataError
from ..roots import Layout, locate
from .aedat import read_aedat31
from .base import EventFrameDataset, Unit
from .integrate import Integration

SENSOR_SIZE = (128, 128)
CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
           "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
           "arm_roll", "air_drums", "air_guitar", "other_gestures")
LABEL_FIELDS = ("class", "startTime_usec", "endTime_usec")
TRIAL_LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
FOLDERS = ("", "DvsGesture", "DVS128Gesture", "dvs128_gesture", "dvs128-gesture")


def read_labels_csv(path: str | Path) -> list[tuple[int, int, int]]:
    """Read a ``*_labels.csv``: ``(label 0..10, start_us, end_us)`` per gesture row."""
    path = Path(path)
    rows = [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    if not rows or tuple(re.split(r"[,\s]+", rows[0][1].strip())) != LABEL_FIELDS:
        raise FormatError(path, f"line 1: expected the header {','.join(LABEL_FIELDS)}, found "
                                f"{rows[0][1] if rows else 'an empty file'!r}")
    labels = []
    for number, line in rows[1:]:
        fields = re.split(r"[,\s]+", line.strip())
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise FormatError(path, f"line {number}: expected 3 integer fields "
                                    f"{','.join(LABEL_FIELDS)}, found {line!r}")
        cls, start, end = map(int, fields)
        if not 1 <= cls <= len(CLASSES) or end <= start:
            raise FormatError(path, f"line {number}: class must be 1..11 and endTime_usec > "
                                    f"startTime_usec, found {line!r}")
        labels.append((cls - 1, start, end))
    return labels


def read_trials(path: Path) -> list[str]:
    """The ``.aedat`` names listed in a trials file (blank lines ignored)."""
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    for name in names:
        if not name.endswith(".aedat"):
            raise FormatError(path, f"expected one .aedat file name per line, found {name!r}")
    return names


class DVS128Gesture(EventFrameDataset):
    """DVS128 Gesture as event frames ``[T, 2, H, W]``; see the module docstring."""

    name = "dvs128_gesture"
    classes = CLASSES
    sensor_size = SENSOR_SIZE
    reader_version = "aedat3.1/1"
    split_rule = ("trials_to_train.txt / trials_to_test.txt (users 1-23 train, 24-29 test); "
                  "one sample per labels.csv row, startTime_usec <= t < endTime_usec")
    presets = {
        # MLF (Feng et al., IJCAI 2022; authors' DVS_Gesture_preprocess.py): 40 frames of 30 ms
        # from the first event of each gesture, coordinates // 4 (128 -> 32).
        "mlf": Integration("time_window", frames=40, window_us=30_000, downsample=4),
    }
    source_url = "https://research.ibm.com/interactive/dvsgesture/"
    default_preset = "mlf"

    def _units(self, root, hint: str) -> tuple[Path, list[Unit]]:
        listing = TRIAL_LISTS[self.split]
        folders = [*FOLDERS, *(f"{f}/DvsGesture" for f in FOLDERS[2:])]
        folder, _ = locate(self.name, root, [Layout(f, (listing,)) for f in folders], hint)
        units = []
        for name in read_trials(folder / listing):
            recording, labels_csv = folder / name, folder / f"{name[:-len('.aedat')]}_labels.csv"
            missing = [str(p) for p in (recording, labels_csv) if not p.is_file()]
            if missing:
                raise MissingDataError(f"{self.name}: {folder / listing} lists {name}, but "
                                       f"{' and '.join(missing)} not found")
            rows = read_labels_csv(labels_csv)
            units.append(Unit((recording, labels_csv), tuple(r[0] for r in rows),
                              tuple((r[1], r[2]) for r in rows)))
        return folder, units

    def _load(self, unit: Unit) -> list[np.ndarray]:
        events = read_aedat31(unit.files[0], self.sensor_size)
        t = events["t"]
        return [events[(t >= start) & (t < end)] for start, end in unit.windows]
