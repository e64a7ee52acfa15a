"""analysis.plots: every figure renders, saves, and shows what it says it shows."""
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.metrics import MissingDataError
from analysis.traces import load_run, load_runs
from conftest import DEADLINES_S, POLICIES, write_fake_run


@pytest.fixture(scope="module")
def sweep(sweep_dirs):
    return load_runs(sweep_dirs)


@pytest.fixture(scope="module")
def run(one_run):
    return load_run(one_run)


def _check_saved(fig, tmp_path, name):
    paths = plots.save_figure(fig, tmp_path, name)
    assert [p.name for p in paths] == [f"{name}.png", f"{name}.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert all(p.stat().st_size > 1000 for p in paths)
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


@pytest.mark.parametrize("name, xlabel", [
    ("accuracy_vs_uplink_bits", "Cumulative uplink [Mbit]"),
    ("accuracy_vs_rounds", "Round"),
    ("accuracy_vs_time", "Simulated time [s]"),
])
def test_accuracy_figures_one_line_per_run(sweep, tmp_path, name, xlabel):
    fig = plots.FIGURES[name](sweep)
    ax = fig.axes[0]
    assert ax.get_xlabel() == xlabel and ax.get_ylabel() == "Test accuracy [%]"
    assert len(ax.lines) == 9
    assert [t.get_text() for t in fig.legends[0].get_texts()] == sweep.labels
    _check_saved(fig, tmp_path, name)


def test_accuracy_vs_uplink_bits_plots_the_trace(sweep):
    ax = plots.accuracy_vs_uplink_bits(sweep).axes[0]
    for line, run in zip(ax.lines, sweep.runs):
        # Independent: cumulative uplink bits with a loop over events, accuracy from the rounds.
        total = 0.0
        for phase, bits in zip(run.events["phase"], run.events["bits"]):
            if phase in ("uplink", "adapter_uplink"):
                total += bits
        x, y = line.get_data()
        assert x[-1] == pytest.approx(total / 1e6, rel=1e-9)
        assert x[0] == 0.0
        acc = run.rounds["accuracy"].dropna().to_numpy()
        np.testing.assert_allclose(y, acc * 100)


def test_energy_split_bars(sweep, tmp_path):
    fig = plots.energy_split(sweep)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Energy per device [mJ]"
    assert len(ax.patches) == 2 * 9  # compute + transmit per run, no "other" energy
    assert [t.get_text() for t in ax.get_yticklabels()] == sweep.labels
    # Bar widths: compute energy summed by hand over the device_forward/backward rows, per device.
    run = sweep.runs[0]
    compute = sum(e for p, e in zip(run.events["phase"], run.events["energy_j"])
                  if p in ("device_forward", "device_backward"))
    assert ax.patches[0].get_width() == pytest.approx(compute / 4 * 1e3)
    _check_saved(fig, tmp_path, "energy_split")


def test_energy_vs_deadline_one_line_per_policy(sweep, tmp_path):
    fig = plots.energy_vs_deadline(sweep)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Deadline [s]" and ax.get_ylabel() == "Energy per device [mJ]"
    assert len(ax.lines) == len(POLICIES)
    for line in ax.lines:
        assert list(line.get_xdata()) == list(DEADLINES_S)
    _check_saved(fig, tmp_path, "energy_vs_deadline")


def test_energy_vs_deadline_needs_a_sweep(run):
    with pytest.raises(MissingDataError, match="energy_vs_deadline.*deadline_s"):
        plots.energy_vs_deadline(run)


def test_latency_cdf(sweep, run, tmp_path):
    fig = plots.latency_cdf(sweep)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Round latency [s]" and ax.get_ylabel() == "CDF"
    assert len(ax.lines) == 9  # deadlines differ: no deadline line
    x, y = ax.lines[0].get_data()
    assert y[-1] == 1.0 and np.all(np.diff(y) >= 0)
    # One run: its curve plus the shared deadline.
    assert len(plots.latency_cdf(run).axes[0].lines) == 2
    _check_saved(fig, tmp_path, "latency_cdf")


def test_deadline_miss_rate_vs_deadline_and_bars(sweep, run, tmp_path):
    fig = plots.deadline_miss_rate(sweep)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Deadline [s]"
    assert ax.get_ylabel() == "Deadline misses [% of device rounds]"
    assert len(ax.lines) == len(POLICIES)
    # Independent: missed (round, device) pairs counted with a dict over the event rows.
    for line, policy in zip(ax.lines, POLICIES):
        expected = []
        for deadline in DEADLINES_S:
            i = next(i for i, r in enumerate(sweep.runs)
                     if r.policy == policy and r.value("deadline_s") == deadline)
            ev = sweep.runs[i].events
            missed = {}
            for key, reason in zip(zip(ev["round"], ev["device"]), ev["reason"]):
                missed[key] = missed.get(key, False) or reason == "deadline"
            expected.append(100.0 * sum(missed.values()) / len(missed))
        np.testing.assert_allclose(line.get_ydata(), expected)
    bars = plots.deadline_miss_rate(run).axes[0]
    assert len(bars.patches) == 1 and bars.get_xlabel().startswith("Deadline misses")
    _check_saved(fig, tmp_path, "deadline_miss_rate")


def test_timeline_bars_and_misses(run, tmp_path):
    ev = run.events
    first_miss = int(ev.loc[~ev["completed"], "round"].min())
    fig = plots.timeline(run)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith(f"Time since round start [s] (round {first_miss}")
    n_bars = sum(len(c.get_paths()) for c in ax.collections)
    assert n_bars == int((ev["round"] == first_miss).sum())
    in_round = ev[ev["round"] == first_miss]
    n_missed_devices = in_round.loc[~in_round["completed"], "device"].nunique()
    crosses = [l for l in ax.lines if l.get_marker() == "x"]
    assert len(crosses) == n_missed_devices >= 1
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"device {d}" for d in range(4)]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["device compute", "uplink", "server", "downlink", "cut by miss"]
    _check_saved(fig, tmp_path, "timeline")


def test_timeline_chosen_round_and_bad_round(run):
    ax = plots.timeline(run, round_index=3).axes[0]
    assert "(round 3," in ax.get_xlabel()
    with pytest.raises(ValueError, match="round 99 has no events"):
        plots.timeline(run, round_index=99)


def test_ste_accuracy_vs_tokens(ratio_dirs, tmp_path):
    runs = load_runs(ratio_dirs)
    fig = plots.ste_accuracy_vs_tokens(runs)
    ax_ste, ax_acc = fig.axes
    assert ax_ste.get_ylabel() == "STE, mean over rounds [1/s]"
    assert ax_acc.get_ylabel() == "Final test accuracy [%]"
    assert ax_ste.get_xlabel() == "Tokens kept K (mean per device)"
    assert len(ax_ste.lines) == len(ax_acc.lines) == 1  # one policy, three K
    np.testing.assert_allclose(ax_ste.lines[0].get_xdata(), [4, 8, 16])
    _check_saved(fig, tmp_path, "ste_accuracy_vs_tokens")


def test_channel_traces_from_channel_and_from_events(run, tmp_path):
    fig = plots.channel_traces(run)
    ax_snr, ax_rate = fig.axes
    assert ax_snr.get_ylabel() == "SNR at max. power [dB]"
    assert ax_rate.get_ylabel() == "Uplink rate [Mbit/s]"
    assert ax_rate.get_xlabel() == "Simulated time [s]"
    assert len(ax_snr.lines) == len(ax_rate.lines) == 4
    _check_saved(fig, tmp_path, "channel")
    # Without channel.parquet the SNR comes from the uplink rows; two devices asked for.
    no_channel = load_run(write_fake_run(tmp_path / "nc", channel=False, rounds=3))
    fig = plots.channel_traces(no_channel, devices=[0, 2])
    assert fig.axes[0].get_ylabel() == "Uplink SNR [dB]"
    assert len(fig.axes[0].lines) == len(fig.axes[1].lines) == 2


def test_channel_traces_picks_spread_of_devices(tmp_path):
    many = load_run(write_fake_run(tmp_path / "many", devices=9, rounds=2))
    fig = plots.channel_traces(many, max_devices=3)
    shown = [l.get_label() for l in fig.axes[0].lines]
    mean = many.channel.groupby("device")["snr_db"].mean().sort_values()
    assert shown == [f"device {d}" for d in (mean.index[0], mean.index[4], mean.index[8])]


def test_token_map(run, tmp_path):
    fig = plots.token_map(run)
    assert len(fig.axes) == 3
    for ax, tokens in zip(fig.axes, run.token_maps["tokens"]):
        assert len(ax.images) == 2  # the image and the overlay of dropped patches
        assert f"K = {tokens}/16" in ax.get_title()
        overlay = ax.images[1].get_array()
        i = fig.axes.index(ax)
        np.testing.assert_array_equal(overlay[..., 3] == 0, run.token_maps["kept"][i])
    _check_saved(fig, tmp_path, "token_map")


def test_missing_column_names_figure_and_column(run):
    broken = load_run(run.path)
    broken.rounds = broken.rounds.drop(columns=["uplink_bits"])
    with pytest.raises(MissingDataError) as err:
        plots.accuracy_vs_uplink_bits(broken)
    assert err.value.figure == "accuracy_vs_uplink_bits"
    assert "rounds.parquet column uplink_bits" in str(err.value)
    broken.events = broken.events.drop(columns=["completed", "end_s"])
    with pytest.raises(MissingDataError, match="timeline: needs events.parquet columns "
                                               "end_s, completed"):
        plots.timeline(broken)
    broken.token_maps = None
    with pytest.raises(MissingDataError, match="token_map: needs token_maps.npz"):
        plots.token_map(broken)


def test_figures_leave_global_matplotlib_state_alone(run, tmp_path):
    before = dict(mpl.rcParams)
    backend = mpl.get_backend()
    plots.accuracy_vs_rounds(run)
    plots.save_figure(plots.timeline(run), tmp_path, "t")
    assert dict(mpl.rcParams) == before and mpl.get_backend() == backend


def test_accuracy_given_in_percent_is_not_scaled(tmp_path):
    run = load_run(write_fake_run(tmp_path / "pct", rounds=2))
    run.rounds["accuracy"] = run.rounds["accuracy"] * 100
    y = plots.accuracy_vs_rounds(run).axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(y, run.rounds["accuracy"].dropna())


def test_accuracy_never_evaluated_is_missing_data(tmp_path):
    run = load_run(write_fake_run(tmp_path / "noeval", rounds=2))
    run.rounds["accuracy"] = np.nan
    with pytest.raises(MissingDataError, match="accuracy_vs_time: needs rounds.parquet accuracy"):
        plots.accuracy_vs_time(run)


def test_timeline_shows_unknown_phases_as_other(tmp_path):
    run = load_run(write_fake_run(tmp_path / "odd", rounds=1, deadline_s=5.0))
    run.events.loc[run.events["phase"] == "server", "phase"] = "server_queue"
    fig = plots.timeline(run)
    assert sum(len(c.get_paths()) for c in fig.axes[0].collections) == len(run.events)
    assert [t.get_text() for t in fig.legends[0].get_texts()][-1] == "other"
