"""Data sets in their native formats, as the zoo's models saw them.

>>> import zoo.data as zd
>>> zd.list_datasets()
['cifar10', 'cifar100', 'cifar10_dvs', 'dvs128_gesture', 'fashion_mnist', 'imagenet', 'mnist', 'nmnist']
>>> ds = zd.create_dataset("mnist", root="../shared/data", split="test")   # doctest: +SKIP
>>> image, label = ds[0]; ds.describe()["input_size"]                      # doctest: +SKIP
[1, 28, 28]

The root is ``root=`` or ``$ZOO_DATA_DIR``: the folder holding a data set's native files, its
torchvision root, or a parent holding the conventional subfolder (``mnist``, ``fashion-mnist``,
``cifar10``, ...). Every data set exposes ``num_classes``, ``in_chans``, ``input_size``,
``classes`` and ``describe()`` (a JSON-able dict that checkpoint configs record). Static images
are ``(float32 [C, H, W], int)``; event data sets give ``(float32 [T, 2, H, W] event counts, int)``.

Bad input is refused with one error of :mod:`zoo.data.errors` (:class:`DataError`:
:class:`MissingDataError` or :class:`FormatError`) naming the file and the byte offset, line or
field; nothing is unpickled unsafely (:mod:`zoo.data.safe_pickle`).
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from .errors import DataError, FormatError, MissingDataError
from .events import CIFAR10DVS, NMNIST, DVS128Gesture, EventFrameDataset, Integration
from .static import SPECS, ImageDataset, load_arrays, static_dataset

EVENT_DATASETS = {cls.name: cls for cls in (NMNIST, DVS128Gesture, CIFAR10DVS)}


def list_datasets() -> list[str]:
    """Names accepted by :func:`create_dataset`."""
    return sorted([*SPECS, *EVENT_DATASETS])


def create_dataset(name: str, root: str | os.PathLike | None = None, split: str = "train",
                   **params) -> Dataset:
    """Build data set ``name`` ("train" or "test" split) from its native files.

    Static sets take ``augment``, ``normalize``, ``transform`` and ``download`` (see
    :mod:`zoo.data.static`); event sets take ``preset``, the integration fields ``method``,
    ``frames``, ``window_us``, ``events_per_frame``, ``downsample``, and ``cache_dir``,
    ``transform``, ``progress`` (see :class:`zoo.data.events.EventFrameDataset`);
    ``cifar10_dvs`` also ``split_rule``.
    """
    key = name.replace("-", "_").lower()
    if key in SPECS:
        return static_dataset(key, root, split, **params)
    if key in EVENT_DATASETS:
        return EVENT_DATASETS[key](root, split, **params)
    raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(list_datasets())}")


__all__ = ["DataError", "EventFrameDataset", "FormatError", "ImageDataset", "Integration", "MissingDataError",
           "create_dataset", "list_datasets", "load_arrays"]
