"""Folders that several processes share: an exclusive lock, and the leftovers of killed writers.

The zoo writes every file atomically (``zoo.checkpoint.write_atomic`` and the train state writer:
a temporary ``.<name>.<random>.tmp`` beside the target, then a rename). A writer killed between
the two leaves the temporary file behind; nothing else ever reads it, so it is garbage. It may be
removed only while no live writer can own it, which is what the lock is for: every writer of a
shared folder (a run folder, a results folder, a checkpoint's ``config.json``) holds the folder's
lock while it writes, so a temporary file seen under the lock is a dead writer's.

``file_lock`` is ``fcntl.flock`` on a lock file: the kernel drops it when the process dies, so a
killed process never leaves a folder locked, and two threads of one process exclude each other
too (each opens the file itself).
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator


CONFIG_LOCK = ".config.json.lock"  # beside a checkpoint's config.json: held by every writer of the folder


class LockedError(RuntimeError):
    """The lock is held by another process (raised only when not waiting for it)."""


@contextlib.contextmanager
def file_lock(path: str | Path, wait: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created, with its folder, when missing) inside the
    ``with`` block. ``wait=False`` raises :class:`LockedError` instead of waiting for a holder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockedError(f"{path}: locked by another process") from None
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_tmp(folder: str | Path, targets: tuple[str, ...] | None = None) -> list[Path]:
    """Delete the temporary files that killed atomic writers left in ``folder`` (not below it):
    those of the files named in ``targets`` (``.config.json.*.tmp`` for ``"config.json"``), or all
    ``.*.tmp`` files when None. Call it only under the folder's lock. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefixes = tuple(f".{t}." for t in targets) if targets is not None else (".",)
    stale = [p for p in folder.iterdir()
             if p.name.startswith(prefixes) and p.name.endswith(".tmp") and p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
