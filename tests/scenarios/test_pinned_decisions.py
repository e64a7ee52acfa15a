"""How far a last-bit difference of a learned quantity propagates into the simulator.

ST-SFLora's token budgets maximise sum f_i(K_i) / max_i T_i, where the retention curves f_i
come from the device model's [CLS] attention: float32 numbers whose last bits depend on the
CPU's kernels (``test_pinned``). Where two budgets score within a float32 ulp, that last bit
decides. These tests show both sides:

* at a tie, one ulp of f moves the whole decision of the round (tokens, payload, latency), and
  from then on a run trains on other tokens, so everything learned after it differs too;
* the pinned runs are far from such a tie: a one-ulp nudge of every retention value leaves
  their decisions exactly as pinned (the exact values of ``test_pinned`` are sound).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from netsim.allocation import AllocationProblem, max_ste

sys.path.insert(0, str(Path(__file__).parent))
from test_pinned import PINNED, measure, mismatches  # noqa: E402

K_MAX = 16

NUDGED_POLICY = '''
import dataclasses

import numpy as np

from scenarios.policies.st_sflora import StSFLora


class NudgedStSFLora(StSFLora):
    """ST-SFLora on retention curves one float32 ulp off: up at even K, down at odd K."""

    name = "st-sflora"

    def decide(self, view):
        original = view.retention_of

        def nudged():
            r = np.asarray(original(), dtype=np.float64)
            r32 = r.astype(np.float32)
            up = np.nextafter(r32, np.float32(np.inf)).astype(np.float64)
            down = np.nextafter(r32, np.float32(-np.inf)).astype(np.float64)
            even = (np.arange(r.shape[1]) % 2 == 0)[None, :]
            return np.where(r > 0, np.where(even, up, np.maximum(down, 0.0)), r)

        return super().decide(dataclasses.replace(view, retention_of=nudged))
'''


def _tie(retention: np.ndarray) -> AllocationProblem:
    """One device, no compute time, no extra tokens: T(K) = beta K / R, so with f(K) = K / K_max
    every budget has the same STE R / (beta K_max) and the curve's last bits decide."""
    return AllocationProblem(
        gain_lin=np.array([1e-10]), noise_psd_w_per_hz=4e-21, total_bandwidth_hz=1e6,
        max_power_w=np.array([0.2]), energy_budget_j=np.array([1e6]), deadline_s=np.array([1e3]),
        bits_per_token=np.array([1e4]), retention=retention[None], compute_time_s=0.0,
        compute_energy_j=0.0, extra_tokens=0, min_tokens=1)


# float32 values, as the learner computes them
LINEAR = (np.arange(K_MAX + 1) / K_MAX).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("k", range(1, K_MAX))
def test_one_float32_ulp_of_retention_moves_the_whole_decision_at_a_tie(k):
    base = max_ste(_tie(LINEAR))
    nudged_curve = LINEAR.copy()
    nudged_curve[k] = float(np.nextafter(np.float32(LINEAR[k]), np.float32(2.0)))
    assert (nudged_curve[k] - LINEAR[k]) / LINEAR[k] < 2 ** -22  # one float32 ulp
    nudged = max_ste(_tie(nudged_curve))
    assert int(base.tokens[0]) == K_MAX and int(nudged.tokens[0]) == k
    # It propagates to everything the round's radio does: payload and latency scale with K
    # (same band, same power), so the round's uplink shrinks by k / K_max.
    assert nudged.bandwidth_hz[0] == pytest.approx(base.bandwidth_hz[0], rel=1e-9)
    assert nudged.latency_s[0] / base.latency_s[0] == pytest.approx(k / K_MAX, rel=1e-9)
    assert nudged.ste == pytest.approx(base.ste, rel=1e-6)  # the objective barely moves


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from smallrun import make_fashion_mnist

    return make_fashion_mnist(tmp_path_factory.mktemp("fmnist-nudge"), n_train=400, n_test=100)


@pytest.mark.parametrize("case", ["st-sflora", "st-sflora@tight"])
def test_pinned_runs_are_not_at_a_tie(case, data_dir, tmp_path):
    policy_file = tmp_path / "nudged.py"
    policy_file.write_text(NUDGED_POLICY)
    tight = case.partition("@")[2]
    got = measure("static-cell", f"{policy_file}:NudgedStSFLora" + (f"@{tight}" if tight else ""),
                  data_dir, tmp_path)
    pinned = json.loads(PINNED.read_text())[f"static-cell/{case}"]
    bad = mismatches(got, pinned)
    assert not bad, "a one-ulp nudge of the retention changed: " + "; ".join(bad)
