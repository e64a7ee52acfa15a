"""Whole-RB rounding: hand-worked cases, the band, one block each, deadlines kept."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.allocation.rb_rounding import rb_latency_s, round_to_rbs
from netsim.reasons import Reason

RB = 360e3
N0 = 1e-20


def linear_case(shares_rb, deadline_s, num_rb, payload_bits=None):
    # p g / N0 = 1e20 Hz puts every device far past a cap of 1 bit/s/Hz, so R = n RB exactly
    # and the latency is S / (n RB): hand-workable.
    n = len(shares_rb)
    payload = np.full(n, 1e6) if payload_bits is None else np.asarray(payload_bits, float)
    return round_to_rbs(
        np.asarray(shares_rb, float) * RB, RB, num_rb, payload, np.full(n, 1.0), np.full(n, 1.0), N0,
        np.zeros(n), np.asarray(deadline_s, float), max_spectral_efficiency=1.0,
    )


def test_largest_remainder_by_hand():
    # Shares 2.5, 1.5, 1.0 of 5 blocks: floors 2, 1, 1; one block left goes to the largest
    # remainder (0.5, tie broken by order: device 0) -> 3, 1, 1. Loose deadlines.
    out = linear_case([2.5, 1.5, 1.0], [10.0] * 3, 5)
    assert out.rb_counts.tolist() == [3, 1, 1]
    assert list(out.status) == [Reason.ALLOCATED] * 3
    # Latency S / (n RB): 1e6 / 1.08e6, 1e6 / 3.6e5.
    assert out.latency_s == pytest.approx([1e6 / (3 * RB), 1e6 / RB, 1e6 / RB])


def test_repair_moves_a_block_from_the_most_slack_to_the_latest():
    # Same shares; device 1 needs 2 blocks: 1e6 / (2 RB) = 1.389 s <= 1.5 s, but 2.78 s on 1.
    # Device 0 (3 blocks, deadline 10 s) has the most slack: 3 -> 2, device 1: 1 -> 2.
    out = linear_case([2.5, 1.5, 1.0], [10.0, 1.5, 10.0], 5)
    assert out.rb_counts.tolist() == [2, 2, 1]
    assert list(out.status) == [Reason.ALLOCATED] * 3


def test_no_donor_leaves_the_deadline_status():
    # Device 1 needs 3 blocks (1e6 / (3 RB) = 0.926 s <= 1 s), nobody can spare a block
    # without missing their own 1.5 s deadline (2 blocks: 1.389 s; 1 block: 2.78 s).
    out = linear_case([2.0, 1.0, 2.0], [1.5, 1.0, 1.5], 5)
    assert out.rb_counts.tolist() == [2, 1, 2]
    assert list(out.status) == [Reason.ALLOCATED, Reason.DEADLINE, Reason.ALLOCATED]


def test_more_devices_than_blocks_and_zero_shares():
    out = linear_case([0.9, 0.5, 0.3, 0.0], [10.0] * 4, 2)
    assert out.rb_counts.tolist() == [1, 1, 0, 0]
    assert list(out.status) == [Reason.ALLOCATED, Reason.ALLOCATED, Reason.CAPACITY, Reason.NOT_SCHEDULED]
    assert out.latency_s[2] == np.inf


def test_a_device_below_one_block_gets_one_from_a_donor():
    # Shares 3.6, 0.4 of 4 blocks: floors 3, 0; remainders 0.6, 0.4; one left -> device 0: 4, 0.
    # Then device 1 needs one block: device 0 gives one (3 blocks still meet 10 s).
    out = linear_case([3.6, 0.4], [10.0, 10.0], 4)
    assert out.rb_counts.tolist() == [3, 1]


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="num_rb"):
        linear_case([1.0], [1.0], 0)
    with pytest.raises(ValueError, match="bandwidth_hz"):
        linear_case([-1.0], [1.0], 3)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 60),
    st.integers(0, 2**31 - 1),
)
def test_properties_on_random_allocations(n, num_rb, seed):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(n)) * num_rb * rng.uniform(0.5, 1.0)
    gain = 10 ** rng.uniform(-13, -8, n)
    power = rng.uniform(0.01, 0.2, n)
    payload = rng.uniform(1e4, 1e6, n)
    compute = rng.uniform(0.0, 0.5, n)
    cap = 7.4063
    kw = dict(payload_bits=payload, power_w=power, gain_lin=gain, noise_psd_w_per_hz=4e-21, compute_s=compute,
              max_spectral_efficiency=cap)
    # Deadlines: each device's continuous latency times a factor around 1.
    t_cont = compute + payload / (w * RB * np.minimum(np.log2(1 + power * gain / (4e-21 * w * RB)), cap))
    deadline = t_cont * rng.uniform(0.8, 1.5, n)
    out = round_to_rbs(w * RB, RB, num_rb, deadline_s=deadline, **kw)
    assert out.rb_counts.sum() <= num_rb
    has = out.rb_counts >= 1
    assert np.all(has | (out.status == Reason.CAPACITY))
    assert np.all((out.status == Reason.CAPACITY) <= (out.rb_counts == 0))
    # Where the continuous share met the deadline with a margin of one block, it still does.
    margin_ok = rb_latency_s(w - 1.0, RB, payload, power, gain, 4e-21, compute, cap) <= deadline
    margin_ok &= w >= 1.0
    assert np.all(out.latency_s[margin_ok] <= deadline[margin_ok])
    assert np.all((out.status == Reason.DEADLINE) == (has & (out.latency_s > deadline)))
    assert np.array_equal(out.latency_s, rb_latency_s(out.rb_counts, RB, payload, power, gain, 4e-21, compute, cap))
