"""Load the CIFAR "python version" batches without executing arbitrary code.

The CIFAR-10/100 python batches (``cifar-10-batches-py/data_batch_1`` ... ``test_batch``,
``cifar-100-python/train`` and ``test``; Krizhevsky 2009) are Python 2 pickles of a dict::

    {"batch_label": str, "labels" | "fine_labels" + "coarse_labels": list[int],
     "data": numpy uint8 array [N, 3072] (1024 red, 1024 green, 1024 blue, row-major), "filenames": list[str]}

A pickle can name any importable callable, so ``pickle.load`` on a downloaded file runs
whatever the file says. The project never does that. This module uses the "restricting
globals" approach of the Python documentation: the unpickler resolves only the few names a
numpy array needs and refuses every other one, so a tampered file fails with
``pickle.UnpicklingError`` instead of running code.

Allowed names:

- ``numpy.core.multiarray._reconstruct`` (and numpy 2's ``numpy._core.multiarray``), restricted to
  build a plain ``numpy.ndarray``;
- ``numpy.ndarray`` (only as the argument of ``_reconstruct``);
- ``numpy.dtype``, refusing any dtype that holds Python objects (object arrays would unpickle
  nested objects);
- ``_codecs.encode`` with the latin-1 codec only: protocol-2 pickles written by Python 3 store
  ``bytes`` this way.

Python 2 ``str`` values are decoded as latin-1, the encoding numpy needs for the raw array data.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from .errors import FormatError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct


def _reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}: only numpy.ndarray is allowed")
    return _np_reconstruct(np.ndarray, shape, _plain_dtype(typecode))


def _plain_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing numpy dtype {dtype}: it holds Python objects")
    return dtype


def _latin1_encode(text, encoding="latin1"):
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names in :data:`ALLOWED`."""

    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: not needed by a CIFAR batch") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent ids")


def load_cifar_batch(path: str | Path) -> dict:
    """Unpickle one CIFAR batch file with :class:`RestrictedUnpickler` and return its dict."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            obj = RestrictedUnpickler(f, encoding="latin1").load()
        except EOFError:
            raise FormatError(path, "pickle stream truncated", f.tell()) from None
        except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
                AttributeError, UnicodeDecodeError) as err:
            raise FormatError(path, f"not a valid CIFAR batch pickle ({err})", f.tell()) from None
    if not isinstance(obj, dict):
        raise FormatError(path, f"a CIFAR batch is a dict, this pickle holds {type(obj).__name__}")
    return obj
