"""On-disk cache of integrated event frames.

Preprocessing an event data set (decode every recording, integrate it into frames) is slow, so
its result is stored once per *key*: the SHA-256 of every input that changes the frames
(data set, split and split rule, reader version, integration parameters and code version,
sensor size, how samples are grouped into shards, and the list of source files with the
SHA-256 of their bytes and their labels). A changed parameter or a source file rewritten in
place, even at the same size, gives a new key and a new folder, so a stale cache is never read.

Layout: ``<cache_dir>/<data set>/<split>-<key>/shard-00000.npy ...`` plus ``meta.json``. Each
shard holds the frames ``[n, T, 2, H, W]`` of a run of consecutive samples as an uncompressed
``.npy`` (counts in the smallest unsigned dtype that holds them), opened memory-mapped and
never with ``allow_pickle``. Every file is written to a temporary name in the same folder and
renamed into place, so an interrupted run leaves no partial shard, and the next run only
computes the shards that are missing. Temporary files that a killed run left behind are removed
when the cache is opened (those of a process on this host that no longer runs, and any older
than :data:`STALE_SECONDS`).

A shard is checked before use: its ``.npy`` header must give the expected shape and an unsigned
dtype, and the file must hold exactly that many bytes. When the data set is built, a damaged
shard (truncated, overwritten, wrong shape) is deleted with a warning and computed again;
if one is found damaged later, while samples are read, :class:`~zoo.data.errors.FormatError`
names it.

The cache folder is ``cache_dir``, else ``$ZOO_CACHE_DIR``, else ``~/.cache/snnzoo/frames``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import socket
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..files import readable

CACHE_ENV = "ZOO_CACHE_DIR"
CACHE_FORMAT = 2
STALE_SECONDS = 24 * 3600
NPY_HEADER_BYTES = 4096  # np.save writes a header of at most a few hundred bytes for these arrays
SHARD_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
_UMASK = os.umask(0)
os.umask(_UMASK)


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnzoo" / "frames"


def cache_key(payload: dict) -> str:
    """SHA-256 (hex) of a JSON-able payload, keys sorted."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _temp_prefix(path: Path) -> str:
    """``.<name>~<host>~<pid>~``: tells :func:`remove_stale_temporaries` whose file it is ('~'
    appears in neither our file names nor host names)."""
    return f".{path.name}~{socket.gethostname()}~{os.getpid()}~"


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _writer_gone(tmp: Path) -> bool:
    """Whether the temporary file ``tmp`` was made by a process of this host that no longer runs."""
    parts = tmp.name.split("~")  # '.<name>', host, pid, '<random>.tmp'
    if len(parts) != 4 or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by another user
        return False
    return False


def remove_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Delete the ``.*.tmp`` files in ``folder`` that no running writer owns (see the module
    docstring); returns what was removed. A live writer's file is left alone."""
    removed = []
    now = time.time() if now is None else now
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
        try:
            if _writer_gone(tmp) or now - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            pass
    return removed


def smallest_uint(counts: np.ndarray) -> np.ndarray:
    """``counts`` (non-negative ints) in the smallest of uint8/16/32 that holds its maximum."""
    top = int(counts.max()) if counts.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return counts.astype(dtype)
    return counts.astype(np.uint64)


def shard_problem(path: Path, shape: tuple[int, ...]) -> str | None:
    """What is wrong with the shard file at ``path`` that must hold ``shape`` frames, or None.

    Checks the ``.npy`` magic and header (parsed from at most :data:`NPY_HEADER_BYTES` bytes, so a
    damaged header length cannot make numpy read a huge header), the shape, an unsigned dtype,
    C order, and the file length."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = io.BytesIO(f.read(NPY_HEADER_BYTES))
        version = np.lib.format.read_magic(head)
        if version not in ((1, 0), (2, 0)):
            return f"unsupported .npy version {version}"
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        found, fortran, dtype = reader(head)
    except FileNotFoundError:
        return "missing"
    except (ValueError, OSError, SyntaxError, TypeError, EOFError) as err:
        return f"unreadable .npy header ({err})"
    if found != tuple(shape) or fortran or dtype.newbyteorder("=") not in SHARD_DTYPES:
        return f"holds {dtype} {found}{' (Fortran order)' if fortran else ''}, expected unsigned {shape}"
    expected = head.tell() + math.prod(shape) * dtype.itemsize
    if size != expected:
        return f"{size} bytes, expected {expected} for {dtype} {shape}"
    return None


class FrameCache:
    """The shards of one key (see the module docstring).

    ``frame_shape`` is one sample's ``[T, 2, H, W]``; ``shard_sizes`` the number of samples of
    each shard, which the shards are checked against."""

    def __init__(self, cache_dir: str | os.PathLike | None, dataset: str, split: str, payload: dict,
                 frame_shape: tuple[int, ...] = (), shard_sizes: tuple[int, ...] = ()):
        self.key = cache_key({"cache_format": CACHE_FORMAT, **payload})
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.folder = root / dataset / f"{split}-{self.key}"
        self.payload = payload
        self.frame_shape = tuple(frame_shape)
        self.shard_sizes = tuple(shard_sizes)
        self._open: dict[int, np.ndarray] = {}
        remove_stale_temporaries(self.folder)

    def __getstate__(self):  # DataLoader workers reopen the memory maps instead of copying them
        return {**self.__dict__, "_open": {}}

    def shard_path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:05d}.npy"

    def shard_shape(self, shard: int) -> tuple[int, ...]:
        return (self.shard_sizes[shard], *self.frame_shape)

    def has(self, shard: int) -> bool:
        """Whether a valid shard is on disk; a damaged one is deleted (with a warning) so that it
        is computed again."""
        path = self.shard_path(shard)
        if not path.exists():
            return False
        problem = shard_problem(path, self.shard_shape(shard))
        if problem is None:
            return True
        warnings.warn(f"{path}: damaged frame cache shard ({problem}); computing it again",
                      stacklevel=2)
        path.unlink(missing_ok=True)
        return False

    def write(self, shard: int, frames: np.ndarray) -> None:
        if frames.shape != self.shard_shape(shard):
            raise ValueError(f"shard {shard} gets frames {frames.shape}, expected {self.shard_shape(shard)}")
        atomic_write(self.shard_path(shard),
                     lambda f: np.save(f, smallest_uint(frames), allow_pickle=False))

    def read(self, shard: int) -> np.ndarray:
        """The shard's frames, memory-mapped (opened and checked once per process)."""
        if shard not in self._open:
            path = self.shard_path(shard)
            problem = shard_problem(path, self.shard_shape(shard))
            if problem is not None:
                raise FormatError(path, f"damaged frame cache shard ({problem}); delete it and "
                                        "build the data set again to recompute it")
            with readable(path):
                self._open[shard] = np.load(path, mmap_mode="r", allow_pickle=False)
        return self._open[shard]

    def complete(self) -> bool:
        """Whether ``meta.json`` exists and records this key."""
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(meta, dict) and meta.get("key") == self.key

    def finish(self, description: dict) -> None:
        """Record what the folder holds (``meta.json``), once every shard exists."""
        meta = {"cache_format": CACHE_FORMAT, "key": self.key, "payload": self.payload,
                "describe": description}
        atomic_write(self.folder / "meta.json",
                     lambda f: f.write(json.dumps(meta, indent=1, sort_keys=True).encode()))
