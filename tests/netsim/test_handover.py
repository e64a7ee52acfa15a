import numpy as np
import pytest

from netsim.handover import HandoverConfig, a3_step, migration_s


def run(rsrp_seq, serving0, off=3.0, hys=1.0, ttt=3):
    serving = np.array(serving0)
    timer = np.zeros((len(serving0), rsrp_seq[0].shape[1]), dtype=int)
    history = []
    for rsrp in rsrp_seq:
        serving, timer, handed = a3_step(np.asarray(rsrp, float), serving, timer, off, hys, ttt)
        history.append((serving.copy(), handed.copy()))
    return history


def test_handover_after_exactly_time_to_trigger_measurements():
    # neighbour 5 dB better: 5 - 1 > 0 + 3 holds
    seq = [np.array([[-80.0, -75.0]])] * 4
    h = run(seq, [0], ttt=3)
    assert [int(s[0]) for s, _ in h] == [0, 0, 1, 1]
    assert [bool(x[0]) for _, x in h] == [False, False, True, False]


def test_condition_inside_hysteresis_band_never_triggers():
    # 4 dB better: 4 - 1 > 3 is false (equality does not enter)
    h = run([np.array([[-80.0, -76.0]])] * 10, [0], ttt=1)
    assert not any(x[0] for _, x in h)


def test_interrupted_condition_restarts_the_timer():
    good, bad = np.array([[-80.0, -70.0]]), np.array([[-80.0, -79.0]])
    h = run([good, good, bad, good, good, good], [0], ttt=3)
    assert [bool(x[0]) for _, x in h] == [False, False, False, False, False, True]


def test_goes_to_the_strongest_triggered_neighbour_per_device_independently():
    rsrp = np.array([[-80.0, -70.0, -60.0], [-60.0, -90.0, -90.0], [-90.0, -95.0, -60.0]])
    serving, timer, handed = a3_step(rsrp, np.array([0, 0, 1]), np.zeros((3, 3), int), 3.0, 1.0, 1)
    assert serving.tolist() == [2, 0, 2]
    assert handed.tolist() == [True, False, True]
    assert (timer[handed] == 0).all()


def test_inputs_are_not_modified():
    rsrp = np.array([[-80.0, -60.0]])
    serving, timer = np.array([0]), np.zeros((1, 2), int)
    a3_step(rsrp, serving, timer, 0.0, 0.0, 1)
    assert serving[0] == 0 and timer.sum() == 0


def test_ttt_steps_and_migration_time():
    c = HandoverConfig(time_to_trigger_s=0.16)
    assert c.time_to_trigger_steps(0.01) == 16
    assert HandoverConfig(time_to_trigger_s=0.0).time_to_trigger_steps(0.01) == 1
    assert HandoverConfig(time_to_trigger_s=0.045).time_to_trigger_steps(0.01) == 5
    # 8 Mbit over 1 Gbit/s plus 5 ms
    assert migration_s(8e6, 1e9, 0.005) == pytest.approx(0.013)


@pytest.mark.parametrize("kwargs,match", [
    ({"policy": "keep"}, "policy"),
    ({"backhaul_bps": 0.0}, "backhaul_bps"),
    ({"time_to_trigger_s": -1.0}, "time_to_trigger_s"),
    ({"hysteresis_db": float("nan")}, "hysteresis_db"),
])
def test_bad_handover_config_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HandoverConfig(**kwargs)
