import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.units import db_to_lin, dbm_to_w, kmh_to_mps, lin_to_db, mps_to_kmh, w_to_dbm


@pytest.mark.parametrize(
    "dbm, watts",
    [
        (30.0, 1.0),
        (0.0, 1e-3),
        (23.0, 0.19952623149688797),
        (46.0, 39.810717055349734),
        (-174.0, 3.981071705534969e-21),
    ],
)
def test_dbm_to_w_golden(dbm, watts):
    assert dbm_to_w(dbm) == pytest.approx(watts, rel=1e-12)
    assert w_to_dbm(watts) == pytest.approx(dbm, abs=1e-9)


def test_db_lin_golden():
    assert db_to_lin(3.0) == pytest.approx(1.9952623149688795)
    assert db_to_lin(-10.0) == pytest.approx(0.1)
    assert lin_to_db(100.0) == pytest.approx(20.0)
    assert lin_to_db(0.0) == -np.inf


def test_vectorised_shapes():
    x = np.zeros((3, 4))
    assert dbm_to_w(x).shape == (3, 4)
    assert db_to_lin(x).shape == (3, 4)


@given(st.floats(min_value=-200, max_value=200))
def test_round_trips(value):
    assert lin_to_db(db_to_lin(value)) == pytest.approx(value, abs=1e-9)
    assert w_to_dbm(dbm_to_w(value)) == pytest.approx(value, abs=1e-9)
    assert mps_to_kmh(kmh_to_mps(value)) == pytest.approx(value, abs=1e-9)


def test_kmh():
    assert kmh_to_mps(36.0) == pytest.approx(10.0)
