"""The multi-cell World: single-cell default untouched, SINR-driven draining, reuse, handover."""
import math

import numpy as np
import pytest

from netsim import energy, ofdma, pathloss
from netsim.cellconfig import CellsConfig
from netsim.channel import ChannelConfig
from netsim.handover import HandoverConfig
from netsim.layout import LayoutConfig
from netsim.mobility import HighwayConfig
from netsim.reasons import Reason
from netsim.transfer import drain
from netsim.world import Compute, DevicePlan, Transfer, World, WorldConfig

QUIET = ChannelConfig(pathloss_model="3gpp-uma-nlos", shadowing=False, fading="none")


def line_world(num_devices=2, seed=0, reuse=1, channel=QUIET, coherence_s=10.0, **cells):
    cfg = WorldConfig(
        num_devices=num_devices, cell_radius_m=250.0, coherence_s=coherence_s, channel=channel,
        cells=CellsConfig(enabled=True, reuse=reuse,
                          layout=LayoutConfig(kind="line", num_sites=2, isd_m=500.0), **cells),
    )
    return World(cfg, seed=seed)


def test_the_default_config_is_the_single_cell_world():
    w = World(WorldConfig(num_devices=3), seed=0)
    assert type(w) is World
    assert w.channel_state().serving_cell is None


def two_cells_apart():
    for seed in range(50):
        w = line_world(seed=seed)
        if len(set(w.serving_cell.tolist())) == 2:
            return w
    raise AssertionError("no seed puts the two devices in different cells")


def gain(w, device, site):
    d = float(np.linalg.norm(w.mobility.positions_m[device] - w.sites_m[site]))
    return 10 ** (-float(pathloss.pathloss_db("3gpp-uma-nlos", d, 3.5e9)) / 10)


def test_a_transfer_follows_its_sinr_as_the_other_cell_starts_and_stops():
    w = two_cells_apart()
    s = w.serving_cell
    band = w.channel_state().total_bandwidth_hz
    p = w.devices.max_power_w
    noise = ofdma.noise_psd_w_per_hz(w.config.ofdma.bs_noise_figure_db)
    cap = w.config.ofdma.max_spectral_efficiency
    # A uploads alone, B computes, then uploads over the same band, then stops.
    flops_b = 5e8
    t1 = float(energy.compute_time_s(flops_b, w.devices.cpu_hz[1], w.devices.flops_per_cycle[1]))
    g_a, g_b = gain(w, 0, s[0]), gain(w, 1, s[1])
    i_at_a, i_at_b = p[1] * gain(w, 1, s[0]), p[0] * gain(w, 0, s[1])

    def rate(signal, interference):
        return float(ofdma.capped_shannon_rate_bps(band, signal / (noise * band + interference), cap))

    r_alone, r_a_hit = rate(p[0] * g_a, 0.0), rate(p[0] * g_a, i_at_a)
    # B uploads for 0.3 s while A is on air; A would need t1 + 0.8 s alone.
    bits_a, bits_b = r_alone * (t1 + 0.8), 0.3 * rate(p[1] * g_b, i_at_b)
    t2 = t1 + bits_b / rate(p[1] * g_b, i_at_b)
    expected = drain(0.0, bits_a, [r_alone, r_a_hit, r_alone], [t1, t2])
    plans = [DevicePlan(0, (Transfer("uplink", bits_a),), band, float(p[0])),
             DevicePlan(1, (Compute("device_forward", flops_b), Transfer("uplink", bits_b)), band, float(p[1]))]
    rows = w.run_round(1, plans, 9.0).rows
    a = next(r for r in rows if r["device"] == 0)
    b = next(r for r in rows if r["device"] == 1 and r["phase"] == "uplink")
    assert t2 < expected.end_s < 9.0 and r_a_hit < r_alone
    assert a["end_s"] == pytest.approx(expected.end_s, rel=1e-12)
    assert b["end_s"] == pytest.approx(t2, rel=1e-12)
    # time-averaged interference of A: i_at_a over [t1, t2] of its airtime
    assert a["interference_w"] == pytest.approx(i_at_a * (t2 - t1) / expected.end_s, rel=1e-9)
    assert b["interference_w"] == pytest.approx(i_at_b, rel=1e-9)
    assert a["sinr_db"] < a["snr_db"] and a["cell"] == s[0] and b["cell"] == s[1]


def test_with_reuse_3_neighbours_do_not_interfere():
    w = two_cells_apart()
    w = line_world(seed=w.seed, reuse=3)
    band = w.channel_state().total_bandwidth_hz
    assert band == pytest.approx(w.config.ofdma.usable_bandwidth_hz / 3)
    plans = [DevicePlan(i, (Transfer("uplink", 1e6), Transfer("downlink", 1e6, direction="downlink")), band,
                        float(w.devices.max_power_w[i])) for i in range(2)]
    rows = w.run_round(1, plans, 9.0).rows
    assert all(r["interference_w"] == 0.0 and r["sinr_db"] == r["snr_db"] for r in rows)


def test_one_site_without_interference_gives_the_snr_of_the_single_cell_formulas():
    cfg = WorldConfig(num_devices=6, cells=CellsConfig(enabled=True))  # 1 hex site, reuse 1
    w = World(cfg, seed=4)
    band = w.channel_state().total_bandwidth_hz
    plans = [DevicePlan(i, (Transfer("uplink", 3e5), Transfer("downlink", 3e5, direction="downlink")), band / 6,
                        float(w.devices.max_power_w[i])) for i in range(6)]
    w.run_round(1, plans, 9.0)
    b, p = np.full(6, band / 6), w.devices.max_power_w
    rate, snr = ofdma.uplink_rate_bps(b, p, w._link_gain, ofdma.noise_psd_w_per_hz(cfg.ofdma.bs_noise_figure_db),
                                      cfg.ofdma.max_spectral_efficiency)
    assert np.array_equal(w._snr_ul, snr) and np.array_equal(w._rate_ul, rate)
    rows = w.run_round(2, plans, 9.0).rows
    assert all(r["interference_w"] == 0.0 and r["sinr_db"] == r["snr_db"] for r in rows)


def test_sequential_schedule_records_a_device_whose_turn_never_came_with_its_cell():
    # One device's upload takes the whole deadline; on the sequential schedule the second
    # device's turn never comes, and its deadline row still says which cell served it.
    w = two_cells_apart()
    band = w.channel_state().total_bandwidth_hz
    plans = [DevicePlan(i, (Transfer("uplink", 1e12),), band, float(w.devices.max_power_w[i])) for i in range(2)]
    rows = w.run_round(1, plans, 1.0, schedule="sequential").rows
    late = [r for r in rows if r["device"] == 1]
    assert [r["reason"] for r in late] == [Reason.DEADLINE.value]
    assert late[0]["cell"] == w.serving_cell[1] and late[0]["start_s"] == late[0]["end_s"] == 1.0


def test_per_cell_band_is_checked_per_cell():
    w = two_cells_apart()
    band = w.channel_state().total_bandwidth_hz
    # both cells may use the whole band at once...
    ok = [DevicePlan(i, (), band, 0.1) for i in range(2)]
    w.run_round(1, ok, 1.0)
    # ...but not twice it in one cell (3 devices in 2 cells: two share one)
    w2 = line_world(num_devices=3, seed=1)
    s = w2.serving_cell
    busiest = np.bincount(s).argmax()
    same = [i for i in range(3) if s[i] == busiest][:2]
    with pytest.raises(ValueError, match=f"sum of bandwidth_hz in cell {busiest}"):
        w2.run_round(1, [DevicePlan(i, (), band, 0.1) for i in same], 1.0)


def corridor(policy="migrate", n=8, seed=2):
    cfg = WorldConfig(
        num_devices=n, cell_radius_m=250.0, mobility=HighwayConfig(lanes=4, offset_m=30.0, start_in_cell=False),
        cells=CellsConfig(enabled=True, layout=LayoutConfig(kind="line", num_sites=6, isd_m=500.0, wrap_around=True,
                                                             line_offset_m=10.0),
                          handover=HandoverConfig(policy=policy, backhaul_bps=1e8, backhaul_latency_s=0.004)),
    )
    return World(cfg, seed=seed)


def test_every_vehicle_hands_over_when_it_drives_a_kilometre():
    w = corridor()
    w.advance(60.0)  # >= 1 km at >= 60 km/h: at least two cell borders
    assert set(h["device"] for h in w.handover_log) == set(range(8))
    for h in w.handover_log:
        assert h["from_cell"] != h["to_cell"]


def run_until_handover(w, server_state_bits=3e6):
    for r in range(1, 40):
        st = w.channel_state()
        counts = np.bincount(st.serving_cell, minlength=w.num_sites)
        plans = [DevicePlan(i, (Compute("device_forward", 1e9), Transfer("uplink", 4e7),
                                Compute("server", 5e10, where="server"), Transfer("downlink", 4e7, direction="downlink")),
                            st.total_bandwidth_hz / counts[st.serving_cell[i]], float(st.max_power_w[i]), 5,
                            server_state_bits) for i in range(w.num_devices)]
        res = w.run_round(r, plans, 4.0)
        ho = [row for row in res.rows if row["phase"] == "handover"]
        # idle in the round (its pipeline done): traced with nothing to move
        idle = [h for h in ho if h["bits"] == 0.0 and h["reason"] == ""]
        assert all(h["end_s"] == h["start_s"] for h in idle)
        busy = [h for h in ho if h not in idle]
        if busy:
            return res, busy
    raise AssertionError("no handover in 40 rounds")


def test_a_migrated_session_costs_its_bits_over_the_backhaul_and_the_server_waits():
    res, ho = run_until_handover(corridor("migrate"))
    h = ho[0]
    assert h["reason"] == "" and h["cell"] != h["from_cell"]
    # its server adapters, plus the activations of the uplink if one was in flight
    assert h["bits"] in (3e6, 3e6 + 4e7)
    assert h["end_s"] - h["start_s"] == pytest.approx(0.004 + h["bits"] / 1e8, rel=1e-12)
    later = [r for r in res.rows if r["device"] == h["device"] and r["phase"] in ("server", "downlink")
             and r["end_s"] > h["start_s"] and r["reason"] == ""]
    assert all(r["end_s"] >= h["end_s"] for r in later)


def test_drop_policy_stops_the_device_with_reason_handover():
    res, ho = run_until_handover(corridor("drop"))
    dropped = {h["device"] for h in ho}
    assert all(h["reason"] == "handover" and h["bits"] == 0.0 for h in ho)
    for o in res.outcomes:
        if o.device in dropped:
            assert o.reason == Reason.HANDOVER and not o.finished


def test_state_round_trip_continues_identically():
    a = corridor(seed=5)
    a.advance(3.0)
    state = a.state_dict()
    b = corridor(seed=99)
    b.load_state_dict(state)
    for w in (a, b):
        w.advance(7.0)
    assert a.handover_log == b.handover_log
    ra, _ = run_until_handover(a)
    rb, _ = run_until_handover(b)
    assert len(ra.rows) == len(rb.rows)
    for x, y in zip(ra.rows, rb.rows):
        assert all((x[k] == y[k]) or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k])) for k in x)


def test_multicell_refuses_per_device_los_and_per_rb_fading():
    with pytest.raises(ValueError, match="pathloss_model"):
        line_world(channel=ChannelConfig(pathloss_model="3gpp-uma"))
    with pytest.raises(ValueError, match="per_rb_fading"):
        line_world(channel=ChannelConfig(per_rb_fading=True))


def test_every_handover_during_a_round_is_a_trace_row():
    w = corridor(seed=7)
    seen = 0
    for r in range(1, 12):
        before = len(w.handover_log)
        st = w.channel_state()
        counts = np.bincount(st.serving_cell, minlength=w.num_sites)
        plans = [DevicePlan(i, (Compute("device_forward", 2e9 * (1 + i % 3)), Transfer("uplink", 2e7)),
                            st.total_bandwidth_hz / counts[st.serving_cell[i]], float(st.max_power_w[i]), 5, 1e6)
                 for i in range(0, w.num_devices, 2)]  # half the vehicles idle
        res = w.run_round(r, plans, 4.0)
        rows = [(x["device"], x["from_cell"], x["cell"]) for x in res.rows if x["phase"] == "handover"]
        assert rows == [(h["device"], h["from_cell"], h["to_cell"]) for h in w.handover_log[before:]]
        seen += len(rows)
    assert seen > 0
