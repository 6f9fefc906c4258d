"""The in-memory event stream shared by every reader and by the integration.

One event per row of a numpy structured array with fields ``t`` (int64, microseconds), ``x`` and
``y`` (int16, pixel column and row, origin at the top-left as in libcaer), and ``p`` (int8,
polarity: 1 = ON / brightness increase, 0 = OFF).
"""

from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])


def make_events(t, x, y, p) -> np.ndarray:
    """Pack equal-length arrays into an :data:`EVENT_DTYPE` array."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["t"], events["x"], events["y"], events["p"] = t, x, y, p
    return events
