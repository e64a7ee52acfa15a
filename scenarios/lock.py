"""One writer per run directory (or sweep directory): an exclusive ``flock`` on a lock file.

The writer holds ``fcntl.flock(LOCK_EX)`` on ``<dir>/.sflsim.lock`` for as long as it writes,
and writes its pid, host and start time into the file. A second writer fails at once with a
message naming the holder. The kernel releases the lock when the holding process dies
(``kill -9`` included), so a stale lock file never blocks a resume: only a live holder does.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from scenarios.overrides import ConfigError

LOCK_FILE = ".sflsim.lock"


def holder(directory: Path) -> str | None:
    """Who holds ``directory``'s lock now (``pid N on HOST since T``), or None if nobody.

    Creates nothing: a directory without a lock file has no holder.
    """
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"])) if "since" in info else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {since}"


class DirectoryLock:
    """The exclusive writer lock of one directory (a context manager).

    Args:
        directory: an existing directory.
        what: how messages call it (``run directory``, ``sweep directory``).

    Raises:
        ConfigError: another live process holds the lock (the message names it).
    """

    def __init__(self, directory: str | os.PathLike, what: str = "run directory") -> None:
        self.directory = Path(directory)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "DirectoryLock":
        path = self.directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"{self.what} {self.directory} is in use by {_describe(path)}; "
                              f"wait for it to finish or choose another --out") from None
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
