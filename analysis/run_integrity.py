"""A finished run's files are checked before they are used: content hash and table schema.

When a run finishes, the runner joins each table's per-round parts into one file and records
the SHA-256 of every joined table (and of ``token_maps.npz``) in ``config.json`` under
``files`` (``{"events.parquet": "<hex>", ...}``), so a finished run is checked as an
interrupted one is (whose parts carry a running hash in the checkpoint). Resume, ``plot`` and
``compare`` read the files through :func:`read_checked` / :func:`read_table`: a flipped byte,
a truncated file or one table copied over another is one line naming the file. Runs written
before the hashes were recorded have no ``files`` entry; their tables are still checked
against the schema (the columns that identify each table, with their kinds), which is also
how a table still in parts is checked.

Only files are read here (no simulator import), so ``analysis`` stays independent.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.files import read_regular_bytes, sha256_hex

FILES_KEY = "files"
PARTS_SUFFIX = ".parts"

#: Columns that identify each table and the kind each must have ("number", "text", "flag").
#: A subset of docs/interfaces.md: enough that no table passes for another.
IDENTIFYING_COLUMNS: dict[str, dict[str, str]] = {
    "events.parquet": {"round": "number", "device": "number", "phase": "text", "start_s": "number",
                       "end_s": "number", "bits": "number", "energy_j": "number"},
    "rounds.parquet": {"round": "number", "time_s": "number", "accuracy": "number",
                       "uplink_bits": "number", "energy_j": "number", "latency_s": "number"},
    "decisions.parquet": {"round": "number", "device": "number", "status": "text",
                          "tokens": "number", "bandwidth_hz": "number", "power_w": "number"},
    "channel.parquet": {"round": "number", "time_s": "number", "device": "number",
                        "gain_db": "number", "snr_db": "number"},
}


def table_exists(run_dir: Path, name: str) -> bool:
    """Whether table ``name`` is there, as one file or as a folder of parts (``lexists``: a
    named pipe or link in the table's place is there, and refused when read)."""
    return os.path.lexists(run_dir / name) or (run_dir / (name + PARTS_SUFFIX)).is_dir()


class DamagedRunFileError(ValueError):
    """A run's file differs from what the run wrote, or is not the table its name says."""


def _advice(run_dir: Path) -> str:
    return f"delete {run_dir} and run again (same seed, same result), or restore the file"


def recorded_hashes(config: Mapping) -> dict[str, str]:
    """The ``files`` hashes of a ``config.json`` (empty for a run that recorded none)."""
    files = config.get(FILES_KEY) if isinstance(config, Mapping) else None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, Mapping) else {}


def read_checked(run_dir: str | Path, name: str, config: Mapping) -> bytes:
    """The bytes of ``run_dir/name`` (a regular file), checked against the recorded hash.

    Raises:
        DamagedRunFileError: the content hash differs from the one the run recorded.
        analysis.files.NotRegularFileError: a named pipe, device or folder (not read).
        OSError: missing or unreadable.
    """
    run_dir = Path(run_dir)
    data = read_regular_bytes(run_dir / name)
    expected = recorded_hashes(config).get(name)
    if expected is not None and sha256_hex(data) != expected:
        raise DamagedRunFileError(f"{run_dir / name} differs from what the run wrote (content hash "
                                  f"mismatch); it was not used: {_advice(run_dir)}")
    return data


def check_schema(run_dir: str | Path, name: str, schema: pa.Schema) -> None:
    """``schema`` has the identifying columns of table ``name``, each of its kind.

    Raises:
        DamagedRunFileError: a column is missing or of another kind (one line naming the file).
    """
    wanted = IDENTIFYING_COLUMNS.get(name, {})
    where = Path(run_dir) / name
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise DamagedRunFileError(f"{where} is not a run's {name.removesuffix('.parquet')} table "
                                  f"(no column {', '.join(missing)}): {_advice(Path(run_dir))}")
    for column, kind in wanted.items():
        t = schema.field(column).type
        ok = {"number": pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t),
              "text": pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t),
              "flag": pa.types.is_boolean(t)}[kind]
        if not ok:
            raise DamagedRunFileError(f"{where}: column {column} is {t}, expected a {kind}; "
                                      f"{_advice(Path(run_dir))}")


def _table(data: bytes, where: Path, run_dir: Path) -> pa.Table:
    try:
        return pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DamagedRunFileError(f"{where} cannot be read as Parquet ({' '.join(str(exc).split())[:120]}); "
                                  f"{_advice(run_dir)}") from None


def read_table(run_dir: str | Path, name: str, config: Mapping) -> pd.DataFrame:
    """Table ``name`` of a run: its joined file (hash-checked), else its folder of parts in
    round order (each a regular file); schema-checked either way."""
    run_dir = Path(run_dir)
    path = run_dir / name
    parts = run_dir / (name + PARTS_SUFFIX)
    if path.is_file() or not parts.is_dir():
        table = _table(read_checked(run_dir, name, config), path, run_dir)
    else:
        files = sorted(parts.glob("part-*.parquet"))
        tables = [_table(read_regular_bytes(p), p, run_dir) for p in files]
        if not tables:
            raise DamagedRunFileError(f"{parts} holds no parts: {_advice(run_dir)}")
        try:
            table = pa.concat_tables(tables)
        except pa.ArrowInvalid as exc:
            raise DamagedRunFileError(f"{parts}: parts of different schemas ({exc}); {_advice(run_dir)}") from None
    check_schema(run_dir, name, table.schema)
    return table.to_pandas()


def figure_table(run_dir: str | Path, name: str, figure: str, needed: tuple[str, ...],
                 why_missing: str) -> pd.DataFrame:
    """Table ``name`` of a finished run for ``figure`` (config read, hash- and schema-checked),
    with every ``needed`` column; each problem is one :class:`MissingDataError` naming the figure.

    Args:
        why_missing: appended to the message when columns are missing (what run writes them).
    """
    from analysis.metrics import MissingDataError

    path = Path(run_dir) / name
    if not path.is_file():
        raise MissingDataError(figure, f"{run_dir}/{name} (not found)")
    try:
        config = json.loads(read_regular_bytes(Path(run_dir) / "config.json"))
        table = read_table(run_dir, name, config if isinstance(config, dict) else {})
    except (OSError, ValueError) as exc:
        raise MissingDataError(figure, " ".join(str(exc).split())) from None
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise MissingDataError(figure, f"{path}: column(s) {', '.join(missing)}{why_missing}")
    return table


__all__ = ["FILES_KEY", "figure_table", "PARTS_SUFFIX", "table_exists", "IDENTIFYING_COLUMNS", "DamagedRunFileError", "recorded_hashes",
           "read_checked", "check_schema", "read_table"]
