"""What a folder must be before a run writes to it, and what a resume must match.

A run writes into ``--out`` only when the folder is absent, empty (but for a lock file), or
holds a run of this project: a ``config.json`` that :func:`scenarios.runner.config_record`
wrote, and either a checkpoint that loads and hash-checks or, for a run killed before its first
checkpoint, nothing but the files a run writes before it. Anything else (a user's folder, the
current folder with the user's files in it, a sweep or reproduction folder) is refused in one
line before one byte of it changes, with or without ``--resume``.

A resume also has to match what changes the bytes of a run beyond its config
(:func:`machine_record`: torch's thread count, the torch build and the CPU capability torch
dispatches to). A resume where one differs is **refused** (not warned about): the rest of the
run would not be the bytes an uninterrupted run gives, and the files would mix the two
silently. ``--threads`` fixes the thread count; for another torch build or CPU the run is
made again into a new ``--out``. Runs recorded before this check have no ``machine`` entry and
are resumed unchecked.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from analysis.files import NotRegularFileError, read_regular_bytes
from analysis.run_integrity import DamagedRunFileError, read_checked, recorded_hashes
from scenarios import rundir
from scenarios.lock import LOCK_FILE
from scenarios.overrides import ConfigError

TABLE_FILES = (rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL)
#: Every name a run writes at the top of its directory (``figures/`` is ``sflsim plot``'s).
RUN_NAMES = frozenset({rundir.CONFIG, rundir.CHECKPOINT, rundir.TOKEN_MAPS, LOCK_FILE, *TABLE_FILES,
                       *(t + rundir.PARTS_SUFFIX for t in TABLE_FILES)})
#: What a run killed before its first checkpoint may have written.
EARLY_NAMES = frozenset({rundir.CONFIG, rundir.TOKEN_MAPS, LOCK_FILE,
                         *(t + rundir.PARTS_SUFFIX for t in TABLE_FILES)})
_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]+\.tmp$")  # analysis.files.atomic_writer's names
_PART = re.compile(r"^part-\d{6}\.parquet$")
MACHINE_KEY = "machine"


def temp_of(name: str, known: frozenset[str] | set[str]) -> bool:
    """Whether ``name`` is a temporary file of the atomic writer for one of the ``known`` names."""
    m = _TEMP.match(name)
    return bool(m) and m["name"] in known


def entries(folder: Path) -> list[str]:
    """The names in ``folder`` but the lock file (empty if it does not exist)."""
    try:
        return sorted(n for n in os.listdir(folder) if n != LOCK_FILE)
    except FileNotFoundError:
        return []


def read_record(out: Path) -> dict:
    """``out/config.json``, which must be a regular file holding a record sflsim wrote.

    Raises:
        ConfigError: not a regular file, or JSON that is not a run record (not a run directory).
        scenarios.rundir.DamagedFileError: not JSON at all.
    """
    path = out / rundir.CONFIG
    try:
        data = read_regular_bytes(path)
    except NotRegularFileError as exc:
        raise ConfigError(f"{exc}; {out} is not used as a run directory") from None
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise rundir.DamagedFileError(f"{path} is damaged ({' '.join(str(exc).split())[:100]}); "
                                      f"the run cannot be resumed: delete {out} and run again") from None
    versions = record.get("versions") if isinstance(record, dict) else None
    if not (isinstance(record, dict) and isinstance(record.get("config"), dict)
            and isinstance(versions, dict) and "sflsim" in versions and "scenario" in record):
        raise ConfigError(f"--out {out}: its config.json was not written by sflsim, so it is not a run "
                          f"directory; nothing was written: choose another --out")
    return record


def refuse_foreign(out: Path, resume: bool) -> None:
    """Refuse a non-empty folder without ``config.json`` (a user's, a sweep's, the current one)."""
    names = entries(out)
    if names and not os.path.lexists(out / rundir.CONFIG):
        what = "the current folder" if out.resolve() == Path.cwd().resolve() else str(out)
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"{'--resume: ' if resume else ''}--out {what} is not empty ({shown}) and is not "
                          f"a run directory; nothing was written: choose another --out")


def check_unstarted(out: Path) -> None:
    """A run directory without a checkpoint holds only what a run writes before its first one
    (it is then started again from round 0, which replaces those files)."""
    foreign = []
    for name in entries(out):
        path = out / name
        if name in EARLY_NAMES and name.endswith(rundir.PARTS_SUFFIX) and path.is_dir() and not path.is_symlink():
            foreign += [f"{name}/{p}" for p in os.listdir(path) if not _ours_in_parts(path / p)]
        elif not (name in EARLY_NAMES and path.is_file() and not path.is_symlink() or temp_of(name, RUN_NAMES)):
            foreign.append(name)
    if foreign:
        raise ConfigError(f"--resume: {out} has a config.json but no checkpoint, and files a run does not "
                          f"write ({', '.join(sorted(foreign)[:3])}); it was not touched: choose another --out")


def _ours_in_parts(path: Path) -> bool:
    """A part or a part's temporary file, a regular file (not a link)."""
    m = _TEMP.match(path.name)
    named = bool(_PART.match(path.name) or (m and _PART.match(m["name"])))
    return named and path.is_file() and not path.is_symlink()


def machine_record(threads: int | None = None) -> dict[str, Any]:
    """What changes a run's bytes beyond its config: torch threads, torch build, CPU capability."""
    import torch

    return {"torch_threads": int(threads if threads is not None else torch.get_num_threads()),
            "torch": torch.__version__, "torch_git": torch.version.git_version,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def check_machine(out: Path, record: Mapping, threads: int | None = None) -> None:
    """Refuse a resume whose thread count, torch build or CPU capability differs from the run's.

    Raises:
        ConfigError: one line naming the value, the stored one and the current one.
    """
    stored = record.get(MACHINE_KEY)
    if not isinstance(stored, Mapping):
        return  # a run recorded before the check: nothing to compare
    now = machine_record(threads)
    for key, value in now.items():
        if key in stored and stored[key] != value:
            fix = (f"resume with --threads {stored[key]} (a sweep's --workers share the threads)"
                   if key == "torch_threads"
                   else f"run it again into a new --out with this {key.replace('_', ' ')}")
            raise ConfigError(f"--resume: {out} was run with {key}={stored[key]!r}, now {value!r}; the "
                              f"rest would not be the bytes of an uninterrupted run: {fix}")


def check_finished_files(out: Path, record: Mapping) -> None:
    """The joined files of a finished run match the hashes its ``config.json`` recorded.

    Raises:
        scenarios.rundir.DamagedFileError: a file differs, is missing, or is not a regular file.
    """
    for name in recorded_hashes(record):
        if name not in RUN_NAMES:
            raise rundir.DamagedFileError(f"{out / rundir.CONFIG} records a file {name!r} no run writes; "
                                          f"it is damaged: delete {out} and run again")
        try:
            read_checked(out, name, record)
        except (DamagedRunFileError, NotRegularFileError) as exc:
            raise rundir.DamagedFileError(str(exc)) from None
        except OSError as exc:
            raise rundir.DamagedFileError(f"{out / name}: {exc.strerror}; the run directory is damaged: "
                                          f"delete {out} and run again (same seed, same result)") from None


def fingerprint(out: Path) -> tuple:
    """The names, kinds, sizes and modification times at the top of ``out`` (but the lock),
    to see that nobody changed the folder between the checks and taking the lock."""
    result = []
    for name in entries(out):
        try:
            st = os.lstat(out / name)
        except FileNotFoundError:
            continue
        result.append((name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(result)


def check_name(name: str, what: str = "name") -> None:
    """A scenario name (or grid value) names one folder: no separator, not ``.`` or ``..``.

    Raises:
        ConfigError: it would place a run outside the chosen folder.
    """
    if any(c in name for c in ("/", "\\", "\0")) or name in (".", ".."):
        raise ConfigError(f"{what}={name!r}: must be one folder name (no '/', '\\', not '.' or '..'); "
                          f"it names the run directory, which must stay inside the chosen folder")


__all__ = ["RUN_NAMES", "read_record", "refuse_foreign", "check_unstarted", "machine_record",
           "check_machine", "check_finished_files", "fingerprint", "check_name", "temp_of", "entries"]
