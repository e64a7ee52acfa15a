"""analysis.tables: the summary numbers equal values recomputed by hand from the trace."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis import tables
from analysis.metrics import MissingDataError
from analysis.traces import expand_run_dirs, load_run, load_runs
from conftest import write_fake_run


def _by_hand(run_dir):
    """The summary of a run recomputed from the parquet files with plain loops."""
    ev = pd.read_parquet(run_dir / "events.parquet").to_dict("records")
    rounds = sorted(pd.read_parquet(run_dir / "rounds.parquet").to_dict("records"),
                    key=lambda r: r["round"])
    final_acc = math.nan
    for r in rounds:
        if not math.isnan(r["accuracy"]):
            final_acc = r["accuracy"]
    uplink = 0.0
    energy = compute = transmit = 0.0
    devices, missed = set(), {}
    for e in ev:
        devices.add(e["device"])
        energy += e["energy_j"]
        if e["phase"] in ("uplink", "adapter_uplink"):
            uplink += e["bits"]
            transmit += e["energy_j"]
        if e["phase"] in ("device_forward", "device_backward"):
            compute += e["energy_j"]
        key = (e["round"], e["device"])
        missed[key] = missed.get(key, False) or e["reason"] == "deadline"
    lat = sorted(r["latency_s"] for r in rounds if r["round"] >= 1)
    # 95th percentile by linear interpolation between order statistics, written out.
    pos = 0.95 * (len(lat) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(lat) - 1)
    p95 = lat[lo] + (lat[hi] - lat[lo]) * (pos - lo)
    ste = [r["ste"] for r in rounds if r["round"] >= 1 and not math.isnan(r["ste"])]
    n = len(devices)
    return {
        "final_accuracy": final_acc, "total_uplink_bits": uplink,
        "energy_per_device_j": energy / n, "compute_energy_per_device_j": compute / n,
        "transmit_energy_per_device_j": transmit / n,
        "latency_mean_s": sum(lat) / len(lat), "latency_p95_s": p95,
        "deadline_misses": sum(missed.values()), "miss_rate": sum(missed.values()) / len(missed),
        "ste_mean": sum(ste) / len(ste), "rounds": len(lat),
        "dropped": sum(r["dropped"] for r in rounds),
    }


def test_comparison_table_matches_hand_computation(sweep_dirs):
    table = tables.comparison_table(load_runs(sweep_dirs))
    assert list(table.columns[:len(tables.COLUMNS)]) == list(tables.COLUMNS)
    assert "deadline_s" in table.columns and len(table) == 9
    assert table["deadline_misses"].sum() > 0  # the sweep has misses to count
    for row, path in zip(table.to_dict("records"), sweep_dirs):
        for key, expected in _by_hand(path).items():
            assert row[key] == pytest.approx(expected, rel=1e-12), key


def test_summary_table_of_one_run(one_run):
    summary = tables.summary_table(load_run(one_run))
    values = dict(zip(summary["quantity"], summary["value"]))
    expected = _by_hand(one_run)
    for key in ("final_accuracy", "total_uplink_bits", "latency_p95_s", "deadline_misses"):
        assert values[key] == pytest.approx(expected[key], rel=1e-12)
    assert values["policy"] == "st-sflora"


def test_markdown_tables(sweep_dirs, one_run):
    text = tables.compare_markdown(load_runs(sweep_dirs[:3]))
    lines = text.splitlines()
    assert lines[0].startswith("| run") and "final acc. [%]" in lines[0]
    assert "uplink [Mbit]" in lines[0] and "latency p95 [s]" in lines[0]
    assert set(lines[1]) <= set("|-: ")
    assert sum(1 for l in lines if l.startswith("| ST-SFLora (deadline_s=")) == 3
    # Every table row has as many cells as the header.
    n = lines[0].count("|")
    assert all(l.count("|") == n for l in lines[:5])
    one = tables.summary_markdown(load_run(one_run))
    assert one.startswith("# ST-SFLora") and "| final acc. [%]" in one


def test_to_markdown_formatting():
    frame = pd.DataFrame({"name": ["a|b", "c"], "x": [1234567.0, float("nan")], "n": [3, 40],
                          "ok": [True, False]})
    assert tables.to_markdown(frame) == (
        "| name |         x |  n | ok    |\n"
        "|:-----|----------:|---:|:------|\n"
        "| a\\|b | 1.235e+06 |  3 | true  |\n"
        "| c    |         – | 40 | false |\n"
    )


def test_missing_column_in_summary(one_run):
    run = load_run(one_run)
    run.rounds = run.rounds.drop(columns=["latency_s"])
    with pytest.raises(MissingDataError, match="summary: needs rounds.parquet column latency_s"):
        tables.run_metrics(run)


# --------------------------------------------------------------------------------------------
# Configurations over seeds

T_975_DF2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (printed tables)


def _seeded_sweep(root):
    for policy in ("st-sflora", "random-tokens"):
        for seed in (0, 1, 2):
            write_fake_run(root / f"policy={policy}" / f"seed={seed}", policy=policy, seed=seed,
                           deadline_s=0.7, sweep={"policy": policy, "seed": seed})
    return root


def _hand_interval(values):
    n = len(values)
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T_975_DF2 * s / math.sqrt(n)


def test_seed_comparison_means_intervals_and_paired_differences(tmp_path):
    root = _seeded_sweep(tmp_path / "sw")
    assert len(expand_run_dirs([root])) == 6  # nested point/seed directories are found
    summary, per_run, target, base = tables.seed_comparison(expand_run_dirs([root]),
                                                             baseline="random-tokens",
                                                             target_accuracy=0.3)
    assert base == "Random tokens" and target == 0.3
    assert list(summary["seeds"]) == [3, 3]
    by = {p: sorted((r["seed"], r) for r in per_run[per_run["policy"] == p].to_dict("records"))
          for p in ("st-sflora", "random-tokens")}
    st = [r for _, r in by["st-sflora"]]
    rnd = [r for _, r in by["random-tokens"]]
    row = summary[summary["config"] == "ST-SFLora"].iloc[0]
    for col in ("final_accuracy", "total_uplink_bits", "energy_per_device_j"):
        mean, hw = _hand_interval([r[col] for r in st])
        assert row[col] == pytest.approx(mean, rel=1e-12)
        assert row[f"{col}_ci"] == pytest.approx(hw, rel=1e-9)
        dmean, dhw = _hand_interval([a[col] - b[col] for a, b in zip(st, rnd)])
        assert row[f"{col}_diff"] == pytest.approx(dmean, rel=1e-9, abs=1e-15)
        assert row[f"{col}_diff_ci"] == pytest.approx(dhw, rel=1e-9, abs=1e-15)
    # Time to target by hand: the first round whose accuracy reaches 0.3.
    for r, path in zip(st, sorted((root / "policy=st-sflora").iterdir())):
        rounds = pd.read_parquet(path / "rounds.parquet").sort_values("round")
        hits = [t for a, t in zip(rounds["accuracy"], rounds["time_s"]) if a >= 0.3]
        expected = hits[0] if hits else math.nan
        assert (math.isnan(r["time_to_target_s"]) and math.isnan(expected)) or \
            r["time_to_target_s"] == expected


def test_seed_markdown_says_what_the_interval_is(tmp_path):
    root = _seeded_sweep(tmp_path / "sw")
    text = tables.seed_compare_markdown([root], baseline="st-sflora")
    assert "95 % confidence interval, Student t over the seeds" in text
    assert "Paired difference to ST-SFLora" in text and "±" in text
    rows = [l for l in text.splitlines() if l.startswith("| Random tokens")]
    assert len(rows) == 2 and "±" in rows[0] and "±" in rows[1]
    one = tables.seed_compare_markdown([root / "policy=st-sflora" / "seed=0",
                                        root / "policy=random-tokens" / "seed=0"])
    assert "no interval" in one and "(1 seed)" in one and "±" not in one
    with pytest.raises(ValueError, match="--baseline"):
        tables.seed_compare_markdown([root], baseline="nothing")


def test_accuracy_figure_draws_the_seed_interval_as_a_band(tmp_path):
    from analysis import plots

    root = _seeded_sweep(tmp_path / "sw")
    fig = plots.accuracy_vs_rounds(expand_run_dirs([root]))
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and len(ax.lines) == 2  # one band and one mean per policy
    st = [pd.read_parquet(p / "rounds.parquet").sort_values("round")
          for p in sorted((root / "policy=st-sflora").iterdir())]
    line = next(l for l in ax.lines if l.get_label() == "ST-SFLora")
    band = ax.collections[[l.get_label() for l in ax.lines].index("ST-SFLora")]
    xs, ys = line.get_data()
    verts = np.concatenate([p.vertices for p in band.get_paths()])  # NaN rounds split it
    for r, y in zip(xs, ys):
        values = [float(f.loc[f["round"] == r, "accuracy"].iloc[0]) * 100 for f in st]
        values = [v for v in values if not math.isnan(v)]
        if len(values) < 2:
            continue
        mean, hw = _hand_interval(values)
        assert y == pytest.approx(mean)
        at_r = verts[np.isclose(verts[:, 0], r)][:, 1]
        assert min(at_r) == pytest.approx(mean - hw) and max(at_r) == pytest.approx(mean + hw)
