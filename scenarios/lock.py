"""One writer per run directory (or sweep directory): an exclusive ``flock`` on a lock file.

The writer holds ``fcntl.flock(LOCK_EX)`` on ``<dir>/.sflsim.lock`` for as long as it writes,
and writes its pid, host and start time into the file. A second writer fails at once with a
message naming the holder. The kernel releases the lock when the holding process dies
(``kill -9`` included), so a stale lock file never blocks a resume: only a live holder does.

The lock file cannot be turned into a weapon: it is opened with ``O_NOFOLLOW`` (a symbolic link
planted at ``.sflsim.lock`` is refused, never written through), only a regular file with one
link is used (a named pipe, device or hard link to another file is refused), and an existing
file is overwritten only when it holds what a lock file holds (empty, or this module's JSON).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
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
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # not a lock of ours; :meth:`DirectoryLock.acquire` refuses it
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_lock_path(directory: str | os.PathLike) -> None:
    """Refuse a ``.sflsim.lock`` that is a symbolic link or not a regular file (writes nothing).

    Raises:
        ConfigError: one line naming the path and what it is.
    """
    path = Path(directory) / LOCK_FILE
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be checked ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{path} is a symbolic link; sflsim never writes through one "
                          f"(it could clobber another file): remove it")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} is not a regular file; sflsim does not use it as its lock: remove it")
    if st.st_nlink != 1:
        raise ConfigError(f"{path} is a hard link to another file ({st.st_nlink} names); "
                          f"sflsim does not write into it: remove it")


_MAX_LOCK_BYTES = 4096


def _read_lock(fd: int) -> tuple[dict, bool]:
    """The lock file's JSON and whether it is ours to overwrite (empty or our three keys)."""
    data = os.pread(fd, _MAX_LOCK_BYTES + 1, 0)
    if not data.strip():
        return {}, True
    try:
        info = json.loads(data) if len(data) <= _MAX_LOCK_BYTES else None
    except ValueError:
        info = None
    if isinstance(info, dict) and set(info) <= {"pid", "host", "since"}:
        return info, True
    return {}, False


def _describe(fd: int) -> str:
    info, _ = _read_lock(fd)
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
        """Take the lock (creating the lock file if need be; never following a link).

        Raises:
            ConfigError: another process holds it, or the lock path is a symbolic link, a hard
                link, not a regular file, or a file that is not an sflsim lock (nothing written).
        """
        path = self.directory / LOCK_FILE
        check_lock_path(self.directory)  # before opening: opening a device may act on it
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # swapped for a link since the check
                check_lock_path(self.directory)
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                check_lock_path(self.directory)
                raise ConfigError(f"{path} is not a regular file of its own; sflsim does not use it: remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{self.what} {self.directory} is in use by {_describe(fd)}; "
                                  f"wait for it to finish or choose another --out") from None
            _, ours = _read_lock(fd)
            if not ours:
                raise ConfigError(f"{path} holds something else than an sflsim lock; it was not "
                                  f"overwritten: move it away or choose another --out")
        except BaseException:
            os.close(fd)  # also drops the flock, if taken
            raise
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
