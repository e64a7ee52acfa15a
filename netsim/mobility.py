"""Device mobility in a single cell centred on the base station at the origin.

Three models, vectorised over devices (``positions_m [N, 2]``, ``speeds_mps [N]``):

* static: uniform in a disc or annulus (area-uniform radius ``sqrt(U(r0^2, r1^2))``);
* random waypoint: legs at a uniform speed towards a waypoint uniform in the disc, then a pause
  (Johnson & Maltz, 1996);
* highway: lanes parallel to the x axis at ``y = offset + k * lane_width``, half of them in
  each direction, constant per-vehicle speeds (e.g. 60-130 km/h). The road is longer than the
  cell and its ends are joined, so a vehicle that drives out of the cell re-enters later on the
  other side: device slot ``i`` is always vehicle ``i``. The time it has left in the cell is
  closed form: ``(sqrt(R^2 - y^2) - s x) / v`` with ``s = +-1`` its direction.

Each model has ``positions_m [N, 2]``, ``speeds_mps [N]``, ``step(dt_s, rng) -> moved_m [N]``,
``distances_2d_m() -> [N]``, ``in_cell() -> bool [N]``,
``time_left_s() -> [N]`` and ``state_dict()/load_state_dict()``. A step of ``dt`` is exact for
static and highway; random waypoint makes at most one leg/pause transition per step (time
left over in the step after reaching a waypoint is spent pausing), which is exact when the
step is short against legs and pauses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.units import kmh_to_mps


@dataclass(frozen=True)
class StaticConfig:
    """Devices fixed at uniform positions in an annulus ``inner_radius_m <= r <= cell radius``."""

    inner_radius_m: float = field(
        default=10.0, metadata={"help": "devices are placed at least this far from the base station", "unit": "m"}
    )

    def __post_init__(self) -> None:
        if not self.inner_radius_m >= 0:
            raise ValueError(f"inner_radius_m must be >= 0, got {self.inner_radius_m!r}")
        if not self.inner_radius_m <= 1e5:
            raise ValueError(f"inner_radius_m must be <= 1e5 m, got {self.inner_radius_m!r}")


@dataclass(frozen=True)
class RandomWaypointConfig:
    """Random waypoint in the cell disc (or an annulus: start points and waypoints).

    Attributes:
        speed_range_mps: Leg speed drawn uniformly in this range (m/s).
        pause_s: Pause at each waypoint (s).
        inner_radius_m: Start points and waypoints are area-uniform with ``inner_radius_m <=
            r <= cell radius`` (a straight leg between two of them may pass closer).
    """

    speed_range_mps: tuple[float, float] = field(
        default=(0.5, 1.5), metadata={"help": "leg speed range, drawn uniformly per leg", "unit": "m/s"}
    )
    pause_s: float = field(
        default=2.0, metadata={"help": "pause at each waypoint", "unit": "s"}
    )
    inner_radius_m: float = field(
        default=0.0, metadata={"help": "start points and waypoints are at least this far from the base station", "unit": "m"}
    )

    def __post_init__(self) -> None:
        if not self.inner_radius_m >= 0:
            raise ValueError(f"inner_radius_m must be >= 0, got {self.inner_radius_m!r}")
        if not self.inner_radius_m <= 1e5:
            raise ValueError(f"inner_radius_m must be <= 1e5 m, got {self.inner_radius_m!r}")
        lo, hi = self.speed_range_mps
        if not 0 < lo <= hi:
            raise ValueError(f"speed_range_mps must satisfy 0 < low <= high, got {self.speed_range_mps!r}")
        if not self.pause_s >= 0:
            raise ValueError(f"pause_s must be >= 0, got {self.pause_s!r}")
        if not (hi <= 1000 and self.pause_s <= 1e6):
            raise ValueError(f"speed_range_mps must be <= 1000 m/s and pause_s <= 1e6 s, "
                             f"got {self.speed_range_mps!r}, {self.pause_s!r}")


@dataclass(frozen=True)
class HighwayConfig:
    """A straight road passing the base station.

    Attributes:
        lanes: Number of lanes; the first ``ceil(lanes/2)`` drive towards +x, the rest -x.
        lane_width_m: Lane spacing (m).
        offset_m: Distance from the BS to the nearest lane centre (m).
        speed_range_kmh: Vehicle speed drawn uniformly in this range (km/h), then constant.
        road_length_m: Length of the (wrapped) road; None = 4 x cell radius. Must exceed the
            cell diameter so that a vehicle leaving the cell does not re-enter at once.
        start_in_cell: Place every vehicle inside the cell at the start (else uniform on road).
    """

    lanes: int = field(
        default=4, metadata={"help": "number of lanes; the first half (rounded up) drive towards +x", "unit": ""}
    )
    lane_width_m: float = field(
        default=3.5, metadata={"help": "lane spacing", "unit": "m"}
    )
    offset_m: float = field(
        default=30.0, metadata={"help": "distance from the base station to the nearest lane centre", "unit": "m"}
    )
    speed_range_kmh: tuple[float, float] = field(
        default=(60.0, 130.0), metadata={"help": "vehicle speed range, drawn uniformly per vehicle, then constant", "unit": "km/h"}
    )
    road_length_m: float | None = field(
        default=None, metadata={"help": "length of the wrapped road; None: 4 x cell radius (must exceed the diameter)", "unit": "m"}
    )
    start_in_cell: bool = field(
        default=True, metadata={"help": "place every vehicle inside the cell at the start (else uniform on the road)", "unit": ""}
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.lanes, int) and self.lanes >= 1):
            raise ValueError(f"lanes must be an int >= 1, got {self.lanes!r}")
        if not self.lane_width_m > 0:
            raise ValueError(f"lane_width_m must be > 0, got {self.lane_width_m!r}")
        if not self.offset_m >= 0:
            raise ValueError(f"offset_m must be >= 0, got {self.offset_m!r}")
        lo, hi = self.speed_range_kmh
        if not 0 < lo <= hi:
            raise ValueError(f"speed_range_kmh must satisfy 0 < low <= high, got {self.speed_range_kmh!r}")
        if self.road_length_m is not None and not self.road_length_m > 0:
            raise ValueError(f"road_length_m must be > 0, got {self.road_length_m!r}")
        # Physical plausibility: a road, not a continent.
        if not (self.lanes <= 100 and self.lane_width_m <= 100 and self.offset_m <= 1e5 and hi <= 1000
                and (self.road_length_m is None or self.road_length_m <= 1e7)):
            raise ValueError(f"highway out of range: lanes <= 100, lane_width_m <= 100, offset_m <= 1e5, "
                             f"speed_range_kmh <= 1000, road_length_m <= 1e7; got {self.lanes!r}, "
                             f"{self.lane_width_m!r}, {self.offset_m!r}, {self.speed_range_kmh!r}, {self.road_length_m!r}")


MobilityConfig = StaticConfig | RandomWaypointConfig | HighwayConfig


def uniform_in_annulus(
    rng: np.random.Generator, num_devices: int, inner_radius_m: float, outer_radius_m: float
) -> np.ndarray:
    """Points uniform in area in an annulus centred at the origin.

    Args:
        rng: Random generator.
        num_devices: Number of points N.
        inner_radius_m: Inner radius (0 for a disc), m.
        outer_radius_m: Outer radius, m.

    Returns:
        Positions in m, shape ``[N, 2]``.
    """
    r = np.sqrt(rng.uniform(inner_radius_m**2, outer_radius_m**2, size=num_devices))
    theta = rng.uniform(0.0, 2.0 * np.pi, size=num_devices)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


class _InsideDisc:
    """Devices that stay in the cell disc for good: distances, in-cell mask, infinite dwell."""

    positions_m: np.ndarray
    _in_cell: np.ndarray

    def distances_2d_m(self) -> np.ndarray:
        """Horizontal distance to the base station in m, ``[N]``."""
        return np.hypot(self.positions_m[:, 0], self.positions_m[:, 1])

    def in_cell(self) -> np.ndarray:
        """bool ``[N]``: always inside the cell disc."""
        return self._in_cell

    def time_left_s(self) -> np.ndarray:
        """Time left in the cell (s), ``[N]``: infinite."""
        return np.full(self.positions_m.shape[0], np.inf)


class StaticMobility(_InsideDisc):
    """Devices that never move."""

    def __init__(self, config: StaticConfig, num_devices: int, cell_radius_m: float, rng: np.random.Generator):
        if config.inner_radius_m >= cell_radius_m:
            raise ValueError(f"inner_radius_m must be < cell radius {cell_radius_m}, got {config.inner_radius_m!r}")
        self.cell_radius_m = cell_radius_m
        self.positions_m = uniform_in_annulus(rng, num_devices, config.inner_radius_m, cell_radius_m)
        self.speeds_mps = np.zeros(num_devices)
        self._moved_m = np.zeros(num_devices)
        self._in_cell = np.ones(num_devices, dtype=bool)

    def step(self, dt_s: float, rng: np.random.Generator) -> np.ndarray:
        """Advance by ``dt_s`` seconds; returns distance moved, zeros ``[N]``."""
        return self._moved_m

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"positions_m": self.positions_m.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.positions_m = np.array(state["positions_m"], dtype=float)


class RandomWaypointMobility(_InsideDisc):
    """Random waypoint inside the cell disc (devices never leave the cell)."""

    def __init__(
        self, config: RandomWaypointConfig, num_devices: int, cell_radius_m: float, rng: np.random.Generator
    ):
        if config.inner_radius_m >= cell_radius_m:
            raise ValueError(f"inner_radius_m must be < cell radius {cell_radius_m}, got {config.inner_radius_m!r}")
        self.config = config
        self.cell_radius_m = cell_radius_m
        self.positions_m = uniform_in_annulus(rng, num_devices, config.inner_radius_m, cell_radius_m)
        self.waypoints_m = uniform_in_annulus(rng, num_devices, config.inner_radius_m, cell_radius_m)
        self.leg_speed_mps = rng.uniform(*config.speed_range_mps, size=num_devices)
        self.pause_left_s = np.zeros(num_devices)
        self.speeds_mps = self.leg_speed_mps.copy()
        self._in_cell = np.ones(num_devices, dtype=bool)

    def step(self, dt_s: float, rng: np.random.Generator) -> np.ndarray:
        """Advance every device by ``dt_s`` seconds.

        Args:
            dt_s: Time step in s.
            rng: Random generator for new waypoints and speeds.

        Returns:
            Distance moved in m, shape ``[N]``.
        """
        pausing = self.pause_left_s > 0.0
        self.pause_left_s[pausing] -= dt_s
        moving = ~pausing
        # [N, 2]
        delta = self.waypoints_m - self.positions_m
        dist = np.hypot(delta[:, 0], delta[:, 1])
        travel = np.where(moving, np.minimum(self.leg_speed_mps * dt_s, dist), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(dist > 0, travel / dist, 0.0)
        self.positions_m += delta * frac[:, None]
        arrived = np.flatnonzero(moving & (travel >= dist))
        if arrived.size:
            self.positions_m[arrived] = self.waypoints_m[arrived]
            self.pause_left_s[arrived] = self.config.pause_s
            self.waypoints_m[arrived] = uniform_in_annulus(rng, arrived.size, self.config.inner_radius_m,
                                                           self.cell_radius_m)
            self.leg_speed_mps[arrived] = rng.uniform(*self.config.speed_range_mps, size=arrived.size)
        self.speeds_mps = np.where(self.pause_left_s > 0.0, 0.0, self.leg_speed_mps)
        return travel

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "positions_m": self.positions_m.copy(),
            "waypoints_m": self.waypoints_m.copy(),
            "leg_speed_mps": self.leg_speed_mps.copy(),
            "pause_left_s": self.pause_left_s.copy(),
            "speeds_mps": self.speeds_mps.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for key in ("positions_m", "waypoints_m", "leg_speed_mps", "pause_left_s", "speeds_mps"):
            setattr(self, key, np.array(state[key], dtype=float))


class HighwayMobility:
    """Vehicles on a wrapped straight road passing the base station.

    Vehicles keep their lane, direction and speed; only ``x`` changes. The lane's squared
    offset and half chord are fixed, so distance and cell membership are one or two array
    operations per step.
    """

    def __init__(self, config: HighwayConfig, num_devices: int, cell_radius_m: float, rng: np.random.Generator):
        far_lane_m = config.offset_m + (config.lanes - 1) * config.lane_width_m
        if far_lane_m >= cell_radius_m:
            raise ValueError(
                f"offset_m + (lanes - 1) * lane_width_m = {far_lane_m!r} must be < cell radius {cell_radius_m!r}"
            )
        road = 4.0 * cell_radius_m if config.road_length_m is None else config.road_length_m
        if road <= 2.0 * cell_radius_m:
            raise ValueError(f"road_length_m must exceed the cell diameter {2 * cell_radius_m!r}, got {road!r}")
        self.config = config
        self.cell_radius_m = cell_radius_m
        self.road_length_m = float(road)
        lane = rng.integers(0, config.lanes, size=num_devices)
        # +1 towards +x for the first ceil(lanes/2) lanes, -1 for the others.
        self.direction = np.where(lane < (config.lanes + 1) // 2, 1.0, -1.0)
        self._y = config.offset_m + lane * config.lane_width_m
        self._y_sq = self._y * self._y
        # Half chord of the cell at each lane: the vehicle is in the cell while |x| <= half_chord.
        self.half_chord_m = np.sqrt(cell_radius_m**2 - self._y_sq)
        if config.start_in_cell:
            self._x = rng.uniform(-1.0, 1.0, size=num_devices) * self.half_chord_m
        else:
            self._x = rng.uniform(-0.5, 0.5, size=num_devices) * self.road_length_m
        self.speeds_mps = kmh_to_mps(rng.uniform(*config.speed_range_kmh, size=num_devices))
        self._set_velocity()

    def _set_velocity(self) -> None:
        self._velocity_mps = self.direction * self.speeds_mps
        self._moved_dt_s = None
        self._moved_m = None

    @property
    def positions_m(self) -> np.ndarray:
        """Positions in m, ``[N, 2]`` (a new array)."""
        return np.stack([self._x, self._y], axis=1)

    def step(self, dt_s: float, rng: np.random.Generator) -> np.ndarray:
        """Advance every vehicle by ``dt_s`` seconds along its lane, wrapping at the road ends.

        Args:
            dt_s: Time step in s (shorter than the time to drive the road).
            rng: Unused (highway motion is deterministic); kept for a uniform interface.

        Returns:
            Distance moved in m, shape ``[N]`` (do not modify: it is reused between steps).
        """
        half = 0.5 * self.road_length_m
        x = self._x
        x += self._velocity_mps * dt_s
        # Wrap to [-L/2, L/2): a step moves far less than L, so one subtraction suffices.
        past_end = x >= half
        if past_end.any():
            x[past_end] -= self.road_length_m
        past_start = x < -half
        if past_start.any():
            x[past_start] += self.road_length_m
        if dt_s != self._moved_dt_s:
            self._moved_m = self.speeds_mps * dt_s
            self._moved_dt_s = dt_s
        return self._moved_m

    def distances_2d_m(self) -> np.ndarray:
        """Horizontal distance to the base station in m, ``[N]``."""
        x = self._x
        return np.sqrt(x * x + self._y_sq)

    def in_cell(self) -> np.ndarray:
        """bool ``[N]``: inside the cell, ``|x| <= half chord of the lane``."""
        return np.abs(self._x) <= self.half_chord_m

    def time_left_s(self) -> np.ndarray:
        """Time until each vehicle leaves the cell (s), ``[N]``; 0 when outside.

        Closed form ``(c - s x) / v``, with c the lane's half chord, s the direction.
        """
        along = self.direction * self._x
        left = (self.half_chord_m - along) / self.speeds_mps
        return np.where(np.abs(self._x) <= self.half_chord_m, left, 0.0)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "x_m": self._x.copy(),
            "y_m": self._y.copy(),
            "direction": self.direction.copy(),
            "speeds_mps": self.speeds_mps.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._x = np.array(state["x_m"], dtype=float)
        self._y = np.array(state["y_m"], dtype=float)
        self._y_sq = self._y * self._y
        self.half_chord_m = np.sqrt(self.cell_radius_m**2 - self._y_sq)
        self.direction = np.array(state["direction"], dtype=float)
        self.speeds_mps = np.array(state["speeds_mps"], dtype=float)
        self._set_velocity()


def make_mobility(config: MobilityConfig, num_devices: int, cell_radius_m: float, rng: np.random.Generator):
    """Build the mobility model a config names.

    Args:
        config: One of the three mobility configs.
        num_devices: N.
        cell_radius_m: Cell radius in m.
        rng: Random generator (mobility stream) for the initial state.

    Returns:
        A :class:`StaticMobility`, :class:`RandomWaypointMobility` or :class:`HighwayMobility`.
    """
    if isinstance(config, StaticConfig):
        return StaticMobility(config, num_devices, cell_radius_m, rng)
    if isinstance(config, RandomWaypointConfig):
        return RandomWaypointMobility(config, num_devices, cell_radius_m, rng)
    if isinstance(config, HighwayConfig):
        return HighwayMobility(config, num_devices, cell_radius_m, rng)
    raise ValueError(f"mobility must be a StaticConfig, RandomWaypointConfig or HighwayConfig, got {config!r}")
