"""Summary of one run and comparison across runs, as DataFrames and as Markdown.

The numbers are defined in :mod:`analysis.metrics`. Frames keep SI base units in the column
names (``total_uplink_bits``, ``energy_per_device_j``, ``latency_p95_s``); the Markdown tables
rescale to readable units (Mbit, mJ, %) and say so in the header. Markdown is written here,
without ``tabulate`` (which pandas' ``to_markdown`` would need).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis import metrics
from analysis.metrics import require
from analysis.style import si_scale
from analysis.traces import Run, as_runs

# Columns of comparison_table, in order.
COLUMNS = (
    "label", "scenario", "policy", "seed", "rounds", "final_accuracy", "total_uplink_bits",
    "energy_per_device_j", "compute_energy_per_device_j", "transmit_energy_per_device_j",
    "latency_mean_s", "latency_p95_s", "deadline_misses", "miss_rate", "dropped", "ste_mean",
    "tokens_mean", "sim_time_s",
)


def run_metrics(run: Run, label: str | None = None) -> dict[str, Any]:
    """Every number of the summary of one run, keyed as in :data:`COLUMNS`.

    Raises:
        MissingDataError: a needed column is absent (figure name ``"summary"``).
    """
    require(run.rounds, ("round", "accuracy", "uplink_bits", "latency_s", "time_s"), "summary",
            "rounds.parquet")
    require(run.events, ("round", "device", "phase", "energy_j", "reason", "end_s"),
            "summary", "events.parquet")
    ev, rounds = run.events, run.rounds
    n_dev = metrics.num_devices(ev)
    split = metrics.energy_split_j(ev)
    misses, miss_rate = metrics.deadline_misses(ev)
    lat_mean, lat_p95 = metrics.latency_stats_s(rounds)
    trained = metrics.trained_rounds(rounds)
    return {
        "label": run.label if label is None else label,
        "scenario": run.scenario,
        "policy": run.policy,
        "seed": run.config.get("seed"),
        "rounds": int(len(trained)),
        "final_accuracy": metrics.final_accuracy(rounds),
        "total_uplink_bits": float(rounds["uplink_bits"].fillna(0.0).sum()),
        "energy_per_device_j": metrics.energy_per_device_j(ev),
        "compute_energy_per_device_j": split["compute"] / n_dev if n_dev else float("nan"),
        "transmit_energy_per_device_j": split["transmit"] / n_dev if n_dev else float("nan"),
        "latency_mean_s": lat_mean,
        "latency_p95_s": lat_p95,
        "deadline_misses": misses,
        "miss_rate": miss_rate,
        "dropped": int(rounds["dropped"].fillna(0).sum()) if "dropped" in rounds else None,
        "ste_mean": metrics.mean_trained(rounds, "ste") if "ste" in rounds else float("nan"),
        "tokens_mean": (metrics.mean_trained(rounds, "tokens_mean")
                        if "tokens_mean" in rounds else float("nan")),
        "sim_time_s": float(rounds["time_s"].max()) if len(rounds) else float("nan"),
    }


def comparison_table(runs) -> pd.DataFrame:
    """One row per run (columns :data:`COLUMNS` plus the swept keys), in the order given."""
    runs = as_runs(runs)
    rows = [run_metrics(run, label) for run, label in zip(runs, runs.labels)]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for key in runs.sweep_keys:
        if key not in table.columns:
            table[key] = runs.meta[key].to_numpy()
    return table


def summary_table(run: Run) -> pd.DataFrame:
    """The summary of one run as a two-column frame ``quantity, value`` (units in the names)."""
    values = run_metrics(run)
    return pd.DataFrame({"quantity": list(values), "value": list(values.values())})


# --------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (numbers right-aligned, ``digits``
    significant digits, NaN as an en dash, ``|`` in text escaped)."""
    header = [str(c).replace("|", "\\|") for c in frame.columns]
    body = [[_fmt(v, digits).replace("|", "\\|") for v in row]
            for row in frame.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if num else c.ljust(w)
                                 for c, w, num in zip(cells, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else (":" + "-" * (w + 1))
                          for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in body]) + "\n"


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """``comparison_table`` with readable units in the headers (%, Mbit, mJ, ...), for print."""
    acc = table["final_accuracy"].to_numpy(dtype=float)
    acc_factor = 100.0 if np.all(~np.isfinite(acc) | (acc <= 1.0)) else 1.0
    bits_f, bits_p = si_scale(table["total_uplink_bits"])
    energy_f, energy_p = si_scale(table["energy_per_device_j"])
    out = pd.DataFrame({
        "run": table["label"],
        "rounds": table["rounds"],
        "final acc. [%]": table["final_accuracy"] * acc_factor,
        f"uplink [{bits_p}bit]": table["total_uplink_bits"] / bits_f,
        f"energy/device [{energy_p}J]": table["energy_per_device_j"] / energy_f,
        f"transmit/device [{energy_p}J]": table["transmit_energy_per_device_j"] / energy_f,
        "latency mean [s]": table["latency_mean_s"],
        "latency p95 [s]": table["latency_p95_s"],
        "misses": table["deadline_misses"],
        "miss rate [%]": table["miss_rate"] * 100.0,
        "STE mean [1/s]": table["ste_mean"],
    })
    return out


def compare_markdown(runs) -> str:
    """The comparison table of ``runs`` as Markdown, with the definitions below it."""
    table = comparison_table(runs)
    return to_markdown(readable_table(table), digits=4) + _FOOTNOTE


_FOOTNOTE = (
    "\nFinal accuracy: last evaluated round. Energy per device: device energy (all phases) over "
    "the devices that took part; transmit = uplink + adapter uplink. Latency over trained "
    "rounds (p95: linear interpolation). Misses: (round, device) pairs with a phase past the "
    "deadline. STE: mean over trained rounds.\n"
)


def summary_markdown(run: Run) -> str:
    """The summary of one run as Markdown: what was run, then the numbers."""
    head = [("scenario", run.scenario), ("policy", run.policy),
            ("seed", run.config.get("seed"))]
    head += [(f"sweep: {k}", v) for k, v in run.sweep.items() if k != "policy"]
    for key in ("rounds", "devices", "deadline_s"):
        if key not in run.sweep and run.value(key) is not None:
            head.append((f"config: {key}", run.value(key)))
    table = readable_table(comparison_table(run))
    rows = head + [(col, table[col].iloc[0]) for col in table.columns if col != "run"]
    frame = pd.DataFrame({"quantity": [r[0] for r in rows],
                          "value": [_fmt(r[1]) if not isinstance(r[1], str) else r[1]
                                    for r in rows]})
    return f"# {run.label}\n\n`{run.path}`\n\n" + to_markdown(frame) + _FOOTNOTE

