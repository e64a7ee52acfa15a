import numpy as np
import pytest

from netsim import pathloss
from netsim.sitegain import SiteShadowing, large_scale_gain_lin, pair_pathloss_db, strongest_site

N = 40_000


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0])
def test_pair_shadowing_has_the_model_std_and_inter_site_correlation(rho):
    sh = SiteShadowing(8.0, rho, 50.0, N, 3, np.random.default_rng(0))
    for state in ("initial", "after a step"):
        s = sh.shadowing_db
        assert s.std(axis=0) == pytest.approx([8.0] * 3, abs=0.15)
        c = np.corrcoef(s.T)
        assert c[0, 1] == pytest.approx(rho, abs=0.03) and c[1, 2] == pytest.approx(rho, abs=0.03)
        sh.update(np.full(N, 20.0), np.random.default_rng(1))


def test_shadowing_decorrelates_along_the_path_as_gudmundson():
    sh = SiteShadowing(6.0, 0.5, 50.0, N, 2, np.random.default_rng(2))
    before = sh.shadowing_db.copy()
    sh.update(np.full(N, 25.0), np.random.default_rng(3))
    assert np.corrcoef(before[:, 0], sh.shadowing_db[:, 0])[0, 1] == pytest.approx(np.exp(-0.5), abs=0.03)
    still = SiteShadowing(6.0, 0.5, 50.0, 4, 2, np.random.default_rng(4))
    s0 = still.shadowing_db.copy()
    still.update(np.zeros(4), np.random.default_rng(5))
    assert np.allclose(still.shadowing_db, s0)


def test_state_round_trip():
    a = SiteShadowing(6.0, 0.5, 50.0, 5, 3, np.random.default_rng(6))
    b = SiteShadowing(6.0, 0.5, 50.0, 5, 3, np.random.default_rng(7))
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.shadowing_db, b.shadowing_db)


def test_pair_pathloss_is_the_world_model_elementwise():
    d = np.array([[50.0, 400.0], [1000.0, 12.0]])
    got = pair_pathloss_db("3gpp-uma-nlos", d, 3.5e9, None, 1.5)
    for i in range(2):
        for j in range(2):
            assert got[i, j] == pathloss.pathloss_db("3gpp-uma-nlos", d[i, j], 3.5e9, None, 1.5)
    with pytest.raises(ValueError, match="pathloss_model"):
        pair_pathloss_db("3gpp-uma", d, 3.5e9, None, 1.5)


def test_gain_and_strongest_site():
    g = large_scale_gain_lin(np.array([[100.0, 90.0]]), np.array([[0.0, 3.0]]))
    assert g[0] == pytest.approx([1e-10, 10 ** -9.3])
    assert strongest_site(g).tolist() == [1]
