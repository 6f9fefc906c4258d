"""The two ways reading a data set fails: its files are not where they were looked for, or a file
is not in the format it claims. Both messages name the file (and, for format errors, the byte
offset) so that a user can find the problem without a debugger."""

from __future__ import annotations


class MissingDataError(FileNotFoundError):
    """A data set's native files were not found in any of the folders that were searched."""


class FormatError(ValueError):
    """A file is truncated, corrupt or not in the expected native format.

    The message starts with the file name and gives the byte offset where reading failed.
    """

    def __init__(self, path, message: str, offset: int | None = None):
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {message}")
        self.path = str(path)
        self.offset = offset
