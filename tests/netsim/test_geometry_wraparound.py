"""The 19-site wrap-around downlink geometry of netsim against an independent Monte Carlo.

Setting: TR 36.814 Table A.2.1.1-2 "Case 1"-like macro layout with omni sites (sectors and
antenna patterns are not modelled in netsim, so the published sectorised calibration curves do
not apply): ISD 500 m, PL = 128.1 + 37.6 log10(d / km), log-normal shadowing 8 dB with 0.5
inter-site correlation, 46 dBm over 10 MHz, UE noise figure 9 dB, minimum distance 35 m,
serving cell = the strongest (shadowing included), every site transmitting (full buffer).

netsim path: LayoutConfig -> uniform_in_hexagons_m -> site_distances_m -> pair_pathloss_db ->
SiteShadowing -> large_scale_gain_lin -> downlink_geometry_lin.

Independent path, written here from first principles without netsim: sites are the lattice
points within 2 ISD of the origin; the wrap-around super-lattice is found by brute-force search
(two lattice vectors whose translates of the 19 sites cover every lattice point of a large box
exactly once); users are uniform on the torus (uniform in the fundamental parallelogram,
rejected closer than 35 m to a site); every distance is the minimum over 5 x 5 = 25 copies; the
correlated shadowing comes from a Cholesky factor of the 19 x 19 correlation matrix.
"""
import itertools

import numpy as np
import pytest

from netsim.interference import downlink_geometry_lin
from netsim.layout import LayoutConfig, site_distances_m, uniform_in_hexagons_m
from netsim.sitegain import SiteShadowing, large_scale_gain_lin, pair_pathloss_db

ISD = 500.0
SIGMA_DB = 8.0
RHO = 0.5
P_W = 10 ** ((46 - 30) / 10)
NOISE_W = 10 ** ((-174 + 9 + 70 - 30) / 10)  # -174 dBm/Hz + 9 dB NF over 10 MHz
MIN_D = 35.0
N_PER_SITE = 1200  # 22,800 users each side


def independent_geometry_db(rng: np.random.Generator, num_users: int) -> np.ndarray:
    a1 = np.array([ISD, 0.0])
    a2 = np.array([ISD / 2, ISD * np.sqrt(3) / 2])
    lattice = np.array([i * a1 + j * a2 for i in range(-12, 13) for j in range(-12, 13)])
    sites = lattice[np.linalg.norm(lattice, axis=1) <= 2 * ISD + 1e-6]
    assert len(sites) == 19
    # Super-lattice: candidate translations of length sqrt(19) ISD; keep a pair at 60 degrees
    # whose translates of the cluster cover the lattice points near the origin exactly once.
    cands = [v for v in lattice if abs(np.linalg.norm(v) - np.sqrt(19) * ISD) < 1e-6]
    box = lattice[np.linalg.norm(lattice, axis=1) <= 6 * ISD + 1e-6]
    basis = None
    for t1, t2 in itertools.combinations(cands, 2):
        if abs(np.dot(t1, t2) - 0.5 * 19 * ISD**2) > 1e-3:
            continue
        tiles = np.array([s + i * t1 + j * t2 for s in sites for i in range(-3, 4) for j in range(-3, 4)])
        hits = (np.linalg.norm(box[:, None] - tiles[None], axis=2) < 1e-6).sum(axis=1)
        if np.all(hits == 1):
            basis = (t1, t2)
            break
    assert basis is not None
    t1, t2 = basis
    copies = np.array([i * t1 + j * t2 for i in range(-2, 3) for j in range(-2, 3)])
    users = []
    while sum(len(u) for u in users) < num_users:
        u = rng.uniform(size=(4096, 2))
        p = u[:, :1] * t1 + u[:, 1:] * t2
        d = np.linalg.norm(p[:, None, None] - sites[None, :, None] - copies[None, None], axis=3).min(axis=2)
        users.append(d[d.min(axis=1) >= MIN_D])
    d = np.concatenate(users)[:num_users]
    pl = 128.1 + 37.6 * np.log10(d / 1000.0)
    corr = np.full((19, 19), RHO) + (1 - RHO) * np.eye(19)
    shadow = SIGMA_DB * rng.standard_normal((num_users, 19)) @ np.linalg.cholesky(corr).T
    rx = P_W * 10 ** (-(pl + shadow) / 10)
    own = rx.max(axis=1)
    return 10 * np.log10(own / (NOISE_W + rx.sum(axis=1) - own))


def netsim_geometry_db(rng: np.random.Generator) -> np.ndarray:
    layout = LayoutConfig(kind="hex", num_sites=19, isd_m=ISD, wrap_around=True)
    sites = layout.site_positions_m()
    pos, _ = uniform_in_hexagons_m(sites, ISD, N_PER_SITE, rng, min_distance_m=MIN_D)
    d = site_distances_m(pos, sites, layout.wrap_shifts_m())
    pl = pair_pathloss_db("macro-128.1", d, 2e9, None, 1.5)
    sh = SiteShadowing(SIGMA_DB, RHO, 50.0, len(pos), 19, rng)
    g = large_scale_gain_lin(pl, sh.shadowing_db)
    return 10 * np.log10(downlink_geometry_lin(g, P_W, NOISE_W))


@pytest.fixture(scope="module")
def geometries():
    ours = netsim_geometry_db(np.random.default_rng(1))
    theirs = independent_geometry_db(np.random.default_rng(2), len(ours))
    return ours, theirs


def test_geometry_cdf_matches_the_independent_monte_carlo(geometries):
    ours, theirs = geometries
    grid = np.linspace(-10, 30, 401)
    cdf_ours = np.searchsorted(np.sort(ours), grid) / len(ours)
    cdf_theirs = np.searchsorted(np.sort(theirs), grid) / len(theirs)
    # Two-sample KS critical value at alpha = 0.001 for n = m = 22,800: 1.95 sqrt(2 / n) = 0.018.
    assert np.abs(cdf_ours - cdf_theirs).max() < 0.018


@pytest.mark.parametrize("q", [5, 50, 95])
def test_geometry_quantiles_agree_within_a_quarter_db(geometries, q):
    ours, theirs = geometries
    assert np.percentile(ours, q) == pytest.approx(np.percentile(theirs, q), abs=0.25)


def test_without_wrap_around_the_edge_cells_look_better_than_with_it():
    # Falsifiability: the check above can tell a missing wrap-around (edge users see fewer
    # interferers, the median rises by well over the tolerance).
    rng = np.random.default_rng(3)
    layout = LayoutConfig(kind="hex", num_sites=19, isd_m=ISD, wrap_around=False)
    sites = layout.site_positions_m()
    pos, _ = uniform_in_hexagons_m(sites, ISD, 600, rng, min_distance_m=MIN_D)
    g = large_scale_gain_lin(pair_pathloss_db("macro-128.1", site_distances_m(pos, sites), 2e9, None, 1.5),
                             SiteShadowing(SIGMA_DB, RHO, 50.0, len(pos), 19, rng).shadowing_db)
    unwrapped = 10 * np.log10(downlink_geometry_lin(g, P_W, NOISE_W))
    theirs = independent_geometry_db(np.random.default_rng(4), len(unwrapped))
    assert np.median(unwrapped) > np.median(theirs) + 1.0
