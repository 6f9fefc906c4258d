"""IDX files (LeCun's MNIST format), raw or gzip-compressed, parsed with numpy.

Format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``00 00 TT NN`` where TT is the
element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and NN
the number of dimensions, then NN big-endian uint32 sizes, then the elements in C order,
big-endian. Nothing else may follow. Byte offsets in error messages count from the start of
the (decompressed) IDX stream.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import FormatError

IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic number 1f 8b (an IDX
    file always starts with 00)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise FormatError(path, f"corrupt or truncated gzip stream ({err})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file into a native-endian numpy array, validating magic number and sizes."""
    path = Path(path)
    raw = read_bytes(path)
    if len(raw) < 4:
        raise FormatError(path, "IDX header truncated: need a 4-byte magic number", len(raw))
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise FormatError(path, f"not an IDX file: magic number {raw[:4].hex()} "
                                "(expected 0000TTNN with TT one of 08 09 0b 0c 0d 0e)", 0)
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FormatError(path, f"IDX header truncated: {ndim} dimensions need {header} header bytes",
                          len(raw))
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    shape = "x".join(map(str, dims))
    if len(raw) - header < expected:
        raise FormatError(path, f"IDX data truncated: the header declares {shape} elements of "
                                f"{dtype.itemsize} byte(s), {expected} bytes from offset {header}, "
                                f"but the data ends", len(raw))
    if len(raw) - header > expected:
        raise FormatError(path, f"{len(raw) - header - expected} unexpected bytes after the "
                                f"{shape} IDX data", header + expected)
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header)
    return array.reshape(dims).astype(dtype.newbyteorder("="))
