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
on the full data set; tonic drops some and gets 1,077 / 264). A row whose window holds no
event (e.g. one after the end of the recording) is refused with its line, as are an empty
trials file, a name listed twice or naming a file outside the folder, and a labels file
without rows.

Searched under the root: ``root``, ``root/DvsGesture``, ``root/DVS128Gesture``,
``root/dvs128_gesture``, ``root/dvs128-gesture`` and ``<those>/DvsGesture``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import FormatError, MissingDataError
from ..files import check_regular_file, parse_uint, text_lines
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
TRIAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.aedat")


def read_labels_csv(path: str | Path) -> list[tuple[int, int, int]]:
    """Read a ``*_labels.csv``: ``(label 0..10, start_us, end_us)`` per gesture row.

    Refused, with the line: text that is not UTF-8, a missing header, a row that is not three
    decimal ASCII integers, a class outside 1..11, ``endTime_usec <= startTime_usec``, and a
    file without rows (a recording that yields no sample)."""
    path = Path(path)
    return [row for _, row in numbered_label_rows(path)]


def numbered_label_rows(path: Path) -> list[tuple[int, tuple[int, int, int]]]:
    """:func:`read_labels_csv` with the line number of each row."""
    rows = text_lines(path, "labels.csv")
    if not rows or tuple(re.split(r"[,\s]+", rows[0][1].strip())) != LABEL_FIELDS:
        raise FormatError(path, f"line {rows[0][0] if rows else 1}: expected the header "
                                f"{','.join(LABEL_FIELDS)}, found "
                                f"{rows[0][1][:120] if rows else 'an empty file'!r}")
    labels = []
    for number, line in rows[1:]:
        fields = [parse_uint(f) for f in re.split(r"[,\s]+", line.strip())]
        if len(fields) != 3 or None in fields:
            raise FormatError(path, f"line {number}: expected 3 integer fields "
                                    f"{','.join(LABEL_FIELDS)} (decimal digits), found {line[:120]!r}")
        cls, start, end = fields
        if not 1 <= cls <= len(CLASSES) or end <= start:
            raise FormatError(path, f"line {number}: class must be 1..11 and endTime_usec > "
                                    f"startTime_usec, found {line[:120]!r}")
        labels.append((number, (cls - 1, start, end)))
    if not labels:
        raise FormatError(path, "no gesture rows after the header (the recording would yield no sample)")
    return labels


def read_trials(path: Path) -> list[str]:
    """The ``.aedat`` names listed in a trials file (blank lines ignored).

    Refused, with the line: text that is not UTF-8, a name that is not a plain ``*.aedat`` file
    name in the same folder (no path separators), a name listed twice, and a file without names
    (a data set of 0 samples)."""
    names: dict[str, int] = {}
    for number, line in text_lines(path, "trials file"):
        name = line.strip()
        if not TRIAL_NAME.fullmatch(name):
            raise FormatError(path, f"line {number}: expected one .aedat file name per line "
                                    f"(letters, digits, '_', '-', '.'), found {name[:120]!r}")
        if name in names:
            raise FormatError(path, f"line {number}: {name} is listed again (first on line {names[name]})")
        names[name] = number
    if not names:
        raise FormatError(path, "the trials file lists no recordings (a data set of 0 samples)")
    return list(names)


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
            missing = [str(p) for p in (recording, labels_csv) if not p.exists()]
            if missing:
                raise MissingDataError(f"{self.name}: {folder / listing} lists {name}, but "
                                       f"{' and '.join(missing)} not found")
            rows = numbered_label_rows(check_regular_file(labels_csv))
            units.append(Unit((check_regular_file(recording), labels_csv),
                              tuple(label for _, (label, _, _) in rows),
                              tuple((start, end, number) for number, (_, start, end) in rows)))
        return folder, units

    def _load(self, unit: Unit) -> list[np.ndarray]:
        """One event array per labels row; a window holding no event (e.g. after the recording
        ends) is refused with its line, since it would be an all-zero sample."""
        recording, labels_csv = unit.files
        events = read_aedat31(recording, self.sensor_size)
        t = events["t"]
        samples = []
        for start, end, number in unit.windows:
            sample = events[(t >= start) & (t < end)]
            if not len(sample):
                span = f"its events span {t.min()}..{t.max()} us" if len(t) else "it holds no events"
                raise FormatError(labels_csv, f"line {number}: the window {start}..{end} us holds no "
                                              f"events of {recording.name} ({span})")
            samples.append(sample)
        return samples
