"""Load the CIFAR "python version" batches without executing arbitrary code.

The CIFAR-10/100 python batches (``cifar-10-batches-py/data_batch_1`` ... ``test_batch``,
``cifar-100-python/train`` and ``test``; Krizhevsky 2009) are Python 2 pickles of a dict::

    {"batch_label": str, "labels" | "fine_labels" + "coarse_labels": list[int],
     "data": numpy uint8 array [N, 3072] (1024 red, 1024 green, 1024 blue, row-major), "filenames": list[str]}

A pickle can name any importable callable, so ``pickle.load`` on a downloaded file runs
whatever the file says. The project never does that. This module uses the "restricting
globals" approach of the Python documentation: the unpickler resolves only the few names a
numpy array needs and refuses every other one, so a tampered file fails with
:class:`~zoo.data.errors.FormatError` instead of running code.

Allowed names, each resolved to a stand-in of this module, never to numpy itself:

- ``numpy.core.multiarray._reconstruct`` (and numpy 2's ``numpy._core.multiarray``) with
  ``numpy.ndarray`` as its class: gives an :class:`ArrayStandIn`;
- ``numpy.dtype``: gives a :class:`DTypeStandIn`, for plain bool, integer and float types only
  (no object, string, structured or sub-array dtypes);
- ``_codecs.encode`` with the latin-1 codec only: protocol-2 pickles written by Python 3 store
  ``bytes`` this way.

The stand-ins receive the pickle's ``BUILD`` state in their ``__setstate__``, check it, and only
then build the array with ``numpy.frombuffer`` from bytes that are in the file: numpy's own
``ndarray.__setstate__`` is never called with data from the file (it allocates whatever shape it
is given, so a 20-byte pickle could ask for 2^60 bytes).

Allocations are bounded by the file size: the file (at most :data:`MAX_BATCH_BYTES`) is read
whole, and its opcodes are scanned with :mod:`pickletools` before unpickling, which checks
every length field against the bytes that remain and refuses memo indices beyond the number of
objects stored so far (the C unpickler would otherwise allocate a string, or a memo table, of
the size the file claims); a ``GLOBAL`` naming anything outside the allowed names is refused
there already. Bytes after the pickle's STOP opcode are refused.

Python 2 ``str`` values are decoded as latin-1, the encoding numpy needs for the raw array data.
"""

from __future__ import annotations

import codecs
import io
import math
import pickle
import pickletools
from pathlib import Path

import numpy as np

from .errors import FormatError
from .files import read_file

MAX_BATCH_BYTES = 512 << 20  # three times the largest official file, cifar-100-python/train (155 MB)
MAX_NDIM = 32
PLAIN_KINDS = "biuf"  # bool, signed and unsigned integers, floats
MAX_NESTING = 4  # a CIFAR batch is a dict of lists, arrays and strings
MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
UNPICKLING_ERRORS = (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
                     AttributeError, UnicodeDecodeError, OverflowError, EOFError, RecursionError)


def brief(value) -> str:
    """A short description of a value from the file for an error message: small strings and
    numbers as they are, anything else by its type (its repr could be huge, or recurse without
    end for a deeply nested list)."""
    if isinstance(value, (str, bytes)):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, (bool, float)) or value is None or (isinstance(value, int) and abs(value) < 10**30):
        return repr(value)
    if isinstance(value, tuple) and len(value) <= 8 and all(type(v) is int and abs(v) < 10**30 for v in value):
        return repr(value)
    return f"a {type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")


class DTypeStandIn:
    """What ``numpy.dtype(code, align, copy)`` gives inside a pickle: a plain numpy dtype that the
    ``BUILD`` state may only give a byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code, align=False, copy=False):
        if not isinstance(code, str):
            raise pickle.UnpicklingError(f"refusing numpy dtype {brief(code)}: only type codes are allowed")
        try:
            dtype = np.dtype(code)
        except (TypeError, ValueError):
            raise pickle.UnpicklingError(f"unknown numpy type code {brief(code)}") from None
        if dtype.kind not in PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            why = "it holds Python objects" if dtype.hasobject else "not a plain number type"
            raise pickle.UnpicklingError(f"refusing numpy dtype {dtype}: {why} (only bool, integer "
                                         "and float dtypes are allowed)")
        self.dtype = dtype

    def __setstate__(self, state):
        """numpy's dtype state ``(version, byteorder, subarray, names, fields, elsize, alignment,
        flags[, metadata])``: only the byte order is used; the rest must be that of a plain type."""
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise pickle.UnpicklingError(f"unexpected numpy dtype state ({brief(state)})")
        order, subarray, names, fields = state[1:5]
        if order not in ("<", ">", "|", "=") or (subarray, names, fields) != (None, None, None):
            raise pickle.UnpicklingError(f"refusing numpy dtype state with byte order {brief(order)}, "
                                         "sub-array, names or fields: only plain types")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class ArrayStandIn:
    """What ``_reconstruct(ndarray, shape, typecode)`` gives inside a pickle: an empty placeholder
    whose ``BUILD`` state ``(version, shape, dtype, is_fortran, raw bytes)`` becomes the array."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError(f"unexpected numpy array state ({brief(state)})")
        shape, dtype, fortran, raw = state[-4:]
        shape = checked_shape(shape)
        if not isinstance(dtype, DTypeStandIn):
            raise pickle.UnpicklingError(f"numpy array state names {type(dtype).__name__}, not a dtype")
        if isinstance(raw, str):  # a Python 2 str, decoded as latin-1 by the unpickler
            raw = raw.encode("latin1")
        if not isinstance(raw, bytes):
            raise pickle.UnpicklingError(f"numpy array data is {type(raw).__name__}, expected bytes")
        needed = math.prod(shape) * dtype.dtype.itemsize
        if len(raw) != needed:
            raise pickle.UnpicklingError(f"numpy array data holds {len(raw)} bytes, its shape "
                                         f"{shape} of {dtype.dtype} needs {needed}")
        array = np.frombuffer(raw, dtype.dtype).reshape(shape, order="F" if fortran else "C")
        self.array = array.astype(dtype.dtype.newbyteorder("="))  # a writable, native-endian copy


def checked_shape(shape) -> tuple[int, ...]:
    """An array shape from the file: a tuple of at most MAX_NDIM non-negative ints."""
    if not isinstance(shape, tuple) or len(shape) > MAX_NDIM or not all(
            type(n) is int and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"invalid numpy array shape ({brief(shape)})")
    return shape


class _NDArrayClass:
    """Stands for ``numpy.ndarray``: only accepted as the class argument of ``_reconstruct``."""

    __slots__ = ()


NDARRAY = _NDArrayClass()


def reconstruct(cls, shape, typecode) -> ArrayStandIn:
    """``numpy.core.multiarray._reconstruct``: an empty :class:`ArrayStandIn`."""
    if cls is not NDARRAY:
        raise pickle.UnpicklingError(f"refusing to reconstruct {brief(cls)}: only numpy.ndarray is allowed")
    checked_shape(shape)
    DTypeStandIn(typecode.decode("latin1") if isinstance(typecode, bytes) else typecode)
    return ArrayStandIn()


def latin1_encode(text, encoding="latin1") -> bytes:
    """``_codecs.encode``, for the latin-1 codec only."""
    if not isinstance(text, str) or not isinstance(encoding, str):
        raise pickle.UnpicklingError("_codecs.encode needs a str and an encoding name")
    try:
        latin1 = codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        latin1 = False
    if not latin1:
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {brief(encoding)}")
    return text.encode("latin1")


def allowed_names() -> dict:
    """The names a CIFAR batch may use, as fresh functions for each load: a pickle's BUILD opcode
    can set attributes of a Python function it holds (``__defaults__``, ...), and such a change
    must not outlive the load that made it."""
    def _reconstruct(cls, shape, typecode):
        return reconstruct(cls, shape, typecode)

    def dtype(code, align=False, copy=False):
        return DTypeStandIn(code, align, copy)

    def encode(text, encoding="latin1"):
        return latin1_encode(text, encoding)

    return {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): NDARRAY,
            ("numpy", "dtype"): dtype,
            ("_codecs", "encode"): encode}


ALLOWED = tuple(allowed_names())  # the (module, name) pairs a CIFAR batch may name


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names in :data:`ALLOWED`.

    Use :func:`load_cifar_batch`, which also scans the opcodes first and turns the stand-ins
    into arrays.
    """

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self.allowed = allowed_names()

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: not needed by a CIFAR batch") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent ids")


def scan_opcodes(path: Path, data: bytes) -> None:
    """Check the pickle's structure before the C unpickler sees it (see the module docstring)."""
    stream, stored, position, next_opcode = io.BytesIO(data), 0, 0, 0
    try:
        for opcode, arg, position in pickletools.genops(stream):
            check_opcode(path, opcode.name, arg, position, stored, len(data))
            stored += opcode.name in MEMO_PUTS
            next_opcode = stream.tell()
    except ValueError as err:  # genops: unknown opcode, truncated argument, no STOP
        if isinstance(err, FormatError):
            raise
        raise FormatError(path, f"not a valid pickle ({err})", next_opcode) from None
    end = position + 1
    if end != len(data):
        raise FormatError(path, f"{len(data) - end} unexpected bytes after the pickle's STOP opcode",
                          end)


def check_opcode(path: Path, name: str, arg, position: int, stored: int, size: int) -> None:
    """Refuse one opcode that would name a global outside :data:`ALLOWED`, store a memo entry far
    beyond those stored so far (``stored``), or announce a frame longer than the file."""
    if name in ("GLOBAL", "INST") and tuple(arg.split(" ", 1)) not in ALLOWED:
        raise FormatError(path, f"refusing to load global {arg.replace(' ', '.')}: not needed by a "
                                "CIFAR batch", position)
    if name in MEMO_PUTS:
        index = stored if name == "MEMOIZE" else arg
        if not 0 <= index <= stored + 1:  # Python 3 numbers entries from 0, Python 2 cPickle from 1
            raise FormatError(path, f"pickle memo index {index} after {stored} stored objects", position)
    if name == "FRAME" and arg > size - position:
        raise FormatError(path, f"pickle frame of {arg} bytes, only {size - position} remain", position)


def resolve(obj, path: Path, depth: int = 0):
    """``obj`` with every :class:`ArrayStandIn` replaced by its array (containers are rebuilt)."""
    if isinstance(obj, ArrayStandIn):
        if obj.array is None:
            raise FormatError(path, "a numpy array in the pickle has no data (no BUILD state)")
        return obj.array
    if isinstance(obj, DTypeStandIn):
        raise FormatError(path, "a bare numpy dtype is not CIFAR batch content")
    if isinstance(obj, (dict, list, tuple)) and depth >= MAX_NESTING:
        raise FormatError(path, f"containers nested more than {MAX_NESTING} deep: not a CIFAR batch")
    if isinstance(obj, dict):
        return {key: resolve(value, path, depth + 1) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(resolve(value, path, depth + 1) for value in obj)
    return obj


def load_cifar_batch(path: str | Path, max_bytes: int = MAX_BATCH_BYTES) -> dict:
    """Unpickle one CIFAR batch file safely (see the module docstring) and return its dict."""
    path = Path(path)
    data = read_file(path, max_bytes, "CIFAR batch")
    scan_opcodes(path, data)
    stream = io.BytesIO(data)
    try:
        obj = RestrictedUnpickler(stream, encoding="latin1").load()
    except UNPICKLING_ERRORS as err:
        raise FormatError(path, f"not a valid CIFAR batch pickle ({err})", stream.tell()) from None
    if not isinstance(obj, dict):
        raise FormatError(path, f"a CIFAR batch is a dict, this pickle holds {type(obj).__name__}")
    return resolve(obj, path)
