"""Reading a data set's files: the checks that every reader needs, in one place.

- :func:`list_files`: a folder's files with given suffixes, refusing entries that are not files;
- :func:`read_file`: the bytes of a regular file no larger than a bound, so that a folder where a
  file was expected, or a file far larger than the format allows, is refused before anything is
  allocated; :func:`readable` turns an ``OSError`` while reading into the same error;
- :func:`read_text` / :func:`text_lines`: a text file (label list, split file, CSV) decoded as
  strict UTF-8; an undecodable byte is reported with its byte offset and line instead of a raw
  ``UnicodeDecodeError``;
- :func:`parse_uint`: a non-negative decimal field written with ASCII digits only (``str.isdigit``
  also accepts characters such as "²" that ``int`` then rejects; at most 18 digits);
- :func:`file_sha256`: the content hash that keys the frame cache.

Every refusal is a :class:`~zoo.data.errors.FormatError` naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import FormatError

MAX_TEXT_BYTES = 16 << 20  # label lists and split files are a few hundred kB at most
UTF8_BOM = b"\xef\xbb\xbf"
_UINT = re.compile(r"[0-9]{1,18}")  # int() refuses very long strings; 18 digits fit in int64


def check_regular_file(path: Path) -> Path:
    """``path`` itself, after checking that it is a regular file (or a link to one)."""
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "nothing" if not path.exists() else "not a regular file"
        raise FormatError(path, f"expected a data file, found {kind}")
    return path


@contextmanager
def readable(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` raised while reading ``path`` (permission denied, I/O error) into a
    :class:`FormatError` naming it."""
    try:
        yield
    except OSError as err:
        raise FormatError(path, f"cannot be read ({err.strerror or err})") from None


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The entries of ``folder`` whose name ends with one of ``suffixes`` (case-insensitive),
    sorted by name; an entry with such a name that is not a regular file (a folder, a broken
    link) is refused. Uses ``os.scandir``, which knows the entry type without a ``stat`` per file
    (ImageNet's training set has 1.28 million)."""
    found = []
    with readable(folder), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(suffixes):
                continue
            if not entry.is_file():
                check_regular_file(Path(entry.path))
            found.append(Path(entry.path))
    return sorted(found)


def read_file(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path``; refuses anything but a readable regular file of at most
    ``max_bytes``. ``what`` names the expected content in the message (e.g. "N-MNIST recording").
    """
    path = check_regular_file(Path(path))
    with readable(path):
        size = path.stat().st_size
        if size > max_bytes:
            raise FormatError(path, f"{size} bytes, more than the {max_bytes} bytes a {what} may have")
        return path.read_bytes()


def read_text(path: str | Path, what: str = "text file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The content of a text file, decoded as strict UTF-8 (a leading byte-order mark is skipped).

    An undecodable byte raises :class:`FormatError` with its byte offset and line number.
    """
    path = Path(path)
    data = read_file(path, max_bytes, what)
    skip = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = skip + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise FormatError(path, f"line {line}: byte 0x{data[offset]:02x} is not UTF-8 text "
                                f"(expected a UTF-8 {what})", offset) from None


def text_lines(path: str | Path, what: str = "text file") -> list[tuple[int, str]]:
    """``(line number, line)`` for each non-blank line of a UTF-8 text file, without the line end.

    Lines are split at ``\\n`` only (``\\r\\n`` is accepted), so the numbers match an editor's.
    """
    lines = read_text(path, what).split("\n")
    return [(n, line.rstrip("\r")) for n, line in enumerate(lines, 1) if line.strip()]


def parse_uint(field: str) -> int | None:
    """The value of a decimal field of ASCII digits, or None when it is anything else."""
    return int(field) if _UINT.fullmatch(field) else None


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with readable(Path(path)), open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
