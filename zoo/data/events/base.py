"""The common machinery of event-camera data sets: index, integration, cache and describe().

A subclass says where the recordings are (``_units``: a list of :class:`Unit`, each a group of
native files read together with the labels of the samples it yields) and how to decode one
unit (``_load``: one event array per sample). This base class integrates every sample into
frames ``[T, 2, H, W]`` with the chosen :class:`~zoo.data.events.integrate.Integration`,
caches them on disk (:mod:`zoo.data.events.cache`) in one preprocessing pass with a tqdm
progress bar, and serves ``(float32 frames, int label)`` samples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..errors import FormatError, MissingDataError
from ..files import file_sha256
from ..static import check_split
from .cache import FrameCache
from .integrate import INTEGRATION_VERSION, Integration, integrate


@dataclass(frozen=True)
class Unit:
    """Native files read together (``files``) and the labels of the samples they yield, in order.

    ``windows`` carries per-sample reader data, e.g. the (start, end, labels.csv line) of DVS128
    Gesture samples within one recording.
    """

    files: tuple[Path, ...]
    labels: tuple[int, ...]
    windows: tuple = ()


def resolve_integration(presets: dict[str, Integration], default: str, preset: str | None,
                        overrides: dict) -> tuple[Integration, str | None]:
    """Start from ``preset`` (or the default), replace the fields given in ``overrides``.

    Returns the integration and the preset's name when the result is exactly that preset.
    """
    name = preset or default
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(presets)}")
    fields = presets[name].to_dict()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides.get("method", fields["method"]) != fields["method"]:
        fields.update(window_us=None, events_per_frame=None)
    spec = Integration(**{**fields, **overrides})
    return spec, (name if spec == presets[name] else None)


class EventFrameDataset(Dataset):
    """An event-camera data set served as integrated frames.

    Parameters (all keyword-only after ``split``):
        preset: named integration setting (``presets`` of the class; default ``default_preset``).
        method, frames, window_us, events_per_frame, downsample: override fields of the preset.
        cache_dir: where frames are cached (default ``$ZOO_CACHE_DIR`` or ``~/.cache/snnzoo/frames``);
            ``False`` integrates on every access and writes nothing.
        transform: applied to the float32 frames tensor of each sample.
        progress: show a tqdm bar during the preprocessing pass.
        download: refused with the address to fetch the data set from (none of these data sets
            can be fetched without a manual step).
    """

    name: str
    classes: tuple[str, ...]
    sensor_size: tuple[int, int]
    reader_version: str
    split_rule: str
    presets: dict[str, Integration]
    default_preset: str
    source_url: str
    shard_bytes = 64 << 20  # samples per cache shard: this many bytes of float32 frames

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any]) -> tuple[Integration, str | None]:
        """The integration that the data set's keyword ``params`` select (``preset``, then the
        Integration fields given; other keys are ignored), and the preset's name when the result is
        exactly that preset. A recipe's ``data.params`` can be checked with it before any data is read."""
        given = {f.name: params.get(f.name) for f in dataclasses.fields(Integration)}
        return resolve_integration(cls.presets, cls.default_preset, params.get("preset"), given)

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", *,
                 preset: str | None = None, method: str | None = None, frames: int | None = None,
                 window_us: int | None = None, events_per_frame: int | None = None,
                 downsample: float | None = None, cache_dir: str | os.PathLike | None | bool = None,
                 transform: Callable | None = None, progress: bool = True, download: bool = False):
        if download:
            raise ValueError(f"{self.name}: download=True is not supported; get the data set from "
                             f"{self.source_url} and pass its folder as root")
        self.split = check_split(split)
        self.integration, self.preset = self.resolve_params(dict(
            preset=preset, method=method, frames=frames, window_us=window_us,
            events_per_frame=events_per_frame, downsample=downsample))
        folder, self.units = self._units(root, f"Get the data set from {self.source_url}")
        self._check_units(folder)
        self.labels = [label for unit in self.units for label in unit.labels]
        self.num_classes = len(self.classes)
        self.in_chans = 2
        self.input_size = (self.integration.frames, 2, *self.integration.output_size(self.sensor_size))
        self.transform = transform
        self._where = [(u, k) for u, unit in enumerate(self.units) for k in range(len(unit.labels))]
        self._memo: tuple[int, list[np.ndarray]] | None = None
        self.cache = None
        if cache_dir is not False:
            shards = self._shards()
            self.cache = FrameCache(cache_dir, self.name, self.split, self._cache_payload(folder),
                                    self.input_size, tuple(self._shard_samples(units) for units in shards))
            self._prepare(shards, progress)

    # --- subclass hooks -------------------------------------------------------------------
    def _units(self, root, hint: str) -> tuple[Path, list[Unit]]:
        """Locate the recordings of ``self.split``: (data folder, units); ``hint`` ends the
        message when they are missing."""
        raise NotImplementedError

    def _load(self, unit: Unit) -> list[np.ndarray]:
        """Decode one unit: one event array per label of the unit."""
        raise NotImplementedError

    def _check_units(self, folder: Path) -> None:
        """Refuse a data set without samples and a label outside ``0 .. num_classes - 1`` (the
        readers check their own label fields; this holds for every subclass)."""
        if not any(unit.labels for unit in self.units):
            raise MissingDataError(f"{self.name}: no {self.split} samples in {folder}")
        for unit in self.units:
            bad = [label for label in unit.labels if not 0 <= label < len(self.classes)]
            if bad:
                raise FormatError(unit.files[-1], f"label {bad[0]} outside 0..{len(self.classes) - 1}")

    # --- frames ---------------------------------------------------------------------------
    def _integrate_unit(self, u: int) -> list[np.ndarray]:
        if self._memo is None or self._memo[0] != u:
            events = self._checked_samples(self.units[u])
            self._memo = (u, [integrate(e, self.sensor_size, self.integration) for e in events])
        return self._memo[1]

    def _checked_samples(self, unit: Unit) -> list[np.ndarray]:
        """``_load(unit)``, refusing a sample without events (it would be an all-zero sample that
        still carries its label) and a count of samples other than the unit's labels."""
        samples = self._load(unit)
        files = ", ".join(str(f) for f in unit.files)
        if len(samples) != len(unit.labels):
            raise FormatError(files, f"decoded {len(samples)} samples for {len(unit.labels)} labels")
        for k, events in enumerate(samples):
            if not len(events):
                raise FormatError(files, f"sample {k} (label {unit.labels[k]}) holds no events")
        return samples

    def _shard_samples(self, units: list[int]) -> int:
        return sum(len(self.units[u].labels) for u in units)

    def _shards(self) -> list[list[int]]:
        """Consecutive units grouped into shards of about ``shard_bytes`` of float32 frames."""
        per_shard = max(1, self.shard_bytes // (4 * int(np.prod(self.input_size))))
        shards, current, size = [], [], 0
        for u, unit in enumerate(self.units):
            current.append(u)
            size += len(unit.labels)
            if size >= per_shard:
                shards.append(current)
                current, size = [], 0
        return shards + ([current] if current else [])

    def _prepare(self, shards: list[list[int]], progress: bool) -> None:
        """Compute the shards that are missing or damaged, then record the folder's meta.json."""
        self._location = []
        for s, units in enumerate(shards):
            self._location += [(s, i) for i in range(self._shard_samples(units))]
        todo = [(s, units) for s, units in enumerate(shards) if not self.cache.has(s)]
        if todo:
            with tqdm(total=sum(len(units) for _, units in todo), disable=not progress, unit="file",
                      desc=f"{self.name} {self.split}: integrating frames") as bar:
                for s, units in todo:
                    frames = []
                    for u in units:
                        frames += self._integrate_unit(u)
                        bar.update(1)
                    self.cache.write(s, np.stack(frames))
        if todo or not self.cache.complete():
            self.cache.finish(self.describe())
        self._memo = None

    def _cache_payload(self, folder: Path) -> dict:
        """Everything the cached frames depend on (see :mod:`zoo.data.events.cache`): the source
        files are identified by the SHA-256 of their bytes, so a recording rewritten in place at
        the same size gets a new key (hashing the 1,100 N-MNIST files of NMNISTsmall, 23 MB,
        takes about 0.2 s)."""
        listing = hashlib.sha256()
        for unit in self.units:
            for file in unit.files:
                listing.update(f"{os.path.relpath(file, folder)}:{file_sha256(file)}\n".encode())
            listing.update(f"{unit.labels}{unit.windows}\n".encode())
        return {"dataset": self.name, "split": self.split, "split_rule": self.split_rule,
                "reader": self.reader_version, "integration": self.integration.to_dict(),
                "integration_version": INTEGRATION_VERSION, "sensor_size": list(self.sensor_size),
                "shard_bytes": self.shard_bytes, "sources": listing.hexdigest()}

    # --- Dataset API ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.cache is not None:
            shard, offset = self._location[index]
            counts = self.cache.read(shard)[offset]
        else:
            u, k = self._where[index]
            counts = self._integrate_unit(u)[k]
        frames = torch.from_numpy(np.asarray(counts, dtype=np.float32))
        if self.transform is not None:
            frames = self.transform(frames)
        return frames, self.labels[index]

    def describe(self) -> dict:
        """JSON-able record of the split, reader and integration, with the integration hash."""
        return {"name": self.name, "split": self.split, "split_rule": self.split_rule,
                "num_samples": len(self), "num_classes": self.num_classes, "in_chans": self.in_chans,
                "input_size": list(self.input_size), "sensor_size": list(self.sensor_size),
                "reader": self.reader_version, "preset": self.preset,
                "integration": self.integration.to_dict(),
                "integration_hash": self.integration.hash(self.reader_version, list(self.sensor_size)),
                "values": "event counts per (frame, polarity OFF/ON, pixel), float32"}
