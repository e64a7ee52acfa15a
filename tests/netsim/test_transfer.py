"""The pure drain of bits at a piecewise-constant rate: golden values by hand, and the World agrees."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.channel import ChannelConfig
from netsim.energy import DeviceConfig
from netsim.transfer import drain, drained_bits, segment_end
from netsim.world import DevicePlan, Transfer, World, WorldConfig


def test_constant_rate():
    # 1e6 bits at 2 Mbit/s from 0.5 s: 0.5 s of airtime, 0.2 W x 0.5 s = 0.1 J
    d = drain(0.5, 1e6, [2e6], power_w=0.2)
    assert (d.end_s, d.bits_sent, d.completed) == (1.0, 1e6, True)
    assert d.energy_j == pytest.approx(0.1, rel=1e-15)


def test_rate_change_midway():
    # From 4 ms: 6 ms at 1 Mbit/s = 6,000 bits; the other 24,000 at 2.5 Mbit/s take 9.6 ms
    d = drain(0.004, 30_000, [1e6, 2.5e6], [0.01], power_w=0.1)
    assert d.end_s == pytest.approx(0.0196, abs=1e-15)
    assert d.bits_sent == 30_000 and d.completed
    assert d.energy_j == pytest.approx(0.1 * 0.0156, rel=1e-12)


def test_pieces_before_start_are_skipped_and_a_zero_rate_piece_sends_nothing():
    # Start 15 ms: [15, 20) ms at 1 Mbit/s = 5,000 bits, [20, 30) ms at 0, then 5,000 at 4 Mbit/s
    d = drain(0.015, 10_000, [9e9, 1e6, 0.0, 4e6], [0.01, 0.02, 0.03])
    assert d.end_s == pytest.approx(0.03125, abs=1e-15)
    assert d.energy_j == 0.0 and d.completed


def test_energy_allowance_stops_the_transfer():
    # 1 Mbit at 1 Mbit/s would take 1 s; 0.25 J at 0.5 W lasts 0.5 s: half the bits are sent
    d = drain(0.0, 1e6, [1e6], power_w=0.5, energy_limit_j=0.25)
    assert (d.end_s, d.bits_sent, d.completed) == (0.5, 5e5, False)
    assert d.energy_j == 0.25


def test_finishing_exactly_when_the_energy_runs_out_completes():
    d = drain(0.0, 1e6, [1e6], power_w=0.5, energy_limit_j=0.5)
    assert d.completed and d.end_s == 1.0


def test_zero_rate_for_ever_never_ends_and_empty_payload_ends_at_once():
    d = drain(0.0, 1.0, [0.0], power_w=0.1)
    assert d.end_s == math.inf and not d.completed
    d = drain(2.0, 0.0, [1e6], power_w=0.1)
    assert (d.end_s, d.bits_sent, d.energy_j, d.completed) == (2.0, 0.0, 0.0, True)


def test_segment_helpers():
    assert segment_end(1.0, 100.0, 50.0, math.inf) == (3.0, True)
    assert segment_end(1.0, 100.0, 50.0, 2.0) == (2.0, False)
    assert segment_end(1.0, 100.0, 0.0, 5.0) == (5.0, False)
    assert drained_bits(10.0, 2.0, 100.0) == 20.0
    assert drained_bits(10.0, 20.0, 100.0) == 100.0


def test_schedule_length_is_checked():
    with pytest.raises(ValueError, match="change_times_s"):
        drain(0.0, 1.0, [1.0, 2.0], [])


class _Scripted(World):
    """Rate ``script[k]`` in channel interval k for every device (the World's own scheduling)."""

    script = (1e6,)

    def _compute_rates(self):
        super()._compute_rates()
        rate = self.script[min(self._interval, len(self.script) - 1)]
        self._rate_ul = np.full(self.num_devices, rate)
        self._rate_dl = self._rate_ul


@settings(max_examples=60, deadline=None)
@given(
    script=st.lists(st.floats(1e4, 1e7), min_size=1, max_size=8),
    bits=st.floats(1.0, 2e5),
    offset_s=st.floats(0.0, 0.05),
    budget_j=st.floats(1e-4, 1.0),
)
def test_world_transfer_equals_the_pure_drain_exactly(script, bits, offset_s, budget_j):
    cls = type("W", (_Scripted,), {"script": tuple(script)})
    device = DeviceConfig(cpu_hz_range=(1e9, 1e9), battery_j_range=(1e4, 1e4), energy_budget_j=budget_j)
    cfg = WorldConfig(num_devices=1, coherence_s=0.01, device=device,
                      channel=ChannelConfig(shadowing=False, fading="none"))
    world = cls(cfg, seed=0)
    world.advance(offset_s)
    start, k0 = world.now_s, world.interval
    result = world.run_round(1, [DevicePlan(0, [Transfer("uplink", bits)], 1e6, 0.1)], deadline_s=100.0)
    (row,) = result.rows
    # Rates from interval k0 on, one piece per channel update (the World splits a transfer at
    # every update, (k + 1) * coherence_s, even where the rate stays the same).
    pieces = math.ceil(bits / min(script) / cfg.coherence_s) + 2
    rates = [script[min(k, len(script) - 1)] for k in range(k0, k0 + pieces)]
    changes = [(k + 1) * cfg.coherence_s for k in range(k0, k0 + pieces - 1)]
    d = drain(start, bits, rates, changes, power_w=0.1, energy_limit_j=budget_j)
    assert (row["end_s"], row["bits"], row["energy_j"]) == (d.end_s, d.bits_sent, d.energy_j)
    assert (row["reason"] == "") == d.completed
