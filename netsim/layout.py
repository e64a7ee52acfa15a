"""Where the base stations stand: hexagonal grids of 1, 7 or 19 sites and lines of roadside units.

Hexagonal grid. Sites sit on a triangular lattice of spacing ``isd_m`` (inter-site distance),
numbered centre first, then ring 1, then ring 2 (7 sites = one ring, 19 = two rings), each ring
counter-clockwise from the +x axis. A site at axial coordinates ``(q, r)`` is at
``isd * (q + r / 2, r sqrt(3) / 2)``. Each site serves a hexagonal cell of circumradius
``isd / sqrt(3)`` (the 3GPP / ITU-R M.2412 omni-site layout; sectors are not modelled).

Wrap-around (3GPP TR 36.814 A.2.1.1, ITU-R M.2412 §8.2). A cluster of ``1 + 3 n (n + 1)``
sites (n rings) tiles the plane with copies shifted by the six rotations of the axial vector
``(n + 1, n)`` (length ``sqrt(num_sites) isd``); every device sees each site at its nearest
copy, so every cell is surrounded by a full tier of interferers and no cell is at an edge.

Line of roadside units. ``num_sites`` sites every ``spacing_m`` along the x axis, centred on the
origin, at a distance ``offset_m`` from the road's axis; with wrap-around the line repeats with
period ``num_sites * spacing_m`` (a ring road, matching the wrapped road of
:class:`netsim.mobility.HighwayMobility` of that length).

All functions are pure and vectorised; positions are ``[.., 2]`` arrays in metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HEX_SITE_COUNTS = (1, 7, 19)
KINDS = ("hex", "line")
_SQRT3 = float(np.sqrt(3.0))
# Axial neighbour directions, counter-clockwise from +x: rotating (q, r) by 60 deg is (-r, q + r).
_AXIAL_DIRECTIONS = ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))


@dataclass(frozen=True)
class LayoutConfig:
    """The sites of a multi-cell world.

    Attributes:
        kind: ``"hex"`` (hexagonal grid) or ``"line"`` (roadside units along the x axis).
        num_sites: Number of sites: 1, 7 or 19 for ``hex``; >= 1 for ``line``.
        isd_m: Inter-site distance (hex) or spacing between roadside units (line), m.
        wrap_around: Devices see every site at its nearest wrapped copy (module docstring).
        line_offset_m: Distance of the roadside units from the road axis (line only), m.
    """

    kind: str = field(default="hex", metadata={"help": "site layout: hex (1/7/19 sites) or line (roadside units)", "unit": ""})
    num_sites: int = field(default=1, metadata={"help": "number of sites (hex: 1, 7 or 19)", "unit": ""})
    isd_m: float = field(default=500.0, metadata={"help": "inter-site distance (line: unit spacing)", "unit": "m"})
    wrap_around: bool = field(default=False, metadata={"help": "devices see each site at its nearest wrapped copy", "unit": ""})
    line_offset_m: float = field(default=0.0, metadata={"help": "roadside units' distance from the road axis", "unit": "m"})

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not (isinstance(self.num_sites, (int, np.integer)) and 1 <= self.num_sites <= 1000):
            raise ValueError(f"num_sites must be an int in [1, 1000], got {self.num_sites!r}")
        if self.kind == "hex" and self.num_sites not in HEX_SITE_COUNTS:
            raise ValueError(f"num_sites must be one of {HEX_SITE_COUNTS} for a hex layout, got {self.num_sites!r}")
        if not (np.isfinite(self.isd_m) and 0 < self.isd_m <= 1e5):
            raise ValueError(f"isd_m must be in (0, 1e5] m, got {self.isd_m!r}")
        if not (np.isfinite(self.line_offset_m) and 0 <= self.line_offset_m <= 1e4):
            raise ValueError(f"line_offset_m must be in [0, 1e4] m, got {self.line_offset_m!r}")

    def site_positions_m(self) -> np.ndarray:
        """``[S, 2]`` site positions in m."""
        if self.kind == "hex":
            return hex_site_positions_m(self.num_sites, self.isd_m)
        return line_site_positions_m(self.num_sites, self.isd_m, self.line_offset_m)

    def wrap_shifts_m(self) -> np.ndarray:
        """``[K, 2]`` translations of the cluster copies, the zero shift first (K = 1 without wrap)."""
        if not self.wrap_around:
            return np.zeros((1, 2))
        if self.kind == "hex":
            return hex_wrap_shifts_m(self.num_sites, self.isd_m)
        period_m = self.num_sites * self.isd_m
        return np.array([[0.0, 0.0], [period_m, 0.0], [-period_m, 0.0]])


def _axial_ring(radius: int) -> list[tuple[int, int]]:
    """Axial coordinates of ring ``radius``, counter-clockwise from ``(radius, 0)``."""
    if radius == 0:
        return [(0, 0)]
    out = []
    q, r = radius, 0
    # Walk the six sides; side k heads in direction k + 2 (the side starting at corner k).
    for k in range(6):
        dq, dr = _AXIAL_DIRECTIONS[(k + 2) % 6]
        for _ in range(radius):
            out.append((q, r))
            q, r = q + dq, r + dr
    return out


def _axial_to_xy_m(qr: np.ndarray, isd_m: float) -> np.ndarray:
    q, r = qr[..., 0], qr[..., 1]
    return isd_m * np.stack([q + 0.5 * r, 0.5 * _SQRT3 * r], axis=-1)


def hex_site_positions_m(num_sites: int, isd_m: float) -> np.ndarray:
    """Sites of a hexagonal grid of 1, 7 or 19 sites, centre first, then ring by ring.

    Args:
        num_sites: 1, 7 or 19.
        isd_m: Inter-site distance in m.

    Returns:
        ``[S, 2]`` positions in m.
    """
    if num_sites not in HEX_SITE_COUNTS:
        raise ValueError(f"num_sites must be one of {HEX_SITE_COUNTS}, got {num_sites!r}")
    rings = HEX_SITE_COUNTS.index(num_sites)
    axial = [qr for ring in range(rings + 1) for qr in _axial_ring(ring)]
    return _axial_to_xy_m(np.array(axial, dtype=float), isd_m)


def hex_wrap_shifts_m(num_sites: int, isd_m: float) -> np.ndarray:
    """Translations of the wrap-around copies of an n-ring hexagonal cluster (n = 0, 1, 2).

    The cluster of ``1 + 3 n (n + 1)`` sites tiles the plane with the six 60-degree rotations
    of the axial vector ``(n + 1, n)`` (TR 36.814 A.2.1.1: 19 sites, copies at ``sqrt(19) isd``).

    Returns:
        ``[7, 2]`` shifts in m: zero first, then the six copies counter-clockwise.
    """
    rings = HEX_SITE_COUNTS.index(num_sites)
    q, r = rings + 1, rings
    shifts = [(0, 0)]
    for _ in range(6):
        shifts.append((q, r))
        q, r = -r, q + r
    return _axial_to_xy_m(np.array(shifts, dtype=float), isd_m)


def line_site_positions_m(num_sites: int, spacing_m: float, offset_m: float = 0.0) -> np.ndarray:
    """Roadside units every ``spacing_m`` along the x axis, centred on the origin, at ``y = -offset_m``.

    Returns:
        ``[S, 2]`` positions in m.
    """
    x = (np.arange(num_sites) - 0.5 * (num_sites - 1)) * spacing_m
    return np.stack([x, np.full(num_sites, -float(offset_m))], axis=1)


def site_distances_m(positions_m: np.ndarray, sites_m: np.ndarray, shifts_m: np.ndarray | None = None) -> np.ndarray:
    """Horizontal distance from every device to every site, at each site's nearest wrapped copy.

    Args:
        positions_m: ``[N, 2]`` device positions in m.
        sites_m: ``[S, 2]`` site positions in m.
        shifts_m: ``[K, 2]`` copy translations (:meth:`LayoutConfig.wrap_shifts_m`); None or a
            single zero row: no wrap-around.

    Returns:
        ``[N, S]`` distances in m.
    """
    num_sites = len(sites_m)
    if shifts_m is None or len(shifts_m) == 1:
        # [N, S]
        dx = positions_m[:, 0, None] - sites_m[None, :, 0]
        dy = positions_m[:, 1, None] - sites_m[None, :, 1]
        return np.sqrt(dx * dx + dy * dy)
    # [S * K, 2]: every copy of every site (site-major), then [N, S * K] squared distances
    images = (sites_m[:, None, :] + shifts_m[None, :, :]).reshape(-1, 2)
    dx = positions_m[:, 0, None] - images[None, :, 0]
    dy = positions_m[:, 1, None] - images[None, :, 1]
    d2 = dx * dx
    d2 += dy * dy
    return np.sqrt(d2.reshape(len(positions_m), num_sites, -1).min(axis=2))


def wrap_position_m(positions_m: np.ndarray, sites_m: np.ndarray, shifts_m: np.ndarray) -> np.ndarray:
    """Map positions into the cluster: each one moves by the copy shift that brings it closest to a site.

    Args:
        positions_m: ``[N, 2]`` positions in m (anywhere in the plane, within one copy).
        sites_m: ``[S, 2]`` site positions in m.
        shifts_m: ``[K, 2]`` copy translations in m.

    Returns:
        ``[N, 2]`` positions inside the central cluster's cells.
    """
    # [N, K]: distance to the nearest site after moving by -T
    moved = positions_m[:, None, :] - shifts_m[None, :, :]
    d = np.sqrt(((moved[:, :, None, :] - sites_m[None, None, :, :]) ** 2).sum(-1)).min(-1)
    best = d.argmin(axis=1)
    return moved[np.arange(len(positions_m)), best]


def uniform_in_hexagons_m(
    sites_m: np.ndarray, isd_m: float, per_site: int, rng: np.random.Generator, min_distance_m: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Drop ``per_site`` devices uniformly in each site's hexagonal cell (rejection sampling).

    The cell of a site is a regular hexagon of inradius ``isd / 2`` whose edges face the six
    neighbours (vertices at 30 + 60 k degrees: the Voronoi cell of the triangular lattice). Points nearer than ``min_distance_m``
    to the site are redrawn.

    Args:
        sites_m: ``[S, 2]`` site positions in m.
        isd_m: Inter-site distance in m.
        per_site: Devices per site.
        rng: Random generator.
        min_distance_m: Minimum distance to the site, m.

    Returns:
        ``(positions_m [S * per_site, 2], home_site [S * per_site])``, site-major order.
    """
    num_sites = len(sites_m)
    total = num_sites * per_site
    apothem = 0.5 * isd_m
    radius = isd_m / _SQRT3
    out = np.empty((total, 2))
    filled = 0
    while filled < total:
        need = total - filled
        # Area ratio hexagon / bounding box is 0.75: draw a margin.
        x = rng.uniform(-apothem, apothem, size=2 * need + 16)
        y = rng.uniform(-radius, radius, size=2 * need + 16)
        # Edges face the six neighbours (0, 60, ... degrees): |x| <= apothem and the slanted ones.
        ok = (0.5 * np.abs(x) + 0.5 * _SQRT3 * np.abs(y) <= apothem) & (np.hypot(x, y) >= min_distance_m)
        pts = np.stack([x[ok], y[ok]], axis=1)[:need]
        out[filled : filled + len(pts)] = pts
        filled += len(pts)
    home = np.repeat(np.arange(num_sites), per_site)
    return out + sites_m[home], home
