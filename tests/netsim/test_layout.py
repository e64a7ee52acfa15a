import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from netsim.layout import (
    LayoutConfig, hex_site_positions_m, hex_wrap_shifts_m, line_site_positions_m, site_distances_m,
    uniform_in_hexagons_m, wrap_position_m,
)

ISD = 500.0


@pytest.mark.parametrize("num_sites,ring_distances", [
    (1, []),
    (7, [1.0] * 6),
    (19, [1.0] * 6 + sorted([2.0] * 6 + [np.sqrt(3.0)] * 6)),
])
def test_hex_sites_are_the_lattice_points_ring_by_ring(num_sites, ring_distances):
    sites = hex_site_positions_m(num_sites, ISD)
    assert sites.shape == (num_sites, 2)
    assert np.array_equal(sites[0], [0.0, 0.0])
    r = np.linalg.norm(sites[1:], axis=1) / ISD
    # ring 1 first, then ring 2 (sorted within the ring for the comparison)
    assert np.allclose(np.sort(r[:6]), ring_distances[:6])
    assert np.allclose(np.sort(r[6:]), ring_distances[6:])
    # nearest neighbours are exactly one ISD apart: a triangular lattice
    assert pdist(sites).min() == pytest.approx(ISD) if num_sites > 1 else True


@pytest.mark.parametrize("num_sites", [7, 19])
def test_wrap_copies_tile_the_plane_without_gaps_or_overlaps(num_sites):
    sites = hex_site_positions_m(num_sites, ISD)
    shifts = hex_wrap_shifts_m(num_sites, ISD)
    assert np.allclose(np.linalg.norm(shifts[1:], axis=1), np.sqrt(num_sites) * ISD)
    tiled = (sites[None] + shifts[:, None]).reshape(-1, 2)
    # no two copies of sites coincide...
    assert pdist(tiled).min() == pytest.approx(ISD)
    # ...and every lattice point within 1.5 ISD of the cluster's edge sites is covered (no gaps):
    # each site's six neighbours are all in the tiled set.
    for s in sites:
        for k in range(6):
            a = np.pi / 3 * k
            nb = s + ISD * np.array([np.cos(a), np.sin(a)])
            assert cdist(nb[None], tiled).min() < 1e-6


@pytest.mark.parametrize("num_sites", [7, 19])
def test_with_wrap_around_every_site_sees_the_same_neighbourhood(num_sites):
    layout = LayoutConfig(num_sites=num_sites, isd_m=ISD, wrap_around=True)
    sites = layout.site_positions_m()
    # distances from each site (as a device position) to all sites: identical sorted profiles
    d = np.sort(site_distances_m(sites, sites, layout.wrap_shifts_m()), axis=1)
    assert np.allclose(d, d[0])
    assert np.allclose(d[0, 1:7], ISD)


def test_distances_without_wrap_are_plain_euclidean():
    sites = hex_site_positions_m(7, ISD)
    pts = np.array([[10.0, -20.0], [900.0, 400.0]])
    assert np.allclose(site_distances_m(pts, sites), cdist(pts, sites))


def test_uniform_in_hexagons_lands_in_the_home_cell_and_fills_it_evenly():
    sites = hex_site_positions_m(7, ISD)
    rng = np.random.default_rng(0)
    pos, home = uniform_in_hexagons_m(sites, ISD, 4000, rng, min_distance_m=10.0)
    d = site_distances_m(pos, sites)
    assert np.array_equal(d.argmin(axis=1), home)
    assert d[np.arange(len(home)), home].min() >= 10.0
    # uniform in a hexagon of circumradius R: E[r^2] = 5 R^2 / 12
    r2 = (d[np.arange(len(home)), home] ** 2)
    R = ISD / np.sqrt(3.0)
    assert r2.mean() == pytest.approx(5 * R**2 / 12, rel=0.02)


def test_wrap_position_maps_a_far_point_back_into_the_cluster():
    layout = LayoutConfig(num_sites=19, isd_m=ISD, wrap_around=True)
    sites, shifts = layout.site_positions_m(), layout.wrap_shifts_m()
    p = sites[[3, 12]] + shifts[[2, 5]] + np.array([[30.0, 40.0], [-10.0, 5.0]])
    back = wrap_position_m(p, sites, shifts)
    assert np.allclose(back, sites[[3, 12]] + np.array([[30.0, 40.0], [-10.0, 5.0]]))


def test_line_of_roadside_units_and_its_ring_road():
    layout = LayoutConfig(kind="line", num_sites=6, isd_m=500.0, wrap_around=True, line_offset_m=10.0)
    sites = layout.site_positions_m()
    assert np.allclose(sites[:, 0], [-1250, -750, -250, 250, 750, 1250])
    assert np.allclose(sites[:, 1], -10.0)
    # a vehicle at x = 1490 is 260 m along the road from the unit at 1250 and 260 m from the
    # unit at -1250 across the wrap (period 3000 m)
    d = site_distances_m(np.array([[1490.0, 0.0]]), sites, layout.wrap_shifts_m())[0]
    assert d[0] == pytest.approx(np.hypot(260.0, 10.0))
    assert d[5] == pytest.approx(np.hypot(240.0, 10.0))
    assert np.allclose(line_site_positions_m(1, 500.0), [[0.0, 0.0]])


@pytest.mark.parametrize("kwargs,match", [
    ({"kind": "ring"}, "kind"),
    ({"num_sites": 5}, "num_sites"),
    ({"num_sites": 0, "kind": "line"}, "num_sites"),
    ({"isd_m": -1.0}, "isd_m"),
    ({"line_offset_m": float("nan")}, "line_offset_m"),
])
def test_bad_layout_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayoutConfig(**kwargs)
