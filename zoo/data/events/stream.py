"""The in-memory event stream shared by every reader and by the integration.

One event per row of a numpy structured array with fields ``t`` (int64, microseconds), ``x`` and
``y`` (int16, pixel column and row, origin at the top-left as in libcaer), and ``p`` (int8,
polarity: 1 = ON / brightness increase, 0 = OFF).

:func:`check_events` is what every reader asks of the events it decoded, so that a corrupt
recording is refused with the file, the event index and its byte offset, instead of reaching
the integration (where a polarity of 2 or a coordinate outside the sensor would count the event
in another pixel or frame).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import FormatError

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
MAX_RECORDING_BYTES = 4 << 30  # DVS128 Gesture's largest recordings are a few hundred MB


def make_events(t, x, y, p) -> np.ndarray:
    """Pack equal-length arrays into an :data:`EVENT_DTYPE` array."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["t"], events["x"], events["y"], events["p"] = t, x, y, p
    return events


def first_bad(mask: np.ndarray) -> int | None:
    """Index of the first True in ``mask``, or None."""
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def check_events(path: Path, x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray,
                 sensor_size: tuple[int, int], offset_of: Callable[[int], int], *,
                 ordered: bool = False, what: str = "") -> None:
    """Refuse the first event whose polarity is not 0 or 1, whose pixel is outside the sensor
    ``(H, W)``, whose timestamp is negative or, with ``ordered``, earlier than the previous
    event's (for formats whose events are written in time order).

    ``x, y, p, t`` are the decoded fields (any integer dtype, before packing, so that a value
    that would not fit the event dtype is still seen); ``offset_of(i)`` is the byte offset of
    event ``i`` in ``path``; ``what`` names the sensor in the message (e.g. "N-MNIST").
    """
    height, width = sensor_size
    sensor = f"the {height}x{width} {what + ' ' if what else ''}sensor"
    checks = (
        ((p != 0) & (p != 1), lambda i: f"event {i} has polarity {p[i]}, expected 0 (OFF) or 1 (ON)"),
        ((x < 0) | (x >= width) | (y < 0) | (y >= height),
         lambda i: f"event {i} has x={x[i]}, y={y[i]}, outside {sensor}"),
        (t < 0, lambda i: f"event {i} has a negative timestamp {t[i]} us"),
    )
    for mask, message in checks:
        i = first_bad(mask)
        if i is not None:
            raise FormatError(path, message(i), offset_of(i))
    if ordered and len(t) > 1:
        i = first_bad(np.diff(t) < 0)
        if i is not None:
            raise FormatError(path, f"event {i + 1} has timestamp {t[i + 1]} us, before event {i}'s "
                                    f"{t[i]} us (the format stores events in time order)",
                              offset_of(i + 1))
