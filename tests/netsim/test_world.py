"""SimPy world: exact transfer timing, deadlines, stop reasons, determinism, checkpoints."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.channel import ChannelConfig
from netsim.energy import DeviceConfig, ServerConfig
from netsim.mobility import HighwayConfig
from netsim.units import db_to_lin
from netsim.world import (
    ChannelState,
    Compute,
    DevicePlan,
    Transfer,
    World,
    WorldConfig,
)
from netsim.rounds import delay_until

EVENT_COLUMNS = {
    "round", "device", "step", "phase", "start_s", "end_s", "bits", "rate_bps", "power_w", "bandwidth_hz",
    "energy_j", "flops", "tokens_kept", "snr_db", "deadline_met", "reason",
}
CHANNEL_STATE_FIELDS = {
    "gain_lin", "pathloss_db", "shadowing_db", "los", "positions_m", "speeds_mps", "in_cell", "time_left_s",
    "noise_psd_w_per_hz", "total_bandwidth_hz", "max_power_w", "energy_budget_j", "battery_j", "cpu_hz",
    "flops_per_cycle", "kappa", "server_flops_per_s", "serving_cell", "interference_psd_w_per_hz",
}
# Fields only a multi-cell world fills (None in the single cell).
MULTI_CELL_FIELDS = {"serving_cell", "interference_psd_w_per_hz"}
# cpu 1 GHz x 8 FLOPs/cycle = 8 GFLOP/s, kappa f^3 = 0.1 W while computing
FIXED_DEVICE = DeviceConfig(cpu_hz_range=(1e9, 1e9), battery_j_range=(1e4, 1e4), energy_budget_j=100.0)
QUIET = ChannelConfig(shadowing=False, fading="none")


class ScriptedWorld(World):
    """A World whose uplink/downlink rate in interval k is ``script[k]`` for every device.

    Only the rate changes; the scheduling under test is the World's own.
    """

    script = (1e6,)

    def _compute_rates(self):
        super()._compute_rates()
        k = min(self._interval, len(self.script) - 1)
        rate = self.script[k]
        self._rate_ul = np.full(self.num_devices, rate)
        self._rate_dl = np.full(self.num_devices, rate)
        self._snr_ul = np.full(self.num_devices, float(k + 1))
        self._snr_dl = self._snr_ul


def scripted(script, n=1, **config):
    cls = type("W", (ScriptedWorld,), {"script": tuple(script)})
    config = {"channel": QUIET, "device": FIXED_DEVICE} | config
    cfg = WorldConfig(num_devices=n, coherence_s=0.01, **config)
    return cls(cfg, seed=0)


def plan(device, *phases, bandwidth_hz=1e6, power_w=0.1, tokens=10):
    return DevicePlan(device, phases, bandwidth_hz, power_w, tokens)


def test_transfer_rate_change_midway_exact_finish():
    world = scripted([1e6, 2.5e6])
    result = world.run_round(1, [plan(0, Transfer("uplink", 30_000))], deadline_s=1.0)
    (row,) = result.rows
    # [0, 0.01) at 1 Mbit/s: 10,000 bits; the remaining 20,000 at 2.5 Mbit/s take 0.008 s -> 0.018 s
    assert row["end_s"] == pytest.approx(0.018, abs=1e-15)
    assert row["energy_j"] == pytest.approx(0.1 * 0.018, abs=1e-15)
    assert row["bits"] == 30_000
    assert row["rate_bps"] == pytest.approx(30_000 / 0.018)
    # time-weighted SNR: (1 * 0.01 + 2 * 0.008) / 0.018 (linear), in dB
    assert row["snr_db"] == pytest.approx(10 * math.log10((0.01 + 2 * 0.008) / 0.018))
    assert row["deadline_met"] and row["reason"] == ""
    assert result.outcomes[0].finished and result.outcomes[0].latency_s == pytest.approx(0.018, abs=1e-15)


def test_transfer_over_three_rates_starting_mid_interval():
    world = scripted([1e6, 2e6, 0.5e6])
    # 0.04e9 FLOPs at 8 GFLOP/s = 5 ms of compute, then the upload starts at t = 0.005
    result = world.run_round(1, [plan(0, Compute("device_forward", 0.04e9), Transfer("uplink", 40_000))], 1.0)
    up = result.rows[1]
    # 5,000 bits in [0.005, 0.01), 20,000 in [0.01, 0.02), 15,000 left at 0.5 Mbit/s: 0.03 s -> 0.05
    assert up["start_s"] == pytest.approx(0.005, abs=1e-15)
    assert up["end_s"] == pytest.approx(0.05, abs=1e-14)
    assert up["energy_j"] == pytest.approx(0.1 * 0.045, abs=1e-15)


def test_channel_updates_land_exactly_on_integer_multiples():
    world = scripted([1e6])
    times = []
    original = world._update_channel

    def record():
        original()
        times.append((world.interval, world.env.now))

    world._update_channel = record
    world.advance(0.123)
    world.run_round(1, [plan(0, Transfer("uplink", 123_457))], 5.0)  # ends off the grid
    world.advance(1.0)
    assert len(times) > 100
    assert all(now == k * 0.01 for k, now in times)


@given(st.floats(0, 1e6), st.floats(0, 1e3))
def test_delay_until_is_exact(now, gap):
    target = now + gap
    assert now + delay_until(now, target) == target


def test_deadline_miss_is_recorded_truncated():
    world = scripted([1e6])
    result = world.run_round(
        7, [plan(0, Compute("device_forward", 0.8e9), Transfer("uplink", 1e9), Compute("device_backward", 1e9))], 0.5
    )
    assert [r["phase"] for r in result.rows] == ["device_forward", "uplink"]  # later phase never started
    fwd, up = result.rows
    assert fwd["end_s"] == pytest.approx(0.1) and fwd["deadline_met"]
    assert up["end_s"] == 0.5 and up["reason"] == "deadline" and not up["deadline_met"]
    assert up["bits"] == pytest.approx(0.4 * 1e6)
    assert up["energy_j"] == pytest.approx(0.1 * 0.4)
    out = result.outcomes[0]
    assert not out.finished and out.reason == "deadline" and out.latency_s == 0.5
    assert out.energy_j == pytest.approx(0.1 * 0.1 + 0.1 * 0.4)
    assert world.now_s == 0.5


def test_phase_ending_exactly_at_deadline_meets_it():
    world = scripted([1e6])
    result = world.run_round(1, [plan(0, Compute("device_forward", 2e9))], 0.25)  # exactly 0.25 s
    assert result.outcomes[0].finished and result.rows[0]["reason"] == ""


def test_deadline_exactly_between_phases_stops_the_next_one():
    world = scripted([1e6])
    result = world.run_round(1, [plan(0, Compute("device_forward", 2e9), Compute("device_backward", 1e9))], 0.25)
    first, second = result.rows
    assert first["reason"] == "" and first["end_s"] == 0.25
    assert second["reason"] == "deadline" and second["start_s"] == second["end_s"] == 0.25
    assert not result.outcomes[0].finished and world.now_s == 0.25


def test_sequential_schedule_takes_turns():
    world = scripted([1e6], n=3)
    plans = [plan(i, Transfer("uplink", 300_000)) for i in range(3)]  # 0.3 s each
    result = world.run_round(1, plans, 0.5, schedule="sequential")
    rows = {r["device"]: r for r in result.rows}
    assert rows[0]["start_s"] == 0.0 and rows[0]["end_s"] == pytest.approx(0.3)
    assert rows[1]["start_s"] == pytest.approx(0.3) and rows[1]["end_s"] == 0.5 and rows[1]["reason"] == "deadline"
    assert rows[2]["start_s"] == rows[2]["end_s"] == 0.5 and rows[2]["reason"] == "deadline"
    assert [o.finished for o in result.outcomes] == [True, False, False]
    parallel = scripted([1e6], n=3).run_round(1, plans, 0.5)
    assert all(o.finished for o in parallel.outcomes)


@pytest.mark.parametrize("slots, second_end", [(1, 0.1), (2, 0.05)])
def test_server_is_a_shared_resource(slots, second_end):
    world = scripted([1e6], n=2, server=ServerConfig(flops_per_s=20e12, parallel_slots=slots))
    result = world.run_round(1, [plan(i, Compute("server", 1e12, where="server")) for i in range(2)], 1.0)
    ends = sorted(r["end_s"] for r in result.rows)
    assert ends == pytest.approx([0.05, second_end])
    assert all(r["start_s"] == 0.0 and r["energy_j"] == 0.0 for r in result.rows)


def test_device_leaving_cell_mid_transfer():
    cfg = WorldConfig(
        num_devices=1, cell_radius_m=300.0, channel=QUIET, device=FIXED_DEVICE,
        mobility=HighwayConfig(lanes=1, offset_m=50.0, speed_range_kmh=(108.0, 108.0)),
    )
    world = World(cfg, seed=3)
    time_left = world.channel_state().time_left_s[0]
    result = world.run_round(1, [plan(0, Transfer("uplink", 1e12))], deadline_s=60.0)
    (row,) = result.rows
    assert row["reason"] == "left-cell" and not row["deadline_met"]
    # Detected at the first channel update after it crossed the cell edge
    assert time_left <= row["end_s"] <= time_left + cfg.coherence_s
    assert not world.channel_state().in_cell[0]
    # Out of the cell at the start of a transfer: a zero-length row, not a silent drop
    again = world.run_round(2, [plan(0, Transfer("uplink", 1e3))], 1.0)
    assert again.rows[0]["reason"] == "left-cell" and again.rows[0]["start_s"] == again.rows[0]["end_s"]


def test_energy_budget_stops_the_device():
    device = dataclasses.replace(FIXED_DEVICE, energy_budget_j=0.03)
    world = scripted([1e6], device=device)
    # 0.1 W compute for 0.1 s (0.01 J), then 0.1 W transmit: 0.02 J left -> stops after 0.2 s
    result = world.run_round(1, [plan(0, Compute("device_forward", 0.8e9), Transfer("uplink", 1e9))], 10.0)
    up = result.rows[1]
    assert up["reason"] == "energy" and up["end_s"] == pytest.approx(0.3)
    assert result.outcomes[0].energy_j == pytest.approx(0.03)
    # Compute alone over budget: stops when the budget is spent (0.03 J at 0.1 W = 0.3 s)
    result = world.run_round(2, [plan(0, Compute("device_forward", 8e9))], 10.0)
    assert result.rows[0]["reason"] == "energy"
    assert result.rows[0]["end_s"] - result.rows[0]["start_s"] == pytest.approx(0.3)
    assert result.rows[0]["flops"] == pytest.approx(0.3 * 8e9)


def test_battery_drains_across_rounds():
    device = dataclasses.replace(FIXED_DEVICE, battery_j_range=(0.05, 0.05), energy_budget_j=1.0)
    world = scripted([1e6], device=device)
    first = world.run_round(1, [plan(0, Transfer("uplink", 300_000))], 10.0)  # 0.3 s x 0.1 W = 0.03 J
    assert first.outcomes[0].finished
    assert world.channel_state().battery_j[0] == pytest.approx(0.02)
    second = world.run_round(2, [plan(0, Transfer("uplink", 1e9))], 10.0)
    assert second.rows[0]["reason"] == "battery" and second.outcomes[0].energy_j == pytest.approx(0.02)
    assert world.channel_state().battery_j[0] == pytest.approx(0.0, abs=1e-15)
    third = world.run_round(3, [plan(0, Compute("device_forward", 1e6), Transfer("uplink", 1.0))], 10.0)
    assert len(third.rows) == 1 and third.rows[0]["reason"] == "battery"
    assert third.rows[0]["start_s"] == third.rows[0]["end_s"]


def test_rows_have_exactly_the_interface_columns_and_types():
    world = World(WorldConfig(num_devices=3), seed=1)
    result = world.run_round(
        1,
        [plan(i, Compute("device_forward", 1e8, step=0), Transfer("uplink", 1e5, step=0),
              Compute("server", 1e9, "server", 0), Transfer("downlink", 1e5, "downlink", 0)) for i in range(3)],
        5.0,
    )
    assert len(result.rows) == 12
    for row in result.rows:
        assert set(row) == EVENT_COLUMNS
        assert type(row["start_s"]) is float and type(row["energy_j"]) is float
        assert row["energy_j"] >= 0 and row["end_s"] >= row["start_s"]
        assert row["step"] == 0 and row["tokens_kept"] == 10
        if row["phase"] in ("uplink", "downlink"):
            assert row["flops"] == 0 and np.isfinite(row["snr_db"]) and row["rate_bps"] > 0
        else:
            assert row["bits"] == 0 and np.isnan(row["snr_db"])
    assert all(r["power_w"] == 0 for r in result.rows if r["phase"] != "uplink")


def test_channel_state_contract():
    cfg = WorldConfig(num_devices=4, channel=ChannelConfig(fading="none"))
    world = World(cfg, seed=2)
    state = world.channel_state()
    assert {f.name for f in dataclasses.fields(ChannelState)} == CHANNEL_STATE_FIELDS
    for name in CHANNEL_STATE_FIELDS - {"noise_psd_w_per_hz", "total_bandwidth_hz", "server_flops_per_s"} - MULTI_CELL_FIELDS:
        assert getattr(state, name).shape[0] == 4, name
    assert all(getattr(state, name) is None for name in MULTI_CELL_FIELDS)
    assert state.positions_m.shape == (4, 2)
    # no fading: gain = 10^(-(PL + SF)/10)
    assert state.gain_lin == pytest.approx(db_to_lin(-(state.pathloss_db + state.shadowing_db)))
    assert state.total_bandwidth_hz == pytest.approx(51 * 360e3)
    assert state.noise_psd_w_per_hz == pytest.approx(db_to_lin(-174 + 5 - 30))
    state.gain_lin[0] = -1.0  # a copy: the world is untouched
    assert world.channel_state().gain_lin[0] > 0


def _mobile_config():
    return WorldConfig(
        num_devices=6,
        mobility=HighwayConfig(),
        channel=ChannelConfig(fading="rician", per_rb_fading=True),
    )


def _round_plans(world, round_index):
    state = world.channel_state()
    share = state.total_bandwidth_hz / world.num_devices
    return [
        plan(i, Compute("device_forward", 1e9), Transfer("uplink", 2e6 + 1e5 * round_index),
             Compute("server", 1e11, "server"), Transfer("downlink", 1e6, "downlink"),
             Compute("device_backward", 2e9), bandwidth_hz=share, power_w=0.05 + 0.01 * i)
        for i in range(world.num_devices)
    ]


def _run(world, rounds, gap="off-grid"):
    rows = []
    for k in rounds:
        rows += world.run_round(k, _round_plans(world, k), deadline_s=0.9).rows
        if gap == "off-grid":
            world.advance(0.237)
        else:  # stop exactly on a channel-update instant, the update still pending
            world.advance((world.interval + 7) * world.config.coherence_s - world.now_s)
    return rows


def _same(rows_a, rows_b):
    assert len(rows_a) == len(rows_b)
    for a, b in zip(rows_a, rows_b):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), (key, a, b)


def test_same_seed_same_trace_and_different_seed_differs():
    rows_a = _run(World(_mobile_config(), seed=11), [1, 2])
    rows_b = _run(World(_mobile_config(), seed=11), [1, 2])
    _same(rows_a, rows_b)
    rows_c = _run(World(_mobile_config(), seed=12), [1, 2])
    assert [r["end_s"] for r in rows_a] != [r["end_s"] for r in rows_c]


@pytest.mark.parametrize("gap", ["off-grid", "on-update"])
def test_state_save_restore_continues_exactly(gap):
    straight = World(_mobile_config(), seed=5)
    rows_straight = _run(straight, [1, 2, 3], gap)
    reasons = {r["reason"] for r in rows_straight}
    assert "" in reasons and "deadline" in reasons  # both completed and truncated phases

    first = World(_mobile_config(), seed=5)
    rows_first = _run(first, [1], gap)
    state = first.state_dict()
    restored = World(_mobile_config(), seed=999)  # the state carries hardware, positions and RNGs
    restored.load_state_dict(state)
    rows_rest = _run(restored, [2, 3], gap)
    _same(rows_straight, rows_first + rows_rest)
    assert restored.now_s == straight.now_s and restored.interval == straight.interval
    a, b = straight.channel_state(), restored.channel_state()
    for f in dataclasses.fields(ChannelState):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name


def test_state_dict_is_plain():
    state = World(_mobile_config(), seed=5).state_dict()

    def check(value):
        if isinstance(value, dict):
            for v in value.values():
                check(v)
        else:
            assert isinstance(value, (np.ndarray, int, float, str)), type(value)

    check(state)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: WorldConfig(num_devices=0), "num_devices"),
        (lambda: WorldConfig(coherence_s=0.0), "coherence_s"),
        (lambda: WorldConfig(cell_radius_m=-5.0), "cell_radius_m"),
        (lambda: ChannelConfig(fading="nakagami"), "fading"),
        (lambda: ChannelConfig(pathloss_model="hata"), "pathloss_model"),
        (lambda: ChannelConfig(carrier_frequency_hz=0.1e9), "frequency_hz"),
        (lambda: Compute("backprop", 1.0), "name"),
        (lambda: Compute("server", -1.0), "flops"),
        (lambda: Compute("server", 1.0, where="cloud"), "where"),
        (lambda: Transfer("uplink", 1.0, direction="sideways"), "direction"),
        (lambda: DevicePlan(0, (), 1e6, -0.1), "power_w"),
        (lambda: DevicePlan(0, (), -1e6, 0.1), "bandwidth_hz"),
    ],
)
def test_config_errors_name_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize(
    "plans, kwargs, field",
    [
        ([plan(5, Transfer("uplink", 1.0))], {}, "device"),
        ([plan(0, Transfer("uplink", 1.0)), plan(0, Transfer("uplink", 1.0))], {}, "device"),
        ([plan(0, Transfer("uplink", 1.0), power_w=1.0)], {}, "power_w"),
        ([plan(0, Transfer("uplink", 1.0), bandwidth_hz=15e6), plan(1, Transfer("uplink", 1.0), bandwidth_hz=15e6)],
         {}, "bandwidth_hz"),
        ([], {"deadline_s": 0.0}, "deadline_s"),
        ([], {"schedule": "round-robin"}, "schedule"),
    ],
)
def test_run_round_errors(plans, kwargs, field):
    world = World(WorldConfig(num_devices=2), seed=0)
    args = {"deadline_s": 1.0} | kwargs
    with pytest.raises(ValueError, match=field):
        world.run_round(1, plans, **args)


@settings(max_examples=25, deadline=None)
@given(
    bits=st.lists(st.floats(0, 5e6), min_size=3, max_size=3),
    flops=st.lists(st.floats(0, 5e9), min_size=3, max_size=3),
    power=st.floats(0, 0.19),
    deadline=st.floats(0.01, 2.0),
    schedule=st.sampled_from(["parallel", "sequential"]),
)
def test_energy_never_negative_and_times_ordered(bits, flops, power, deadline, schedule):
    world = World(WorldConfig(num_devices=3, mobility=HighwayConfig()), seed=3)
    plans = [
        plan(i, Compute("device_forward", flops[i]), Transfer("uplink", bits[i]), Compute("server", flops[i], "server"),
             bandwidth_hz=5e6, power_w=power)
        for i in range(3)
    ]
    result = world.run_round(1, plans, deadline, schedule=schedule)
    for row in result.rows:
        assert row["energy_j"] >= 0
        assert result.start_s <= row["start_s"] <= row["end_s"] <= result.start_s + deadline + 1e-12
        assert row["deadline_met"] == (row["reason"] == "")
    assert len(result.outcomes) == 3 and all(o.energy_j >= 0 for o in result.outcomes)


def test_transfer_rate_matches_ofdma_physics():
    from netsim import ofdma

    cfg = WorldConfig(num_devices=3, channel=ChannelConfig(fading="none"))  # static: constant channel
    world = World(cfg, seed=8)
    state = world.channel_state()
    bandwidth = np.array([2e6, 5e6, 8e6])
    power = np.array([0.01, 0.1, 0.19])
    plans = [plan(i, Transfer("uplink", 1e5), Transfer("downlink", 1e5, "downlink"),
                  bandwidth_hz=bandwidth[i], power_w=power[i]) for i in range(3)]
    rows = world.run_round(1, plans, 10.0).rows
    up, _ = ofdma.uplink_rate_bps(
        bandwidth, power, state.gain_lin, state.noise_psd_w_per_hz, cfg.ofdma.max_spectral_efficiency
    )
    down, _ = ofdma.downlink_rate_bps(
        bandwidth, cfg.ofdma.bs_tx_power_w, state.total_bandwidth_hz, state.gain_lin,
        ofdma.noise_psd_w_per_hz(cfg.ofdma.ue_noise_figure_db), cfg.ofdma.max_spectral_efficiency,
    )
    assert [r["rate_bps"] for r in rows if r["phase"] == "uplink"] == pytest.approx(up, rel=1e-9)
    assert [r["rate_bps"] for r in rows if r["phase"] == "downlink"] == pytest.approx(down, rel=1e-9)
