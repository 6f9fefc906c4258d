"""The two ways reading a data set fails: its files are not where they were looked for, or a file
is not in the format it claims. Both messages name the file (and, for format errors, the byte
offset, line or field) so that a user can find the problem without a debugger.

Both derive from :class:`DataError`, so a caller can catch every refusal of bad input with one
class, while ``except FileNotFoundError`` / ``except ValueError`` keep working."""

from __future__ import annotations


class DataError(Exception):
    """Base class of every error the data readers raise for bad or missing input."""


class MissingDataError(DataError, FileNotFoundError):
    """A data set's native files were not found in any of the folders that were searched, or a
    listing (class folder, split file) that must name at least one sample names none."""


class FormatError(DataError, ValueError):
    """A file is truncated, corrupt or not in the expected native format.

    The message starts with the file name and gives the byte offset where reading failed
    (when one applies; text formats give the line number in the message instead).
    """

    def __init__(self, path, message: str | None = None, offset: int | None = None):
        if message is None:  # FormatError(text): re-created from its message, as DataLoader workers do
            super().__init__(str(path))
            self.path, self.offset = None, None
            return
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {message}")
        self.path = str(path)
        self.offset = offset

    def __reduce__(self):  # keep path and offset when pickled (DataLoader workers, multiprocessing)
        return type(self), (self.args[0],), {"path": self.path, "offset": self.offset}
