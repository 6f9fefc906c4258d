"""Event-to-frame integration: count events per (frame, polarity, pixel).

A sample becomes ``frames[T, 2, H', W']`` where channel 0 counts OFF events and channel 1 ON
events, and ``(H', W')`` is the sensor size after spatial downsampling. Four ways to assign an
event to a frame (events are first put in time order with a stable sort):

``time_window`` (``window_us``, ``frames`` = T)
    Frame i holds events with ``t0 + i*w <= t < t0 + (i+1)*w``, where ``t0`` is the sample's
    first timestamp; events after ``t0 + T*w`` are dropped and a short sample leaves trailing
    frames empty. This is the MLF authors' preprocessing (langfengQ/MLF-DSResNet,
    ``DVS_*_preprocess.py``): DVS128 Gesture 40 x 30 ms, CIFAR10-DVS 10 x 10 ms, both starting
    at the first event. (Their CIFAR10-DVS script cuts the recording at absolute time T*w
    before re-basing to the first event; the two agree when a recording starts at time 0.)
``event_count`` (``events_per_frame`` = n, ``frames`` = T)
    Frame i holds events ``i*n .. (i+1)*n - 1``; events beyond ``T*n`` are dropped.
``time_bins`` (``frames`` = T): SpikingJelly ``split_by='time'``
    ``dt = (t_last - t0) // T`` (integer us); frame i holds ``t0 + i*dt <= t < t0 + (i+1)*dt`` and
    the last frame also everything after. SpikingJelly fails when ``dt`` is 0 or a bin is empty;
    here ``dt`` is at least 1 us and empty bins give empty frames.
``count_bins`` (``frames`` = T): SpikingJelly ``split_by='number'``
    ``n = N // T``; frame i holds events ``i*n .. (i+1)*n - 1`` and the last frame also the
    remainder. With fewer than T events every event lands in the last frame (as in SpikingJelly).

Spatial downsampling divides coordinates by ``downsample`` with numpy floor division,
``x' = x // d``, so ``W' = (W - 1) // d + 1``. A float divisor reproduces the MLF CIFAR10-DVS
setting exactly (``d = 3.04``: 128 -> 42). Values are raw event counts (the MLF scripts stored
them as int8, which wraps above 127; here they never wrap).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

METHODS = ("time_window", "event_count", "time_bins", "count_bins")
INTEGRATION_VERSION = 1


@dataclass(frozen=True)
class Integration:
    """How a sample's events become frames (see the module docstring). JSON-able via to_dict()."""

    method: str
    frames: int
    window_us: int | None = None
    events_per_frame: int | None = None
    downsample: float = 1

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"integration method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames must be a positive int, got {self.frames!r}")
        needs = {"time_window": "window_us", "event_count": "events_per_frame"}.get(self.method)
        for field in ("window_us", "events_per_frame"):
            value = getattr(self, field)
            if field == needs and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{self.method} needs a positive int {field}, got {value!r}")
            if field != needs and value is not None:
                raise ValueError(f"{field} does not apply to method {self.method!r}")
        if not self.downsample > 0:
            raise ValueError(f"downsample must be > 0, got {self.downsample!r}")
        if float(self.downsample).is_integer():  # 4 and 4.0 are one setting with one hash
            object.__setattr__(self, "downsample", int(self.downsample))

    def output_size(self, sensor_size: tuple[int, int]) -> tuple[int, int]:
        """``(H', W')`` of the frames for a sensor of ``(H, W)`` pixels."""
        return tuple(int(np.floor_divide(s - 1, self.downsample)) + 1 for s in sensor_size)

    def to_dict(self) -> dict:
        return asdict(self)

    def hash(self, *extra) -> str:
        """Short SHA-256 of the parameters, the integration code version and ``extra``."""
        blob = json.dumps([INTEGRATION_VERSION, self.to_dict(), *extra], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def frame_index(t: np.ndarray, spec: Integration) -> np.ndarray:
    """The frame of each event (time-ordered ``t``); -1 for events that are dropped."""
    n, frames = len(t), spec.frames
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.arange(n, dtype=np.int64)
    if spec.method == "time_window":
        index = (t - t[0]) // spec.window_us
    elif spec.method == "event_count":
        index = order // spec.events_per_frame
    elif spec.method == "time_bins":
        dt = max(int(t[-1] - t[0]) // frames, 1)
        return np.minimum((t - t[0]) // dt, frames - 1)
    else:  # count_bins
        per = n // frames
        return np.minimum(order // per, frames - 1) if per else np.full(n, frames - 1, np.int64)
    return np.where(index < frames, index, -1)


def check_fields(events: np.ndarray, sensor_size: tuple[int, int]) -> None:
    """Raise ValueError naming the first event outside the sensor or with a polarity not 0/1."""
    height, width = sensor_size
    x, y, p = events["x"], events["y"], events["p"]
    for mask, what in (((x < 0) | (x >= width) | (y < 0) | (y >= height),
                        f"outside the {height}x{width} sensor"),
                       ((p != 0) & (p != 1), "with a polarity other than 0 or 1")):
        bad = np.flatnonzero(mask)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"event {i} (x={x[i]}, y={y[i]}, p={p[i]}) {what}")


def integrate(events: np.ndarray, sensor_size: tuple[int, int], spec: Integration) -> np.ndarray:
    """Integrate an event array into uint32 counts ``[T, 2, H', W']``.

    ``sensor_size`` is ``(H, W)``; coordinates must lie inside it and polarities be 0 or 1 (the
    readers refuse such events with the file's byte offset; this check guards events built by
    other code, since either would be counted in another pixel or frame).
    """
    check_fields(events, sensor_size)
    if np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    out_h, out_w = spec.output_size(sensor_size)
    index = frame_index(events["t"].astype(np.int64), spec)
    keep = index >= 0
    x, y = events["x"][keep].astype(np.int64), events["y"][keep].astype(np.int64)
    if spec.downsample != 1:
        x = np.floor_divide(x, spec.downsample).astype(np.int64)
        y = np.floor_divide(y, spec.downsample).astype(np.int64)
    flat = ((index[keep] * 2 + events["p"][keep].astype(np.int64)) * out_h + y) * out_w + x
    counts = np.bincount(flat, minlength=spec.frames * 2 * out_h * out_w)
    return counts.astype(np.uint32).reshape(spec.frames, 2, out_h, out_w)
