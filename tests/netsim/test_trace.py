"""The typed trace row: the writer's columns, derived deadline_met, plain-string reason."""

import dataclasses
import math

import pytest

from netsim.plans import Compute, DevicePlan, Transfer
from netsim.reasons import Reason
from netsim.trace import DeviceRound, TraceRow

COLUMNS = [
    "round", "device", "step", "phase", "start_s", "end_s", "bits", "rate_bps", "power_w", "bandwidth_hz",
    "energy_j", "flops", "tokens_kept", "snr_db", "deadline_met", "reason",
]


def _row(reason):
    return TraceRow(3, 1, 0, "uplink", 0.5, 0.75, 1e5, 4e5, 0.2, 1e6, 0.05, 0.0, 12, 7.5, reason)


def test_as_dict_has_the_columns_in_order_and_plain_values():
    d = _row(Reason.COMPLETED).as_dict()
    assert list(d) == COLUMNS
    assert d["deadline_met"] is True and d["reason"] == "" and type(d["reason"]) is str
    assert d["energy_j"] == 0.05 and d["tokens_kept"] == 12


@pytest.mark.parametrize("reason", [Reason.DEADLINE, Reason.ENERGY, Reason.BATTERY, Reason.LEFT_CELL])
def test_a_stopped_phase_has_not_met_its_deadline(reason):
    d = _row(reason).as_dict()
    assert d["deadline_met"] is False and d["reason"] == str(reason) and type(d["reason"]) is str


def test_row_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        _row(Reason.COMPLETED).energy_j = 1.0


def test_device_round_accounts_energy_and_binding_limit():
    plan = DevicePlan(4, [Compute("device_forward", 1e9), Transfer("uplink", 1e5)], 2e6, 0.1, tokens_kept=9)
    r = DeviceRound(plan, round_index=2, start_s=1.0, budget_j=1.0, battery_j=0.7)
    assert r.energy_limit() == (0.7, Reason.BATTERY)
    r.record(plan.phases[0], 1.0, 1.5, 0.0, 0.0, 0.0, 0.4, 1e9, math.nan, Reason.COMPLETED)
    assert r.energy_limit() == pytest.approx((0.3, Reason.BATTERY))
    r.record_stop(plan.phases[1], 1.5, Reason.DEADLINE)
    assert r.energy_j == 0.4 and r.end_s == 1.5 and r.reason == Reason.DEADLINE
    first, second = (row.as_dict() for row in r.rows)
    assert (first["round"], first["device"], first["bandwidth_hz"], first["tokens_kept"]) == (2, 4, 2e6, 9)
    assert second["bits"] == 0.0 and math.isnan(second["snr_db"]) and second["reason"] == "deadline"
