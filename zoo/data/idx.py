"""IDX files (LeCun's MNIST format), raw or gzip-compressed, parsed with numpy.

Format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``00 00 TT NN`` where TT is the
element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and NN
the number of dimensions, then NN big-endian uint32 sizes, then the elements in C order,
big-endian. Nothing else may follow. Byte offsets in error messages count from the start of
the (decompressed) IDX stream.

The header is checked before the data is allocated: at most :data:`MAX_NDIM` dimensions, and the
byte count the sizes declare must match the file (raw files: exactly the bytes after the header;
gzip files: no more than deflate can expand the compressed bytes to, :data:`MAX_DEFLATE_RATIO`)
and stay under ``max_bytes``. A header that lies can therefore never make the reader allocate
more memory than the file really holds.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import FormatError
from .files import check_regular_file, readable

IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_NDIM = 32  # numpy 1.x's limit; MNIST-family files have 1 (labels) or 3 (images)
MAX_DEFLATE_RATIO = 1032  # deflate never expands one input byte to more than 1032 output bytes
DEFAULT_MAX_BYTES = 256 << 20  # five times the largest MNIST-family file (training images, 47 MB)
CHUNK = 16 << 20
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX header declares: element type, sizes, and where the data starts."""

    dtype: np.dtype
    dims: tuple[int, ...]
    data_offset: int

    @property
    def data_bytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize

    @property
    def type_name(self) -> str:
        """The element type in words, e.g. "uint8" or "int32" (IDX data is big-endian)."""
        return self.dtype.newbyteorder("=").name

    @property
    def shape_text(self) -> str:
        return "x".join(map(str, self.dims)) or "scalar"


@contextmanager
def open_stream(path: Path) -> Iterator[tuple[BinaryIO, bool]]:
    """``(stream, compressed)``: the file, gunzipped on the fly when it starts with the gzip
    magic number 1f 8b (an IDX file always starts with 00)."""
    with readable(path):
        raw = open(check_regular_file(path), "rb")  # noqa: SIM115 - closed below
    with raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        if not compressed:
            yield raw, False
            return
        with gzip.GzipFile(fileobj=raw) as unzipped:
            yield unzipped, True


def read_exact(stream: BinaryIO, path: Path, n: int, offset: int, what: str) -> bytearray:
    """``n`` bytes of ``stream`` (whose position is ``offset``), read in chunks; a stream that ends
    early raises :class:`FormatError` "``what`` truncated" at the offset where it ended."""
    buffer = bytearray(n)
    view, got = memoryview(buffer), 0
    while got < n:
        try:
            count = stream.readinto(view[got:got + CHUNK])
        except GZIP_ERRORS as err:
            raise FormatError(path, f"corrupt or truncated gzip stream ({err})") from None
        if not count:
            raise FormatError(path, f"{what} truncated: expected {n} bytes from offset {offset}, "
                                    f"the data ends after {got}", offset + got)
        got += count
    return buffer


def parse_header(stream: BinaryIO, path: Path) -> IdxHeader:
    """Read and check the magic number and the sizes (not the data)."""
    magic = bytes(read_exact(stream, path, 4, 0, "IDX header"))
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise FormatError(path, f"not an IDX file: magic number {magic.hex()} "
                                "(expected 0000TTNN with TT one of 08 09 0b 0c 0d 0e)", 0)
    ndim = magic[3]
    if ndim > MAX_NDIM:
        raise FormatError(path, f"the IDX header declares {ndim} dimensions, at most {MAX_NDIM} "
                                "are supported", 3)
    sizes = read_exact(stream, path, 4 * ndim, 4, "IDX header")
    dims = struct.unpack(f">{ndim}I", sizes)
    return IdxHeader(np.dtype(IDX_TYPES[magic[2]]), dims, 4 + 4 * ndim)


def check_data_size(path: Path, header: IdxHeader, compressed: bool, max_bytes: int) -> None:
    """Refuse a header whose declared data cannot be in the file, before anything is allocated."""
    expected, start = header.data_bytes, header.data_offset
    declares = (f"the header declares {header.shape_text} elements of {header.dtype.itemsize} "
                f"byte(s), {expected} bytes from offset {start}")
    if expected > max_bytes:
        raise FormatError(path, f"{declares}, more than the {max_bytes} bytes allowed", 4)
    size = path.stat().st_size
    if compressed:
        if expected > MAX_DEFLATE_RATIO * size:
            raise FormatError(path, f"IDX data truncated: {declares}, more than a {size}-byte gzip "
                                    "file can hold", start)
    elif size - start < expected:
        raise FormatError(path, f"IDX data truncated: {declares}, but the data ends", size)
    elif size - start > expected:
        raise FormatError(path, f"{size - start - expected} unexpected bytes after the "
                                f"{header.shape_text} IDX data", start + expected)


def check_end(stream: BinaryIO, path: Path, header: IdxHeader) -> None:
    """Refuse data after the declared elements (and, for gzip, let the trailer's CRC be checked)."""
    try:
        extra = stream.read(1)
    except GZIP_ERRORS as err:
        raise FormatError(path, f"corrupt or truncated gzip stream ({err})") from None
    if extra:
        raise FormatError(path, f"unexpected bytes after the {header.shape_text} IDX data",
                          header.data_offset + header.data_bytes)


def read_idx_header(path: str | Path) -> IdxHeader:
    """Parse only the header of an IDX file (cheap even for a large gzip file)."""
    path = Path(path)
    with open_stream(path) as (stream, _):
        return parse_header(stream, path)


def read_idx(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Parse one IDX file into a native-endian numpy array, validating magic number and sizes."""
    path = Path(path)
    with open_stream(path) as (stream, compressed):
        header = parse_header(stream, path)
        check_data_size(path, header, compressed, max_bytes)
        data = read_exact(stream, path, header.data_bytes, header.data_offset, "IDX data")
        check_end(stream, path, header)
    array = np.frombuffer(data, dtype=header.dtype).reshape(header.dims)
    return array.astype(header.dtype.newbyteorder("="), copy=False)
