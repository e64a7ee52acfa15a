"""A Decision is checked once, right after ``decide()``: every kind of invalid decision is one
line naming the policy and the device, and nothing trains in that round.

The loop runs with the deterministic learner of ``test_cosim`` (it records every training
call) and the real SimPy world; one test runs a misbehaving policy file through the CLI.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from netsim.reasons import Reason
from netsim.world import World
from scenarios.cli import main
from scenarios.config import ScenarioConfig
from scenarios.cosim import CoSimulation
from scenarios.policies import Decision, InvalidDecision, Policy, RoundView
from smallrun import small_args
from test_cosim import K_MAX, CountingLearner

DEVICES = 3


def good(view: RoundView) -> Decision:
    m = view.num_devices
    return Decision(tokens=np.full(m, 5), bandwidth_hz=np.full(m, view.total_bandwidth_hz / m),
                    power_w=view.max_power_w.copy(), status=np.full(m, Reason.ALLOCATED.value, dtype=object))


def _set(view: RoundView, field: str, j: int, value) -> Decision:
    d = good(view)
    arr = np.asarray(getattr(d, field)).astype(object if field == "status" else float).copy()
    arr[j] = value
    return Decision(**{**d.__dict__, field: arr})


def _raise(view: RoundView):
    raise ZeroDivisionError("division by zero")


# (kind, what decide() returns for a view, fragment of the one-line error after "policy bad: ")
CASES = [
    ("raises", _raise, "decide() raised ZeroDivisionError: division by zero"),
    ("returns None", lambda v: None, "decide() must return a Decision, got NoneType"),
    ("returns a tuple", lambda v: (good(v).tokens, good(v).bandwidth_hz), "decide() must return a Decision, got tuple"),
    ("short tokens", lambda v: Decision(**{**good(v).__dict__, "tokens": np.full(2, 5)}),
     "Decision.tokens must hold one entry per device of the view (3), got shape (2,)"),
    ("short status", lambda v: Decision(**{**good(v).__dict__, "status": np.array(["ok"], dtype=object)}),
     "Decision.status must hold one entry per device of the view (3), got shape (1,)"),
    ("NaN tokens", lambda v: _set(v, "tokens", 1, math.nan), "device 1: tokens=nan is not a finite number"),
    ("NaN bandwidth", lambda v: _set(v, "bandwidth_hz", 2, math.nan),
     "device 2: bandwidth_hz=nan is not a finite number"),
    ("inf power", lambda v: _set(v, "power_w", 0, math.inf), "device 0: power_w=inf is not a finite number"),
    ("tokens 0", lambda v: _set(v, "tokens", 1, 0), f"device 1: tokens=0.0 must be an integer in [1, {K_MAX}]"),
    ("tokens above K_max", lambda v: _set(v, "tokens", 2, K_MAX + 1),
     f"device 2: tokens={float(K_MAX + 1)!r} must be an integer in [1, {K_MAX}]"),
    ("fractional tokens", lambda v: _set(v, "tokens", 0, 2.5),
     f"device 0: tokens=2.5 must be an integer in [1, {K_MAX}]"),
    ("negative bandwidth", lambda v: _set(v, "bandwidth_hz", 1, -1.0), "device 1: bandwidth_hz=-1.0 must be in [0, "),
    ("bandwidths above the band", lambda v: _set(v, "bandwidth_hz", 0, v.total_bandwidth_hz),
     "the bandwidths sum to"),
    ("negative power", lambda v: _set(v, "power_w", 2, -0.1), "device 2: power_w=-0.1 must be in [0, "),
    ("power above p_max", lambda v: _set(v, "power_w", 0, 2 * float(v.max_power_w[0])), "device 0: power_w="),
    ("status outside Reason", lambda v: _set(v, "status", 1, "maybe"), "device 1: status='maybe' must be one of "),
    ("status completed", lambda v: _set(v, "status", 0, ""), "device 0: status='' must be one of "),
    ("cut out of range", lambda v: Decision(**{**good(v).__dict__, "cut_layer": np.array([1, 7, 1])}),
     "device 1: cut_layer=7 must be an integer in [0, 2]"),
    ("cut without chooses_cut", lambda v: Decision(**{**good(v).__dict__, "cut_layer": np.array([1, 1, 0])}),
     "device 2: cut_layer=0 differs from the configured cut 1"),
    ("bits not allowed", lambda v: Decision(**{**good(v).__dict__, "bits_per_value": np.array([8, 20, 8])}),
     "device 1: bits_per_value=20 must be an integer in [1, 16] or 32"),
    ("bits zero", lambda v: Decision(**{**good(v).__dict__, "bits_per_value": np.array([0, 8, 8])}),
     "device 0: bits_per_value=0 must be an integer in [1, 16] or 32"),
]


class Bad(Policy):
    """Decides well in round 1, then returns what ``make`` says (one kind of invalid decision)."""

    name = "bad"
    label = "Bad"
    description = "test policy"

    def __init__(self, make) -> None:
        self.make, self.calls = make, 0

    def decide(self, view: RoundView):
        self.calls += 1
        return good(view) if self.calls == 1 else self.make(view)


@pytest.mark.parametrize("kind, make, fragment", CASES, ids=[c[0] for c in CASES])
def test_an_invalid_decision_is_one_line_naming_policy_and_device_and_nothing_trains(kind, make, fragment):
    config = ScenarioConfig(devices=DEVICES, rounds=2, deadline_s=5.0, token_maps=0)
    learner = CountingLearner(DEVICES)
    cosim = CoSimulation(config, Bad(make), World(config.world, seed=1), learner,
                         np.random.default_rng(0), np.random.default_rng(1))
    cosim.step()  # round 1: a valid decision, the devices train
    assert len(learner.trained) == 1
    with pytest.raises(InvalidDecision) as err:
        cosim.step()
    message = str(err.value)
    assert message.startswith("policy bad: ") and fragment in message, message
    assert "\n" not in message
    assert len(learner.trained) == 1  # round 2 trained nothing
    assert isinstance(err.value, ValueError)  # bad input: the CLI exits with status 2


def test_the_shipped_constructors_pass_the_check():
    config = ScenarioConfig(devices=DEVICES, rounds=1, deadline_s=5.0, token_maps=0)
    seen = []

    class Everyone(Policy):
        name, label, description = "everyone", "Everyone", "test policy"

        def decide(self, view):
            seen.append(view)
            return Decision.everyone(view, view.total_bandwidth_hz / view.num_devices, view.max_power_w)

    cosim = CoSimulation(config, Everyone(), World(config.world, seed=1), CountingLearner(DEVICES),
                         np.random.default_rng(0), np.random.default_rng(1))
    cosim.step()
    assert len(seen) == 1 and cosim.learner.trained == [([0, 1, 2], [K_MAX] * 3)]


BAD_FILE = '''
import numpy as np
from netsim.reasons import Reason
from scenarios.policies import Decision, Policy


class NegativePower(Policy):
    name = "negative-power"
    label = "Negative power"
    description = "gives the last device a negative power"

    def decide(self, view):
        m = view.num_devices
        power = view.max_power_w.copy()
        power[-1] = -0.2
        return Decision(tokens=np.full(m, 2), bandwidth_hz=np.full(m, view.total_bandwidth_hz / m),
                        power_w=power, status=np.full(m, Reason.ALLOCATED.value, dtype=object))
'''


def test_a_policy_file_with_an_invalid_decision_exits_2_in_one_line(tmp_path, fmnist_dir, capsys):
    path = tmp_path / "bad.py"
    path.write_text(BAD_FILE)
    out = tmp_path / "run"
    argv = ["run", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=2,
                                              policy=f"{path}:NegativePower"), "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "policy negative-power: device 2: power_w=-0.2 must be in [0, " in err, err
    # round 1 never trained: the tables hold round 0 (the starting evaluation) and no event
    events = [pd.read_parquet(p) for p in sorted(out.glob("events.parquet*/*.parquet"))]
    assert sum(len(e) for e in events) == 0
    rounds = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("rounds.parquet*/*.parquet"))])
    assert rounds["round"].tolist() == [0]
