"""RESULTS.md of a reproduction of the ST-SFLora comparison: tables, figures and claims.

Reads run directories only. The policy runs (one configuration per policy, several seeds) give
the main table with mean ± 95 % Student-t intervals and the paired differences to ST-SFLora;
the deadline runs (ST-SFLora at several deadlines) give the token-budget-vs-deadline curve.
The paper's qualitative claims are checked with paired intervals over the same seeds: a claim
*holds* when the whole interval lies on its side of the threshold, is *not held* when the whole
interval lies on the other side, and is *not separable* otherwise.

Reported numbers are from a secondary description of the paper (ViT-B/16 on ImageNet-100);
they are shown beside the rows for orientation, never used to choose anything here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.figure import save_figure
from analysis.interval_plots import accuracy_band, metric_bars, sweep_errorbars
from analysis.stats import Interval, format_interval, paired_interval, t_interval
from analysis.style import si_scale
from analysis.tables import seed_comparison, seed_markdown, to_markdown
from analysis.traces import Runs, combine_runs, config_value, load_run

REPORTED_NOTE = "reported (secondary source), different dataset/model"
NEAR_PP = 5.0  # "within a few points": the paper's own gaps to full-token training are 3.3-3.7 pp
HELD, NOT_HELD, NOT_SEPARABLE, NOT_MEASURED = "held", "not held", "not separable", "not measured"
UPLINK_PER_UPDATE = "uplink_per_update_bits"  # column check_claims reads (see uplink_per_update_bits)


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of the paper, what was measured, and the verdict."""

    text: str
    measured: str
    verdict: str


def _verdict(iv: Interval, above: float = 0.0) -> str:
    """held if the interval lies above ``above``, not held if below, else not separable."""
    if iv.n < 2 or not math.isfinite(iv.half_width):
        return NOT_SEPARABLE
    if iv.low > above:
        return HELD
    if iv.high < above:
        return NOT_HELD
    return NOT_SEPARABLE


def _both(*verdicts: str) -> str:
    if NOT_MEASURED in verdicts:
        return NOT_MEASURED
    if NOT_HELD in verdicts:
        return NOT_HELD
    return HELD if all(v == HELD for v in verdicts) else NOT_SEPARABLE


def _pp(iv: Interval) -> str:
    return format_interval(iv.mean, iv.half_width, 100.0)


def check_claims(table: pd.DataFrame, roles: Mapping) -> list[Claim]:
    """The paper's claims, checked on the per-run table (``policy``, ``seed``, metrics).

    Args:
        table: from :func:`analysis.tables.seed_runs_table`.
        roles: which policy plays which part (``proposed``, ``full_token`` list,
            ``random_tokens``, ``local``, ``federated``, ``sequential``, ``energy_baselines``),
            as the comparison's file says.
    """
    by = {p: g.set_index("seed") for p, g in table.groupby("policy")}
    per_update = UPLINK_PER_UPDATE if UPLINK_PER_UPDATE in table else "total_uplink_bits"
    me = roles["proposed"]
    st = by.get(me)
    claims: list[Claim] = []

    def missing(text: str, *policies: str) -> bool:
        absent = [p for p in (me, *policies) if p not in by]
        if absent:
            claims.append(Claim(text, f"no runs of {', '.join(absent)}", NOT_MEASURED))
        return bool(absent)

    for full in roles["full_token"]:
        text = (f"ST-SFLora is within {NEAR_PP:g} points of full-token {full} at a fraction of "
                f"its uplink")
        if missing(text, full):
            continue
        gap = paired_interval(by[full]["final_accuracy"], st["final_accuracy"])
        common = st.index.intersection(by[full].index)

        def ratio_of(col: str) -> Interval:
            den = by[full].loc[common, col].astype(float)
            return t_interval((st.loc[common, col] / den.where(den > 0)).dropna().to_numpy(float))

        # "Uplink" as the paper means it: what one device's update costs to send. Totals also
        # count how many updates got through, which differs between the policies.
        ratio, total = ratio_of(per_update), ratio_of("total_uplink_bits")
        near = _verdict(Interval(NEAR_PP / 100 - gap.mean, gap.half_width, gap.n))
        frac = _verdict(Interval(1.0 - ratio.mean, ratio.half_width, ratio.n))
        measured = (f"accuracy {full} − ST-SFLora = {_pp(gap)} pp; uplink per delivered update "
                    f"ST-SFLora / {full} = {format_interval(ratio.mean, ratio.half_width)} (total "
                    f"uplink: {format_interval(total.mean, total.half_width)})" if ratio.n else
                    f"accuracy {full} − ST-SFLora = {_pp(gap)} pp; {full} delivered no update")
        claims.append(Claim(text, measured, _both(near, frac) if ratio.n else NOT_HELD))

    for other, text in ((roles["random_tokens"], "ST-SFLora beats random tokens in accuracy"),
                        (roles["local"], "local LoRA (no collaboration) trails ST-SFLora"),
                        (roles["federated"], "FedLoRA trails ST-SFLora (reported 52.49 vs 85.81)")):
        if missing(text, other):
            continue
        d = paired_interval(st["final_accuracy"], by[other]["final_accuracy"])
        claims.append(Claim(text, f"accuracy ST-SFLora − {other} = {_pp(d)} pp", _verdict(d)))

    seq = roles["sequential"]
    text = f"{seq} (devices in turn, nothing optimised) misses deadlines"
    if not missing(text, seq):
        counts = by[seq]["deadline_misses"].to_numpy(float)
        misses = t_interval(counts)
        k = int((counts > 0).sum())
        # A count claim: held when every seed has misses, not held when none has.
        verdict = HELD if k == len(counts) else NOT_HELD if k == 0 else NOT_SEPARABLE
        claims.append(Claim(text, f"deadline misses of {seq} per run: "
                                  f"{format_interval(misses.mean, misses.half_width)}; "
                                  f"{k} of {len(counts)} seeds have misses", verdict))

    text = "ST-SFLora has the lowest device energy among the split and federated baselines"
    others = [p for p in roles["energy_baselines"] if p in by]
    if not others:
        claims.append(Claim(text, "no runs of the baselines", NOT_MEASURED))
    elif not missing(text):
        parts, verdicts = [], []
        for other in others:
            d = paired_interval(by[other]["energy_per_device_j"], st["energy_per_device_j"])
            parts.append(f"{other} − ST-SFLora = {format_interval(d.mean, d.half_width)} J")
            verdicts.append(_verdict(d))
        claims.append(Claim(text, "energy per device: " + "; ".join(parts), _both(*verdicts)))
    return claims


def deadline_claim(table: pd.DataFrame) -> Claim:
    """"ST-SFLora keeps more tokens as the deadline loosens": the paired difference over seeds
    of the mean tokens kept at the longest and the shortest deadline of the sweep.

    Args:
        table: one row per deadline run (``deadline_s``, ``seed``, ``tokens_mean``).
    """
    text = "ST-SFLora keeps more tokens as the deadline loosens"
    deadlines = sorted(table["deadline_s"].unique())
    if len(deadlines) < 2:
        return Claim(text, "fewer than two deadlines were run", NOT_MEASURED)
    lo, hi = (table[table["deadline_s"] == d].set_index("seed")["tokens_mean"] for d in (deadlines[0], deadlines[-1]))
    d = paired_interval(hi, lo)
    common = hi.index.intersection(lo.index)
    rises = int((hi.loc[common] > lo.loc[common]).sum())
    return Claim(text, f"tokens kept at {deadlines[-1]:g} s − at {deadlines[0]:g} s = "
                       f"{format_interval(d.mean, d.half_width)}; more at {rises} of {d.n} seeds",
                 _verdict(d))


def uplink_per_update_bits(run) -> float:
    """Uplink bits sent per update that reached the server: the run's total uplink over its
    selected-and-not-dropped device-rounds (NaN when none got through)."""
    r = run.rounds
    delivered = float((r["selected"].fillna(0) - r["dropped"].fillna(0)).sum())
    return float(r["uplink_bits"].fillna(0).sum()) / delivered if delivered > 0 else math.nan


def _load(dirs: Sequence[Path]) -> Runs:
    return combine_runs([load_run(d) for d in dirs])


def _setting(runs: Runs, key: str):
    return config_value(runs.runs[0].config, key)


def write_results(out: Path, policy_dirs: Sequence[Path], deadline_dirs: Sequence[Path],
                  how: Mapping[str, str], roles: Mapping) -> Path:
    """Write ``out/RESULTS.md`` and its figures under ``out/figures``.

    Args:
        out: the reproduction directory.
        policy_dirs: runs of every policy at every seed.
        deadline_dirs: ST-SFLora runs at several deadlines and seeds (may be empty).
        how: lines for the "how it was made" section (command, wall time, load, plan).
        roles: the comparison's roles and ``reported_accuracy`` (see :func:`check_claims`).
    """
    runs = _load(policy_dirs)
    me = roles["proposed"]
    summary, table, target, base = seed_comparison(runs, baseline=me if
                                                   me in set(r.policy for r in runs) else None)
    table[UPLINK_PER_UPDATE] = [uplink_per_update_bits(run) for run in runs]  # table rows = runs
    fig_dir = out / "figures"
    policies = [table.loc[table["config"] == c, "policy"].iloc[0] for c in summary["config"]]
    figures = {
        "accuracy_vs_rounds": (accuracy_band(runs, table, "round"), "Accuracy against rounds"),
        "accuracy_vs_uplink": (accuracy_band(runs, table, "uplink_bits"),
                               "Accuracy against cumulative uplink bits"),
        "latency": (metric_bars(summary, "latency_mean_s", "Mean round latency [s] (95 % CI)",
                                policies=policies), "Mean round latency"),
    }
    e_f, e_p = si_scale(summary["energy_per_device_j"])
    figures["energy"] = (metric_bars(summary, "energy_per_device_j",
                                     f"Energy per device [{e_p}J] (95 % CI)", e_f, policies),
                         "Device energy per device")
    sweep_md, extra_claims = "", []
    if deadline_dirs:
        druns = _load(deadline_dirs)
        dtable, _ = _deadline_table(druns)
        figures["tokens_vs_deadline"] = (sweep_errorbars(dtable, "deadline_s", [
            ("tokens_mean", "Tokens kept K (mean)", 1.0),
            ("final_accuracy", "Final accuracy [%]", 0.01)]), "ST-SFLora token budget against the deadline")
        sweep_md = _deadline_markdown(dtable)
        extra_claims.append(deadline_claim(dtable))
    for name, (fig, _) in figures.items():
        save_figure(fig, fig_dir, name, formats=("png",))
    text = _markdown(runs, summary, table, target, base, sweep_md, figures, how, roles, extra_claims)
    path = out / "RESULTS.md"
    from analysis.files import atomic_write_text

    atomic_write_text(path, text)
    return path


def _deadline_table(runs: Runs) -> tuple[pd.DataFrame, list]:
    rows = []
    for run in runs:
        r = run.rounds[run.rounds["round"] >= 1]
        acc = run.rounds.dropna(subset=["accuracy"])["accuracy"]
        rows.append({"deadline_s": float(run.value("deadline_s")), "seed": run.config.get("seed"),
                     "tokens_mean": float(r["tokens_mean"].mean()),
                     "final_accuracy": float(acc.iloc[-1]) if len(acc) else math.nan,
                     "uplink_bits": float(r["uplink_bits"].sum()),
                     "dropped": float(r["dropped"].sum())})
    return pd.DataFrame(rows), []


def _deadline_markdown(table: pd.DataFrame) -> str:
    rows = []
    for d, g in table.groupby("deadline_s"):
        row = {"deadline [s]": f"{d:g}", "seeds": len(g)}
        for col, name, scale in (("tokens_mean", "tokens kept K", 1.0),
                                 ("final_accuracy", "final acc. [%]", 100.0),
                                 ("uplink_bits", "uplink [Mbit]", 1e-6),
                                 ("dropped", "dropped device-rounds", 1.0)):
            iv = t_interval(g[col].to_numpy(float))
            row[name] = format_interval(iv.mean, iv.half_width, scale)
        rows.append(row)
    return to_markdown(pd.DataFrame(rows))


def _markdown(runs, summary, table, target, base, sweep_md, figures, how, roles, extra_claims=()) -> str:
    seeds = int(summary["seeds"].max())
    main = seed_markdown(summary, target, base)
    reported = pd.DataFrame({
        "configuration": summary["config"],
        "final acc. [%] here": [format_interval(m, h, 100.0) for m, h in
                                zip(summary["final_accuracy"], summary["final_accuracy_ci"])],
        f"{REPORTED_NOTE} [%]": [
            f"{roles['reported_accuracy'][p]:.2f}" if p in roles["reported_accuracy"] else "–"
            for p in (table.loc[table["config"] == c, "policy"].iloc[0] for c in summary["config"])],
    })
    claims = check_claims(table, roles) + list(extra_claims)
    claim_rows = pd.DataFrame({"claim (paper)": [c.text for c in claims],
                               "measured here (mean ± 95 % CI over seeds)": [c.measured for c in claims],
                               "verdict": [c.verdict for c in claims]})
    grid = _setting(runs, "img_size") // _setting(runs, "patch_size")
    model = (f"width {_setting(runs, 'embed_dim')}, {_setting(runs, 'depth')} blocks, "
             f"{_setting(runs, 'num_heads')} heads, {_setting(runs, 'stem')} stem, {grid}×{grid} patch "
             f"tokens from {_setting(runs, 'img_size')} px images, cut after block {_setting(runs, 'cut')}")
    backbone = {"shipped": f"the shipped backbone, pretrained on {_setting(runs, 'dataset')} images no device holds",
                "own": f"a backbone pretrained here on {_setting(runs, 'dataset')} images no device holds",
                "timm": "timm's pretrained weights", "file": "a backbone from a checkpoint file",
                "random": "a randomly initialised backbone (no pretraining)"}.get(
        _setting(runs, "source"), f"backbone source {_setting(runs, 'source')!r}")
    head = ("its pretraining head kept (every policy starts near the backbone's accuracy)"
            if _setting(runs, "keep_head") else "a new classification head, as in the paper's fine-tuning")
    differs = (
        f"What differs from the paper: the data set is {_setting(runs, 'dataset')} (the paper: "
        f"ImageNet-100), the model is a small ViT ({model}; the paper: ViT-B/16 at 224 px), "
        f"{_setting(runs, 'devices')} devices for {_setting(runs, 'rounds')} rounds (the paper: "
        f"100 devices and many more rounds); the runs start from {backbone}, with {head}. "
        f"The reported numbers are therefore not expected to match; only the orderings "
        f"and trade-offs are compared, and nothing here was tuned towards them.")
    parts = [
        "# ST-SFLora comparison, as this simulator makes it\n",
        f"Scenario `{runs.runs[0].scenario}`, {len(summary)} policies × {seeds} seeds "
        f"({len(runs)} runs).\n",
        "\n".join(f"- {k}: {v}" for k, v in how.items()) + "\n",
        "## Results per policy\n", main,
        "\n## Accuracy beside the paper's reported numbers\n", differs + "\n\n",
        to_markdown(reported),
        "\n## The paper's claims, checked\n",
        "A claim holds when the whole 95 % interval of the paired difference (same seeds) lies "
        f"on its side; not held when it lies wholly on the other side; not separable otherwise. "
        f"\"A few points\" is taken as {NEAR_PP:g} pp.\n\n",
        to_markdown(claim_rows),
    ]
    if sweep_md:
        parts += ["\n## ST-SFLora's token budget against the deadline\n", sweep_md]
    parts.append("\n## Figures\n")
    parts += [f"\n![{title} (mean over seeds, 95 % CI)](figures/{name}.png)\n"
              for name, (_, title) in figures.items()]
    return "\n".join(parts)


__all__ = ["Claim", "check_claims", "deadline_claim", "uplink_per_update_bits", "write_results"]
