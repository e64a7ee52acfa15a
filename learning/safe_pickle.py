"""Reading CIFAR's "python version" batches without running code from them.

The official CIFAR-10/100 batches (https://www.cs.toronto.edu/~kriz/cifar.html) are Python 2
``cPickle`` files (protocol 2) of one dict: ``bytes`` keys, ``bytes`` values (batch label), lists
of ``int`` (labels) and of ``bytes`` (file names), and one ``uint8`` numpy array of shape
[N, 3072] (``data``). A pickle can name any importable callable and have it called while it is
read, so a folder of batches from a mirror or a colleague could run anything. Here the
unpickler resolves only the globals numpy's array reconstruction needs (``_reconstruct``,
``ndarray``, ``dtype``; plus numpy's ``scalar``, which NumPy uses for a label list of numpy
integers), from a fixed table, never by importing a module the file names; anything else is
refused in one line naming the file and the global, before it is called. The loaded value is
then checked to hold only those types, and no array of Python objects.
"""
from __future__ import annotations

import io
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np
try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1
    from numpy.core import multiarray as _multiarray


class UnsafePickleError(ValueError):
    """A pickle asks for something a CIFAR batch never holds (it was not loaded)."""


def _array_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise UnsafePickleError("an array of Python objects")
    return dt


def _dtype(*args: Any) -> np.dtype:
    # ``numpy.dtype`` as a pickle calls it: dtype(spec, align, copy)
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UnsafePickleError("a dtype of Python objects")
    return dt


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy's ``_reconstruct(ndarray, (0,), b"b")`` makes an empty array that BUILD then fills.
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"an array of type {subtype!r}")
    return _multiarray._reconstruct(np.ndarray, shape, _array_dtype(dtype))


def _scalar(dtype: Any, *args: Any) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("a numpy scalar of Python objects")
    return _multiarray.scalar(dtype, *args)


#: (module, name) as the pickle names them -> what is called. numpy 1 wrote ``numpy.core``,
#: numpy 2 writes ``numpy._core``; Python 2's cPickle wrote the same names.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
}


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` (never imports what the file names)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"it asks for {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("it holds a persistent reference")


def _check(value: Any, depth: int = 0) -> None:
    """``value`` holds only dicts, lists, tuples, bytes, str, numbers and numeric arrays."""
    if depth > 20:
        raise UnsafePickleError("it is nested deeper than a CIFAR batch")
    if isinstance(value, (bytes, str, int, float, bool)) or value is None:
        return
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise UnsafePickleError("it holds an array of Python objects")
        return
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check(k, depth + 1)
            _check(v, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check(v, depth + 1)
        return
    raise UnsafePickleError(f"it holds a {type(value).__name__}")


def load_cifar_batch(path: str | os.PathLike) -> Any:
    """Load one CIFAR "python version" batch file, running no code from it.

    Args:
        path: a regular file (a named pipe or device is refused before it is opened for good).

    Returns:
        The batch as the official file holds it (``bytes`` keys, as ``encoding="bytes"``).

    Raises:
        UnsafePickleError: the file asks for anything but the official layout's types (nothing
            it names was called), or is not a regular file, or is not a pickle at all.
    """
    path = Path(path)
    advice = ("a CIFAR python batch holds only dicts, lists, bytes, str, int and uint8 arrays; "
              "re-download it from https://www.cs.toronto.edu/~kriz/cifar.html")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: a device may act on open
            raise UnsafePickleError(f"{path} is not a regular file; it was not read")
        # O_NONBLOCK: a named pipe swapped in meanwhile must not block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePickleError(f"{path} is not a regular file; it was not read")
            data = fh.read()
    except OSError as exc:
        raise UnsafePickleError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        value = CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
        _check(value)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path} was refused, not loaded: {exc} ({advice})") from None
    except Exception as exc:  # truncated or not a pickle: pickle raises many types
        why = " ".join(str(exc).split())[:100] or type(exc).__name__
        raise UnsafePickleError(f"{path} is not a CIFAR python batch ({why}); {advice}") from None
    return value
