"""Atomic file writes: the one implementation every writer of the package uses.

A file is written to a temporary file in the same folder, flushed and fsynced, and renamed over
the target (``os.replace``, atomic on POSIX within one file system). A reader, or a run resumed
after ``kill -9``, sees the old file or the new one, never half of one. Temporary files are
named ``.<name>.<random>.tmp`` so a writer can remove stale ones.

Reading is the other edge: :func:`read_regular_bytes` reads only regular files, so a named
pipe put where a config, checkpoint or table should be is refused at once instead of blocking.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary file handle whose content replaces ``path`` when the block ends.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None and exc.strerror:  # write() says "disk full", not which file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


class NotRegularFileError(ValueError):
    """A file that should hold data is a named pipe, device, socket or folder (not read)."""


_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of ``path``, which must be a regular file (a symbolic link to one is fine).

    A named pipe would block the reader forever and a device may act when opened, so both are
    refused before they are opened (``stat``), and again after (``fstat`` of the descriptor,
    opened with ``O_NONBLOCK``), in case the file was swapped in between.

    Raises:
        NotRegularFileError: ``path`` is a named pipe, device, socket or folder (one line).
        OSError: it cannot be read (missing, no permission).
    """
    path = Path(path)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(f"{path} is {_kind(mode)}, not a regular file; it was not read")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"{path} is {_kind(mode)}, not a regular file; it was not read")
        return fh.read()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data``, hex (the content hash recorded for a run's files)."""
    return hashlib.sha256(data).hexdigest()
