import numpy as np
import pytest

from netsim.mobility import (
    HighwayConfig,
    HighwayMobility,
    RandomWaypointConfig,
    RandomWaypointMobility,
    StaticConfig,
    StaticMobility,
    make_mobility,
    uniform_in_annulus,
)
from netsim.units import kmh_to_mps

R = 500.0


def test_uniform_in_annulus_is_area_uniform():
    p = uniform_in_annulus(np.random.default_rng(0), 100_000, 0.0, R)
    r = np.hypot(p[:, 0], p[:, 1])
    assert r.max() <= R
    # Half of the area lies inside R / sqrt(2): fraction 0.5 within 4 sigma (sigma = 0.5/sqrt(n))
    assert np.mean(r <= R / np.sqrt(2)) == pytest.approx(0.5, abs=4 * 0.5 / np.sqrt(100_000))


def test_static():
    m = StaticMobility(StaticConfig(inner_radius_m=50.0), 200, R, np.random.default_rng(0))
    r = m.distances_2d_m()
    assert r.min() >= 50.0 and r.max() <= R
    before = m.positions_m.copy()
    assert np.all(m.step(1.0, np.random.default_rng(1)) == 0)
    assert np.array_equal(before, m.positions_m)
    assert np.all(m.in_cell()) and np.all(np.isinf(m.time_left_s()))


def test_random_waypoint_stays_in_cell_and_respects_speed():
    cfg = RandomWaypointConfig(speed_range_mps=(1.0, 3.0), pause_s=0.5)
    rng = np.random.default_rng(0)
    m = RandomWaypointMobility(cfg, 500, R, rng)
    paused_seen = False
    for _ in range(2000):
        before = m.positions_m.copy()
        moved = m.step(0.5, rng)
        step = np.hypot(*(m.positions_m - before).T)
        assert np.allclose(step, moved)
        assert np.all(moved <= 3.0 * 0.5 + 1e-9)
        assert np.all(m.distances_2d_m() <= R + 1e-9)
        paused_seen |= bool(np.any(m.speeds_mps == 0.0))
    assert paused_seen
    assert np.all((m.speeds_mps == 0) | ((m.speeds_mps >= 1.0) & (m.speeds_mps <= 3.0)))


def test_random_waypoint_annulus():
    cfg = RandomWaypointConfig(speed_range_mps=(1.0, 1.0), pause_s=0.0, inner_radius_m=100.0)
    rng = np.random.default_rng(1)
    m = RandomWaypointMobility(cfg, 300, R, rng)
    assert m.distances_2d_m().min() >= 100.0
    for _ in range(200):
        m.step(1.0, rng)
        assert np.hypot(*m.waypoints_m.T).min() >= 100.0
    # the disc config draws as before: inner radius 0 is the default
    a = RandomWaypointMobility(RandomWaypointConfig(), 50, R, np.random.default_rng(2))
    b = RandomWaypointMobility(RandomWaypointConfig(inner_radius_m=0.0), 50, R, np.random.default_rng(2))
    assert np.array_equal(a.positions_m, b.positions_m)
    with pytest.raises(ValueError, match="inner_radius_m"):
        RandomWaypointMobility(RandomWaypointConfig(inner_radius_m=R), 5, R, rng)


def test_highway_motion_wrap_and_identity():
    cfg = HighwayConfig(lanes=2, offset_m=20.0, lane_width_m=5.0, speed_range_kmh=(60, 130))
    m = HighwayMobility(cfg, 100, R, np.random.default_rng(0))
    speeds = m.speeds_mps.copy()
    assert np.all((speeds >= kmh_to_mps(60)) & (speeds <= kmh_to_mps(130)))
    assert set(np.unique(m.positions_m[:, 1])) <= {20.0, 25.0}
    assert np.all(m.in_cell())  # start_in_cell
    x0 = m.positions_m[:, 0].copy()
    m.step(0.1, None)
    assert np.allclose(m.positions_m[:, 0], x0 + m.direction * speeds * 0.1)
    for _ in range(3000):  # 300 s: every vehicle wraps around the 2 km road at least once
        m.step(0.1, None)
        assert np.all(np.abs(m.positions_m[:, 0]) <= m.road_length_m / 2)
    assert np.array_equal(m.speeds_mps, speeds)  # slot i is still vehicle i
    # Unwrapped displacement is v t; wrapped position agrees modulo the road length.
    expected = x0 + m.direction * speeds * 300.1
    diff = (m.positions_m[:, 0] - expected) / m.road_length_m
    assert np.allclose(diff, np.round(diff), atol=1e-9)


def test_highway_time_left_closed_form():
    cfg = HighwayConfig(lanes=1, offset_m=30.0, speed_range_kmh=(72.0, 72.0))  # 20 m/s towards +x
    m = HighwayMobility(cfg, 1, R, np.random.default_rng(1))
    m.load_state_dict(m.state_dict() | {"x_m": np.array([-100.0])})
    # half chord sqrt(500^2 - 30^2) = 499.099189; time left (499.099189 + 100) / 20 = 29.954959 s
    assert m.time_left_s()[0] == pytest.approx(29.954959, abs=1e-6)
    m.step(29.95, None)
    assert m.in_cell()[0]
    m.step(0.01, None)
    assert not m.in_cell()[0] and m.time_left_s()[0] == 0.0
    # Re-enters after driving the rest of the 2000 m road: (2000 - 2 * 499.099189) / 20 = 50.0902 s
    m.step(50.0, None)
    assert not m.in_cell()[0]
    m.step(0.1, None)
    assert m.in_cell()[0]


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: HighwayConfig(lanes=0), "lanes"),
        (lambda: HighwayConfig(speed_range_kmh=(130, 60)), "speed_range_kmh"),
        (lambda: HighwayConfig(lane_width_m=0.0), "lane_width_m"),
        (lambda: RandomWaypointConfig(pause_s=-1.0), "pause_s"),
        (lambda: RandomWaypointConfig(speed_range_mps=(0.0, 1.0)), "speed_range_mps"),
        (lambda: StaticConfig(inner_radius_m=-1.0), "inner_radius_m"),
        (lambda: make_mobility(HighwayConfig(offset_m=600.0), 3, R, np.random.default_rng(0)), "offset_m"),
        (lambda: make_mobility(HighwayConfig(road_length_m=900.0), 3, R, np.random.default_rng(0)), "road_length_m"),
        (lambda: make_mobility(StaticConfig(inner_radius_m=600.0), 3, R, np.random.default_rng(0)), "inner_radius_m"),
        (lambda: make_mobility("car", 3, R, np.random.default_rng(0)), "mobility"),
    ],
)
def test_config_errors(make, field):
    with pytest.raises(ValueError, match=field):
        make()
