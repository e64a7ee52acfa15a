"""Summary of one run and comparison across runs, as DataFrames and as Markdown.

The numbers are defined in :mod:`analysis.metrics`. Frames keep SI base units in the column
names (``total_uplink_bits``, ``energy_per_device_j``, ``latency_p95_s``); the Markdown tables
rescale to readable units (Mbit, mJ, %) and say so in the header. Markdown is written here,
without ``tabulate`` (which pandas' ``to_markdown`` would need).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from analysis import metrics
from analysis.metrics import require
from analysis.stats import format_interval, seed_summary
from analysis.style import si_scale
from analysis.traces import Run, as_runs, load_runs, make_labels, settings

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



# --------------------------------------------------------------------------------------------
# Configurations over seeds: mean ± Student-t interval, paired differences to a baseline

# Per-run metrics summarised over seeds: column, header, unit kind ("acc", "bits", "j", "s", "n").
SEED_METRICS = (
    ("final_accuracy", "final acc.", "acc"),
    ("time_to_target_s", "time to target", "s"),
    ("total_uplink_bits", "uplink", "bits"),
    ("energy_per_device_j", "energy/device", "j"),
    ("latency_mean_s", "latency mean", "s"),
    ("deadline_misses", "deadline misses", "n"),
)
_NOT_CONFIG = {"seed", "cache_dir", "data_root", "policy_label", "scenario_source"}


def time_to_accuracy_s(rounds: pd.DataFrame, target: float) -> float:
    """Simulated time [s] at the end of the first round whose accuracy reaches ``target``
    (NaN if none does)."""
    ordered = rounds.sort_values("round", kind="stable")
    hit = ordered[ordered["accuracy"] >= target]
    return float(hit["time_s"].iloc[0]) if len(hit) else float("nan")


def config_labels(runs) -> list[str]:
    """One label per run naming its configuration: runs whose settings differ only by the seed
    get the same label, other runs different ones."""
    runs = as_runs(runs)
    keys = [repr(sorted((k, repr(v)) for k, v in settings(run.config).items()
                        if k not in _NOT_CONFIG)) for run in runs]
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    reps = sorted(set(first.values()))
    names = make_labels([runs.runs[i].config for i in reps], exclude=["seed"])
    label_of = {keys[i]: name for i, name in zip(reps, names)}
    return [label_of[k] for k in keys]


def seed_runs_table(runs, target_accuracy: float | None = None) -> tuple[pd.DataFrame, float]:
    """One row per run: ``config`` (label without the seed), ``seed`` and the metrics of
    :data:`SEED_METRICS`; runs with the same settings but the seed share ``config``.

    Args:
        runs: runs or directories (see :func:`analysis.traces.as_runs`).
        target_accuracy: accuracy (fraction) for ``time_to_target_s``; default 90 % of the best
            configuration's mean final accuracy.

    Returns:
        (table, the target accuracy used).
    """
    runs = as_runs(runs)
    rows = []
    for run, name in zip(runs, config_labels(runs)):
        m = run_metrics(run)
        rows.append({"config": name, "policy": run.policy, "seed": m["seed"],
                     **{c: m[c] for c, _, _ in SEED_METRICS if c in m}, "_run": run})
    table = pd.DataFrame(rows)
    if target_accuracy is None:
        best = table.groupby("config", sort=False)["final_accuracy"].mean().max()
        target_accuracy = 0.9 * float(best) if np.isfinite(best) else float("nan")
    table["time_to_target_s"] = [time_to_accuracy_s(r.rounds, target_accuracy) for r in table["_run"]]
    return table.drop(columns="_run"), float(target_accuracy)


def resolve_baseline(table: pd.DataFrame, name: str) -> str:
    """The configuration ``name`` means: its label, or a policy name with one configuration.

    Raises:
        ValueError: ``name`` matches no configuration, or a policy with several.
    """
    configs = list(dict.fromkeys(table["config"]))
    if name in configs:
        return name
    lower = [c for c in configs if c.lower() == name.lower()]
    by_policy = list(dict.fromkeys(table.loc[table["policy"] == name, "config"]))
    for match in (lower, by_policy):
        if len(match) == 1:
            return match[0]
    raise ValueError(f"--baseline must name one configuration ({', '.join(configs)}), got {name!r}")


def seed_comparison(runs, baseline: str | None = None, target_accuracy: float | None = None):
    """Configurations over seeds: (summary frame of :func:`analysis.stats.seed_summary`, per-run
    table, target accuracy, baseline configuration or None)."""
    table, target = seed_runs_table(runs, target_accuracy)
    base = resolve_baseline(table, baseline) if baseline is not None else None
    metrics_ = [c for c, _, _ in SEED_METRICS]
    summary = seed_summary(table, ["config"], metrics_, baseline=base)
    reached = table.groupby("config", sort=False)["time_to_target_s"].apply(lambda s: int(s.notna().sum()))
    summary["reached"] = summary["config"].map(reached)
    return summary, table, target, base


def _scales(summary: pd.DataFrame) -> dict[str, tuple[float, str]]:
    acc = summary["final_accuracy"].to_numpy(dtype=float)
    pct = bool(np.all(~np.isfinite(acc) | (acc <= 1.0)))
    bits_f, bits_p = si_scale(summary["total_uplink_bits"])
    j_f, j_p = si_scale(summary["energy_per_device_j"])
    return {"acc": (0.01 if pct else 1.0, "%"), "bits": (bits_f, f"{bits_p}bit"),
            "j": (j_f, f"{j_p}J"), "s": (1.0, "s"), "n": (1.0, "")}


def seed_markdown(summary: pd.DataFrame, target: float, baseline: str | None = None) -> str:
    """The tables of :func:`seed_comparison` as Markdown, with what the ± means."""
    scales = _scales(summary)
    n_max = int(summary["seeds"].max())
    pct = scales["acc"][0] == 0.01
    target_text = f"{target * 100:.1f} %" if pct else f"{target:.3g}"

    def header(col: str, title: str, kind: str, diff: bool = False) -> str:
        unit = "pp" if diff and kind == "acc" else scales[kind][1]
        if col == "time_to_target_s":
            title = f"time to {target_text}"
        return f"{'Δ ' if diff else ''}{title}" + (f" [{unit}]" if unit else "")

    def cell(row, col: str, kind: str, suffix: str = "") -> str:
        factor = scales[kind][0]
        text = format_interval(row[col + suffix], row[col + suffix + "_ci"], 1.0 / factor)
        if col == "time_to_target_s":
            k = int(row["reached"])
            if k == 0:
                return "not reached"
            if k < row["seeds"]:
                text = text.replace(" (1 seed)", "") + f" ({k}/{row['seeds']} reached)"
        return text

    cols = {"configuration": summary["config"], "seeds": summary["seeds"]}
    for col, title, kind in SEED_METRICS:
        cols[header(col, title, kind)] = [cell(r, col, kind) for _, r in summary.iterrows()]
    what = ("mean ± half-width of the 95 % confidence interval, Student t over the seeds "
            "(n − 1 degrees of freedom)" if n_max > 1 else
            "one seed per configuration: means only, no interval (run several with --seeds)")
    text = (f"Per configuration: {what}. Time to target: simulated time until the test accuracy "
            f"first reaches {target_text}, over the seeds that reach it.\n\n"
            + to_markdown(pd.DataFrame(cols)))
    if baseline is not None:
        diff = {"configuration": summary["config"]}
        for col, title, kind in SEED_METRICS:
            diff[header(col, title, kind, diff=True)] = [
                "baseline" if r["config"] == baseline else _diff_cell(r, col, scales[kind][0])
                for _, r in summary.iterrows()]
        text += (f"\nPaired difference to {baseline} (configuration − baseline, per seed, over "
                 f"the seeds both ran), mean ± 95 % Student-t interval; * the interval excludes 0."
                 f"\n\n" + to_markdown(pd.DataFrame(diff)))
    return text


def _diff_cell(row, col: str, factor: float) -> str:
    mean, hw = row[col + "_diff"], row[col + "_diff_ci"]
    text = format_interval(mean, hw, 1.0 / factor)
    if np.isfinite(hw) and np.isfinite(mean) and (mean - hw > 0 or mean + hw < 0):
        text += " *"
    return text


def seed_compare_markdown(paths, baseline: str | None = None,
                          target_accuracy: float | None = None) -> str:
    """`sflsim compare`: runs under ``paths`` grouped by configuration, as Markdown."""
    runs = load_runs(paths)
    summary, _, target, base = seed_comparison(runs, baseline, target_accuracy)
    return seed_markdown(summary, target, base)
