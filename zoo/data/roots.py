"""Where a data set's native files are.

The root is the ``root`` argument or, when it is None, the environment variable
``ZOO_DATA_DIR``. Each data set lists the layouts it accepts under that root, for example for
MNIST: the folder holding the IDX files itself (``root``), torchvision's layout
(``root/MNIST/raw``) and a parent folder with the conventional subfolder (``root/mnist``).
The first layout whose required files all exist wins. When none matches, the error names every
folder that was searched and, for each, the files that were missing there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import MissingDataError

ENV_VAR = "ZOO_DATA_DIR"


@dataclass(frozen=True)
class Layout:
    """One accepted place for a data set: ``root/subdir`` holding every entry of ``required``.

    A requirement is a relative path (file or folder) or a tuple of alternatives, for example
    ``("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")``. ``kind`` tells the caller
    which reader the layout needs.
    """

    subdir: str
    required: tuple[str | tuple[str, ...], ...]
    kind: str = ""


def data_root(root: str | os.PathLike | None) -> Path | None:
    """The explicit ``root``, else ``$ZOO_DATA_DIR``, else None."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else None


def first_existing(folder: Path, alternatives: str | tuple[str, ...]) -> Path | None:
    """The first of ``alternatives`` (relative to ``folder``) that exists, or None."""
    for name in (alternatives,) if isinstance(alternatives, str) else alternatives:
        if (folder / name).exists():
            return folder / name
    return None


def locate(dataset: str, root: str | os.PathLike | None, layouts: Sequence[Layout],
           hint: str = "") -> tuple[Path, Layout]:
    """Return ``(folder, layout)`` for the first layout found under the root.

    Raises :class:`MissingDataError` naming every searched folder and what was missing there.
    """
    base = data_root(root)
    if base is None:
        raise MissingDataError(
            f"{dataset}: no data folder given: pass root=... or set ${ENV_VAR} "
            f"(a folder holding the native files, or a parent of the data set's folder). {hint}".rstrip())
    tried: list[str] = []
    for layout in layouts:
        folder = base / layout.subdir if layout.subdir else base
        missing = [req for req in layout.required if first_existing(folder, req) is None]
        if not missing:
            return folder, layout
        state = "folder does not exist" if not folder.is_dir() else "missing " + ", ".join(
            " or ".join((m,) if isinstance(m, str) else m) for m in missing)
        tried.append(f"  {folder}  ({state})")
    source = "root argument" if root is not None else f"${ENV_VAR}"
    raise MissingDataError(
        f"{dataset}: native files not found under {base} (from the {source}). Searched:\n"
        + "\n".join(dict.fromkeys(tried)) + (f"\n{hint}" if hint else ""))
