"""Tests of netsim.allocation.cut_layer: hand-worked cases, properties, the ViT finding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.allocation.cut_layer import choose_cut_layer
from netsim.reasons import Reason

# Two devices, cuts 1 and 2, worked by hand:
#   device 0: f = 1 GHz, phi = 1 (1 s per GFLOP); device 1: f = 2 GHz, phi = 8 (1/16 s per GFLOP);
#   server share 10 GFLOP/s; uplink 10 Mbit/s, downlink 100 Mbit/s; 8 Mbit each way at both cuts.
#   T0(1) = 1 + 0.8 + 0.3 + 0.08 = 2.18     T0(2) = 2 + 0.8 + 0.2 + 0.08 = 3.08     -> cut 1
#   T1(1) = 0.0625 + 0.8 + 0.3 + 0.08 = 1.2425   T1(2) = 0.125 + 0.8 + 0.2 + 0.08 = 1.205 -> cut 2
#   energy, kappa = 1e-28, p = 0.2 W (0.16 J on air):
#   E1(1) = 1e-28 (1e9 / 8) 4e18 + 0.16 = 0.21 J    E1(2) = 0.1 + 0.16 = 0.26 J
HAND = dict(
    cuts=[1, 2], device_flops=[1e9, 2e9], server_flops=[3e9, 2e9], uplink_bits=[8e6, 8e6],
    downlink_bits=[8e6, 8e6], cpu_hz=[1e9, 2e9], flops_per_cycle=[1.0, 8.0], kappa=1e-28,
    server_flops_per_s=1e10, uplink_rate_bps=1e7, downlink_rate_bps=1e8, tx_power_w=0.2,
    energy_budget_j=10.0,
)


def test_hand_worked_two_devices_two_cuts():
    out = choose_cut_layer(**HAND)
    np.testing.assert_array_equal(out.cut, [1, 2])
    np.testing.assert_allclose(out.latency_table_s, [[2.18, 3.08], [1.2425, 1.205]])
    np.testing.assert_allclose(out.latency_s, [2.18, 1.205])
    np.testing.assert_allclose(out.energy_table_j[1], [0.21, 0.26])
    assert out.status == (Reason.ALLOCATED, Reason.ALLOCATED)


def test_energy_budget_moves_the_cut_or_excludes():
    out = choose_cut_layer(**{**HAND, "energy_budget_j": [10.0, 0.25]})
    assert out.cut[1] == 1 and out.energy_j[1] == pytest.approx(0.21)
    out = choose_cut_layer(**{**HAND, "energy_budget_j": [10.0, 0.2]})
    assert out.status[1] == Reason.ENERGY
    assert out.cut[1] == 2  # its fastest cut, reported although excluded


def test_deadline_excludes():
    out = choose_cut_layer(**{**HAND, "deadline_s": [2.0, 5.0]})
    assert out.status == (Reason.DEADLINE, Reason.ALLOCATED)


@pytest.mark.parametrize("name, value", [
    ("cuts", [2, 1]), ("cuts", [1.0, 2.0]), ("device_flops", [1e9]), ("cpu_hz", [0.0, 1e9]),
    ("uplink_rate_bps", [1e7, -1.0]), ("server_flops", [[1.0, 2.0]]), ("kappa", np.nan),
])
def test_validation_names_the_argument(name, value):
    with pytest.raises(ValueError, match=name):
        choose_cut_layer(**{**HAND, name: value})


# ------------------------------------------------------------------------ properties

CUTS = 5


def _increasing(draw, low, high):
    steps = draw(st.lists(st.floats(low, high), min_size=CUTS, max_size=CUTS))
    return np.cumsum(steps)


@st.composite
def instances(draw, constant_payload: bool):
    dev = _increasing(draw, 1e7, 1e10)
    srv = np.array(draw(st.lists(st.floats(0.0, 1e11), min_size=CUTS, max_size=CUTS)))
    if constant_payload:
        up = np.full(CUTS, draw(st.floats(1e3, 1e9)))
        dn = np.full(CUTS, draw(st.floats(0.0, 1e9)))
    else:
        up = _increasing(draw, 0.0, 1e8) + draw(st.floats(1e3, 1e9))
        dn = _increasing(draw, 0.0, 1e8)
    return dict(
        cuts=np.arange(1, CUTS + 1), device_flops=dev, server_flops=srv, uplink_bits=up,
        downlink_bits=dn, cpu_hz=[draw(st.floats(1e8, 3e9))],
        flops_per_cycle=draw(st.floats(1.0, 32.0)), kappa=draw(st.floats(1e-29, 1e-27)),
        server_flops_per_s=draw(st.floats(1e9, 1e13)),
        uplink_rate_bps=draw(st.floats(1e5, 1e9)), downlink_rate_bps=draw(st.floats(1e5, 1e9)),
        tx_power_w=draw(st.floats(0.0, 0.5)), energy_budget_j=draw(st.floats(1e-3, 1e3)),
        deadline_s=draw(st.floats(0.1, 1e4)),
    )


def _near_tie(out, i, j):
    t = out.latency_table_s[0]
    return np.isclose(t[i], t[j], rtol=1e-9, atol=0.0)


@settings(max_examples=300, deadline=None)
@given(instances(constant_payload=True), st.floats(1.01, 20.0))
def test_faster_cpu_never_cuts_earlier_without_energy_limit(inst, factor):
    # Only without a binding energy budget: a faster CPU also costs kappa f^2 more per cycle.
    inst = {**inst, "energy_budget_j": np.inf, "deadline_s": np.inf}
    slow = choose_cut_layer(**inst)
    fast = choose_cut_layer(**{**inst, "cpu_hz": np.asarray(inst["cpu_hz"]) * factor})
    i, j = slow.cut[0] - 1, fast.cut[0] - 1
    assert fast.cut[0] >= slow.cut[0] or _near_tie(fast, i, j) or _near_tie(slow, i, j)


@settings(max_examples=300, deadline=None)
@given(instances(constant_payload=False), st.floats(1.01, 100.0))
def test_slower_link_never_cuts_later_when_adapters_grow(inst, factor):
    fast = choose_cut_layer(**inst)
    slow = choose_cut_layer(**{**inst, "uplink_rate_bps": inst["uplink_rate_bps"] / factor,
                               "downlink_rate_bps": inst["downlink_rate_bps"] / factor})
    if fast.ok[0] and slow.ok[0]:
        i, j = fast.cut[0] - 1, slow.cut[0] - 1
        assert slow.cut[0] <= fast.cut[0] or _near_tie(fast, i, j) or _near_tie(slow, i, j)


def test_faster_cpu_can_cut_earlier_under_an_energy_budget():
    # The counterpart of the property above: with kappa f^2 per cycle, quadrupling f makes
    # the deeper cut too expensive. Device FLOPs 1e9 / 2e9, phi = 1, kappa = 1e-28:
    # f = 1 GHz: E = 0.1 / 0.2 J, f = 2 GHz: E = 0.4 / 0.8 J; budget 0.5 J.
    inst = dict(cuts=[1, 2], device_flops=[1e9, 2e9], server_flops=[1e11, 0.0],
                uplink_bits=[1e6, 1e6], downlink_bits=[0.0, 0.0], cpu_hz=[1e9],
                flops_per_cycle=1.0, kappa=1e-28, server_flops_per_s=1e10,
                uplink_rate_bps=1e7, downlink_rate_bps=1e8, tx_power_w=0.0,
                energy_budget_j=0.5)
    assert choose_cut_layer(**inst).cut[0] == 2
    assert choose_cut_layer(**{**inst, "cpu_hz": [2e9]}).cut[0] == 1


@settings(max_examples=200, deadline=None)
@given(instances(constant_payload=False))
def test_choice_is_the_brute_force_argmin_over_feasible_cuts(inst):
    out = choose_cut_layer(**inst)
    f, phi, kap = inst["cpu_hz"][0], inst["flops_per_cycle"], inst["kappa"]
    best, best_t = None, np.inf
    for k, cut in enumerate(inst["cuts"]):
        air = inst["uplink_bits"][k] / inst["uplink_rate_bps"]
        t = (inst["device_flops"][k] / (f * phi) + air
             + inst["server_flops"][k] / inst["server_flops_per_s"]
             + inst["downlink_bits"][k] / inst["downlink_rate_bps"])
        e = kap * inst["device_flops"][k] / phi * f**2 + inst["tx_power_w"] * air
        if t <= inst["deadline_s"] and e <= inst["energy_budget_j"] and t < best_t:
            best, best_t = cut, t
    if best is None:
        assert not out.ok[0]
    else:
        assert out.ok[0] and out.cut[0] == best
        assert out.latency_s[0] == pytest.approx(best_t, rel=1e-12)


# ------------------------------------------------------------------------ the ViT finding


def vit_costs(adapter_bits_per_block: float):
    """ViT-Tiny-like costs of one round, cuts 1..11 of 12 blocks, 10 steps of batch 16.

    Every block maps 65 x 192 tokens to 65 x 192 tokens: the activations up and their
    gradients down are the same at every cut; device FLOPs grow, server FLOPs shrink, by one
    block per cut (about 3 x 2 x 1.2e7 x 65 x 16 x 10 FLOPs, forward + backward).
    """
    cuts = np.arange(1, 12)
    block_flops = 3 * 2 * 1.2e7 * 65 * 16 * 10
    act_bits = 65 * 192 * 16 * 10 * 32.0
    return dict(cuts=cuts, device_flops=cuts * block_flops,
                server_flops=(12 - cuts) * block_flops,
                uplink_bits=act_bits + cuts * adapter_bits_per_block,
                downlink_bits=act_bits + cuts * adapter_bits_per_block)


@pytest.mark.parametrize("link_bps", [1e6, 1e8])
def test_vit_cut_is_the_earliest_when_the_device_is_slower_than_its_server_share(link_bps):
    # Slow link + fast phone CPU (3 GHz x 16 FLOP/cycle = 48 GFLOP/s) against a 100 GFLOP/s
    # server share: the cut stays at 1 for a slow and for a fast link alike.
    out = choose_cut_layer(**vit_costs(2 * 4 * 192 * 32), cpu_hz=[3e9], flops_per_cycle=16.0,
                           kappa=1e-28, server_flops_per_s=1e11, uplink_rate_bps=link_bps,
                           downlink_rate_bps=link_bps, tx_power_w=0.2, energy_budget_j=np.inf)
    assert out.cut[0] == 1


def test_vit_slow_link_moves_a_late_cut_earlier():
    # Device (48 GFLOP/s) a little faster per block than its server share (40 GFLOP/s):
    # block time 15.6 s on the device vs 18.7 s on the server, so a late cut on a fast link.
    # The adapters (0.59 Mbit per block each way) cost 11.8 s per block at 100 kbit/s, more
    # than the 3.1 s the device saves: the cut comes first. (Against a 5 GFLOP/s share the
    # device saves 134 s per block and only a link below ~9 kbit/s would move the cut.)
    kw = dict(cpu_hz=[3e9], flops_per_cycle=16.0, kappa=1e-28, server_flops_per_s=4e10,
              tx_power_w=0.2, energy_budget_j=np.inf)
    costs = vit_costs(2 * 4 * 192 * 32 * 2 * 6)  # rank-4 A and B of q, k, v, o, fc1, fc2
    fast = choose_cut_layer(**costs, uplink_rate_bps=1e9, downlink_rate_bps=1e9, **kw)
    slow = choose_cut_layer(**costs, uplink_rate_bps=1e5, downlink_rate_bps=1e5, **kw)
    assert fast.cut[0] == 11 and slow.cut[0] == 1
