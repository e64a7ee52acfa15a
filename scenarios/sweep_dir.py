"""A sweep folder: what it may hold, and the one file of its own it writes (``sweep.parquet``).

A sweep writes only into a folder that is absent, empty, or a sweep folder, and replaces only
the ``sweep.parquet`` it wrote itself: ``sweep.json`` records that file's SHA-256 (written
first, with the previous hash, so a sweep killed between the two writes still knows its file).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from analysis.files import read_regular_bytes, sha256_hex
from scenarios import runcheck, rundir
from scenarios.lock import check_lock_path
from scenarios.overrides import ConfigError

SWEEP_TABLE = "sweep.parquet"
SWEEP_RECORD = "sweep.json"  # marks a sweep folder; holds the SHA-256 of the sweep.parquet it wrote
_SWEEP_NAMES = frozenset({SWEEP_TABLE, SWEEP_RECORD, runcheck.LOCK_FILE})


def _sweep_table_hashes(out: Path) -> list[str] | None:
    """The hashes ``sweep.json`` recorded for ``sweep.parquet`` (None: no sweep.json)."""
    if not os.path.lexists(out / SWEEP_RECORD):
        return None
    try:
        record = json.loads(read_regular_bytes(out / SWEEP_RECORD))
        hashes = record["sweep_parquet_sha256"]
        if record.get("format") != "sflsim-sweep-1" or not isinstance(hashes, list):
            raise ValueError("not a sweep record")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{out / SWEEP_RECORD} is not a sweep record sflsim wrote "
                          f"({' '.join(str(exc).split())[:80]}); nothing was written: choose another --out") from None
    return [str(h) for h in hashes]


def check_sweep_dir(out: Path) -> None:
    """``out`` is absent, empty, or a sweep folder whose ``sweep.parquet`` (if any) this
    project wrote; writes nothing.

    A sweep folder holds only grid-point folders (``key=value``), ``sweep.parquet``,
    ``sweep.json`` and the atomic writer's temporary files of those two. A folder from before
    ``sweep.json`` existed passes if it holds at least one grid point with a run.

    Raises:
        ConfigError: anything else, with one line naming what is in the way.
    """
    if not out.is_dir():
        return
    check_lock_path(out)
    names = runcheck.entries(out)
    foreign = [n for n in names if not ((out / n).is_dir() and not (out / n).is_symlink() and "=" in n)
               and not (n in _SWEEP_NAMES and (out / n).is_file() and not (out / n).is_symlink())
               and not runcheck.temp_of(n, _SWEEP_NAMES)]
    if foreign:
        raise ConfigError(f"--out {out} is not empty and is not a sweep directory ({', '.join(foreign[:3])}"
                          f"{', ...' if len(foreign) > 3 else ''}); nothing was written: choose another --out")
    hashes = _sweep_table_hashes(out)
    if os.path.lexists(out / SWEEP_TABLE):
        points = [n for n in names if "=" in n and os.path.lexists(out / n / rundir.CONFIG)
                  or any(os.path.lexists(out / n / s / rundir.CONFIG) for s in _seed_dirs(out / n))]
        ours = (hashes is not None and sha256_hex(read_regular_bytes(out / SWEEP_TABLE)) in hashes
                or hashes is None and points)
        if not ours:
            raise ConfigError(f"{out / SWEEP_TABLE} was not written by this sweep; it is not replaced: "
                              f"move it away or choose another --out")


def _seed_dirs(point: Path) -> list[str]:
    try:
        return [n for n in os.listdir(point) if n.startswith("seed=")]
    except (NotADirectoryError, FileNotFoundError):
        return []


def _write_table(out: Path, table: pd.DataFrame) -> None:
    """``sweep.parquet``, its hash recorded in ``sweep.json`` first (with the previous one, so a
    sweep killed between the two writes still knows the file it finds)."""
    data = rundir.parquet_bytes(pa.Table.from_pandas(table, preserve_index=False))  # as write_parquet
    previous = (_sweep_table_hashes(out) or [])[:1]
    rundir.write_json(out / SWEEP_RECORD, {"format": "sflsim-sweep-1",
                                           "sweep_parquet_sha256": [sha256_hex(data), *previous]})
    rundir.atomic_write_bytes(out / SWEEP_TABLE, data)
