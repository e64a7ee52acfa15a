"""Writing a run directory round by round: the tables' documented columns, one part per table
per round, the checkpoint after them, and at the end the joined tables with their hashes.

The column names and dtypes here are the run-directory format of ``docs/interfaces.md``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.files import read_regular_bytes, sha256_hex
from analysis.run_integrity import FILES_KEY
from scenarios import rundir
from scenarios.cells import table_columns

_ARROW = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_()}

EVENT_COLUMNS = {
    "round": "int64", "device": "int64", "step": "int64", "phase": "string",
    "start_s": "float64", "end_s": "float64", "bits": "float64", "rate_bps": "float64",
    "power_w": "float64", "bandwidth_hz": "float64", "energy_j": "float64", "flops": "float64",
    "tokens_kept": "int64", "snr_db": "float64", "completed": "bool", "reason": "string",
}
ROUND_COLUMNS = {
    "round": "int64", "time_s": "float64", "accuracy": "float64", "loss": "float64",
    "train_loss": "float64", "uplink_bits": "float64", "downlink_bits": "float64",
    "energy_j": "float64", "latency_s": "float64", "duration_s": "float64",
    "selected": "int64", "dropped": "int64", "ste": "float64", "ste_planned": "float64",
    "tokens_mean": "float64",
}
DECISION_COLUMNS = {
    "round": "int64", "device": "int64", "status": "string", "tokens": "int64",
    "bandwidth_hz": "float64", "power_w": "float64", "cut_layer": "int64", "bits_per_value": "int64", "latency_s": "float64",
    "energy_j": "float64", "aggregated": "bool", "reason": "string",
    "planned_gain_db": "float64", "max_power_w": "float64", "energy_budget_j": "float64",
    "uplink_energy_j": "float64", "planned_uplink_s": "float64", "uplink_s": "float64",
}
CHANNEL_COLUMNS = {
    "round": "int64", "time_s": "float64", "device": "int64", "x_m": "float64", "y_m": "float64",
    "speed_mps": "float64", "in_cell": "bool", "pathloss_db": "float64", "gain_db": "float64",
    "snr_db": "float64", "los": "bool",
}


TABLES = ((rundir.EVENTS, "events", EVENT_COLUMNS), (rundir.ROUNDS, "rounds", ROUND_COLUMNS),
          (rundir.DECISIONS, "decisions", DECISION_COLUMNS), (rundir.CHANNEL, "channel", CHANNEL_COLUMNS))


def frame(rows: list[dict], columns: Mapping[str, str]) -> pd.DataFrame:
    """Rows as a DataFrame with the documented columns, order and dtypes."""
    data = {name: [row.get(name) for row in rows] for name in columns}
    df = pd.DataFrame(data)
    for name, dtype in columns.items():
        if dtype == "string":
            df[name] = df[name].astype(object).where(df[name].notna(), "").astype(str)
        else:
            df[name] = df[name].astype(dtype)
    return df


def schema(columns: Mapping[str, str]) -> pa.Schema:
    """The Arrow schema of a table with the documented columns (typed even with no rows)."""
    return pa.schema([(name, _ARROW[dtype]) for name, dtype in columns.items()])


class RunWriter:
    """Writes a run directory round by round: one new part per table, then the checkpoint.

    Args:
        out: the run directory (exists; the caller holds its lock).
        hashes: each table's running hash of its parts so far (from the checkpoint on resume).
        token_maps: token-map examples already written (from the checkpoint on resume).
    """

    def __init__(self, out: Path, hashes: Mapping[str, str] | None = None, token_maps: int = 0) -> None:
        self.out = Path(out)
        self.hashes = {table: "" for table, _, _ in TABLES}
        self.hashes.update(hashes or {})
        self.token_maps = token_maps

    def write_round(self, cosim) -> None:
        """Append round ``cosim.round``'s rows of every table as new parts, then the checkpoint.

        The rows are taken out of ``cosim.trace`` (it holds one round at a time), so memory and
        time per round do not grow with the round index. The checkpoint goes last: if we die
        before it, the resumed run redoes this round and rewrites its parts with the same bytes.
        """
        out, trace, r = self.out, cosim.trace, cosim.round
        for table, attr, columns in TABLES:
            columns = table_columns(cosim.world, attr, columns)  # a multi-cell world adds its columns
            rows = getattr(trace, attr)
            sha = rundir.write_part(out, table, r, frame(rows, columns), schema(columns))
            self.hashes[table] = rundir.chain(self.hashes[table], sha)
            rows.clear()
        if len(trace.token_maps) != self.token_maps:
            self.token_maps = len(trace.token_maps)
            rundir.write_npz(
                out / rundir.TOKEN_MAPS,
                **{key: np.concatenate([m[key] for m in trace.token_maps]) for key in trace.token_maps[0]},
            )
        state = cosim.state_dict()
        state.pop("trace", None)
        state["token_maps"] = list(trace.token_maps)
        state["parts"] = dict(self.hashes)
        rundir.save_checkpoint(out / rundir.CHECKPOINT, state)

    def finish(self, rounds: int) -> None:
        """Join each table's parts (hash-checked against the checkpoint) into its one file,
        record the joined files' SHA-256 in ``config.json`` (``files``), then remove the parts.

        The parts go last: a finish killed before they are gone joins them again (same bytes);
        once they are gone, the recorded hashes are what the joined files are checked against.
        """
        record = json.loads(read_regular_bytes(self.out / rundir.CONFIG))
        files = dict(record.get(FILES_KEY) or {})
        for table, _, _ in TABLES:
            if (self.out / table).is_file():  # joined already (checked in prepare if recorded)
                files[table] = sha256_hex(read_regular_bytes(self.out / table))
            else:
                blobs = rundir.verified_parts(self.out, table, rounds, self.hashes[table])
                files[table] = sha256_hex(rundir.write_joined(self.out, table, blobs))
        if (self.out / rundir.TOKEN_MAPS).is_file():
            files[rundir.TOKEN_MAPS] = sha256_hex(read_regular_bytes(self.out / rundir.TOKEN_MAPS))
        if record.get(FILES_KEY) != files:
            rundir.write_json(self.out / rundir.CONFIG, {**record, FILES_KEY: files})
        for table, _, _ in TABLES:
            rundir.remove_parts(self.out, table)
