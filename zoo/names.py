"""Names that become paths, checked where they are parsed, and writes confined to their folder.

Every name the zoo turns into a file or folder name (an architecture, a checkpoint tag, a recipe
or data set name, a Hub repository id) passes one of these checks first, so that a config, recipe
or command line can never steer a write outside the folder it belongs to (``../``, absolute paths,
separators, NUL, hidden names). ``confined`` is the second line of defence at the write itself.

The Hub id rule follows the Hugging Face Hub's: ``owner/repo``, each part letters, digits, ``-``,
``_`` and ``.``, not starting or ending with ``-`` or ``.``, no ``--`` or ``..``, at most 96
characters.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_OWNER = "snnzoo"  # the Hub owner of the zoo's own checkpoint repositories

# one path component: starts with a letter or digit; letters, digits, '_' and '-' after it
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_HUB_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_REVISION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")


class UnsafeNameError(ValueError):
    """A name that cannot safely become part of a path."""


def check_segment(value: object, what: str, source: str = "") -> str:
    """``value`` as one safe path component (architecture, tag, recipe or data set name)."""
    where = f"{source}: " if source else ""
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise UnsafeNameError(f"{where}{what} must be letters, digits, '_' and '-' (starting with a letter or digit, at "
                         f"most 128 characters), got {value!r}")
    return value


def check_checkpoint_name(value: object, source: str = "", what: str = "checkpoint name") -> str:
    """``value`` as ``arch.tag``, each part a safe path component."""
    where = f"{source}: " if source else ""
    if not isinstance(value, str) or value.count(".") != 1:
        raise UnsafeNameError(f"{where}{what} must be 'arch.tag' (one dot), got {value!r}")
    arch, tag = value.split(".")
    check_segment(arch, f"{what} {value!r}: architecture", source)
    check_segment(tag, f"{what} {value!r}: tag", source)
    return value


def check_repo_id(value: object, source: str = "") -> str:
    """``value`` as a Hugging Face Hub repository id ``owner/repo``."""
    where = f"{source}: " if source else ""
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(_HUB_PART.fullmatch(p) and "--" not in p and ".." not in p for p in parts):
        raise UnsafeNameError(f"{where}Hub repository id must be 'owner/repo' (letters, digits, '-', '_', '.'; no '..' "
                         f"or '--'; at most 96 characters each), got {value!r}")
    return value


def check_revision(value: object, source: str = "") -> str:
    """``value`` as a Hub revision: a commit id, tag or branch name (letters, digits, ``.``, ``_``,
    ``-``; no ``/`` or ``..``)."""
    where = f"{source}: " if source else ""
    if not isinstance(value, str) or not _REVISION.fullmatch(value) or ".." in value:
        raise UnsafeNameError(f"{where}revision must be a Hub commit, tag or branch name (letters, digits, '.', '_', "
                              f"'-'), got {value!r}"[:400])
    return value


def no_such_folder(name: str) -> str:
    """What is said of a checkpoint path (a name with a ``/``) that does not exist."""
    return (f"{name}: no such checkpoint folder; expected a folder holding config.json and model.safetensors, "
            "a published arch.tag or hf-hub:owner/repo")


def default_repo_id(name: str) -> str:
    """The zoo's own Hub repository of the checkpoint ``arch.tag``: ``snnzoo/arch.tag``."""
    return f"{DEFAULT_OWNER}/{name}"


def confined(root: str | Path, *parts: str) -> Path:
    """``root / parts...``, refused unless it resolves inside ``root`` (symlinks followed)."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = root.resolve()
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafeNameError(f"{path}: resolves to {resolved}, outside {base}; refusing to write there")
    return path
