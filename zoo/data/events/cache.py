"""On-disk cache of integrated event frames.

Preprocessing an event data set (decode every recording, integrate it into frames) is slow, so
its result is stored once per *key*: the SHA-256 of every input that changes the frames
(data set, split and split rule, reader version, integration parameters and code version,
sensor size, and the list of source files with their sizes and labels). A changed parameter
gives a new key and a new folder, so a stale cache is never read.

Layout: ``<cache_dir>/<data set>/<split>-<key>/shard-00000.npy ...`` plus ``meta.json``. Each
shard holds the frames ``[n, T, 2, H, W]`` of a run of consecutive samples as an uncompressed
``.npy`` (counts in the smallest unsigned dtype that holds them), opened memory-mapped and
never with ``allow_pickle``. Every file is written to a temporary name in the same folder and
renamed into place, so an interrupted run leaves no partial shard, and the next run only
computes the shards that are missing.

The cache folder is ``cache_dir``, else ``$ZOO_CACHE_DIR``, else ``~/.cache/snnzoo/frames``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "ZOO_CACHE_DIR"
CACHE_FORMAT = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnzoo" / "frames"


def cache_key(payload: dict) -> str:
    """SHA-256 (hex) of a JSON-able payload, keys sorted."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def smallest_uint(counts: np.ndarray) -> np.ndarray:
    """``counts`` (non-negative ints) in the smallest of uint8/16/32 that holds its maximum."""
    top = int(counts.max()) if counts.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return counts.astype(dtype)
    return counts.astype(np.uint64)


class FrameCache:
    """The shards of one key (see the module docstring)."""

    def __init__(self, cache_dir: str | os.PathLike | None, dataset: str, split: str, payload: dict):
        self.key = cache_key({"cache_format": CACHE_FORMAT, **payload})
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.folder = root / dataset / f"{split}-{self.key}"
        self.payload = payload
        self._open: dict[int, np.ndarray] = {}

    def __getstate__(self):  # DataLoader workers reopen the memory maps instead of copying them
        return {**self.__dict__, "_open": {}}

    def shard_path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:05d}.npy"

    def has(self, shard: int) -> bool:
        return self.shard_path(shard).is_file()

    def write(self, shard: int, frames: np.ndarray) -> None:
        atomic_write(self.shard_path(shard),
                     lambda f: np.save(f, smallest_uint(frames), allow_pickle=False))

    def read(self, shard: int) -> np.ndarray:
        """The shard's frames, memory-mapped (opened once per process)."""
        if shard not in self._open:
            self._open[shard] = np.load(self.shard_path(shard), mmap_mode="r", allow_pickle=False)
        return self._open[shard]

    def complete(self) -> bool:
        return (self.folder / "meta.json").is_file()

    def finish(self, description: dict) -> None:
        """Record what the folder holds (``meta.json``), once every shard exists."""
        meta = {"cache_format": CACHE_FORMAT, "key": self.key, "payload": self.payload,
                "describe": description}
        atomic_write(self.folder / "meta.json",
                     lambda f: f.write(json.dumps(meta, indent=1, sort_keys=True).encode()))
