import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim import ofdma
from netsim.interference import (
    downlink_geometry_lin, interference_w, overlap_hz, pack_bands_hz, reuse_colours, sinr_lin, subband_start_hz,
)
from netsim.layout import hex_site_positions_m, line_site_positions_m

ISD = 500.0


def test_pack_bands_fills_each_cell_from_its_lower_edge_in_device_order():
    lo, hi = pack_bands_hz(np.array([1, 0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0, 0.0]), np.array([0.0, 10.0]))
    assert lo.tolist() == [10.0, 0.0, 11.0, 2.0, 14.0]
    assert hi.tolist() == [11.0, 2.0, 14.0, 6.0, 14.0]


def test_overlap_golden():
    ov = overlap_hz(np.array([0.0, 5.0]), np.array([10.0, 6.0]), np.array([8.0, 20.0]), np.array([12.0, 30.0]))
    assert ov.tolist() == [[2.0, 0.0], [0.0, 0.0]]


def test_interference_by_hand():
    # victim: cell 0 on [0, 10) Hz; tx A: cell 1 on [5, 15), 2 W, gain 0.1 to the victim's
    # receiver -> 5 Hz x 0.2 W/Hz x 0.1 = 0.1 W; tx B: same cell as the victim -> nothing;
    # tx C: cell 2 on [0, 40), 4 W, gain 0.5 -> 10 Hz x 0.1 W/Hz x 0.5 = 0.5 W.
    got = interference_w(
        np.array([0.0]), np.array([10.0]), np.array([0]),
        np.array([5.0, 0.0, 0.0]), np.array([15.0, 10.0, 40.0]), np.array([1, 0, 2]),
        np.array([2.0, 9.0, 4.0]), np.array([[0.1, 1.0, 0.5]]),
    )
    assert got == pytest.approx([0.6])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-3, 1.0), st.floats(1e-14, 1e-6), st.floats(1e3, 1e7)), min_size=1, max_size=8))
def test_interference_free_sinr_is_the_snr_bit_for_bit(rows):
    p, g, b = (np.array(c) for c in zip(*rows))
    noise = ofdma.noise_psd_w_per_hz(5.0)
    assert np.array_equal(sinr_lin(p * g, np.zeros(len(p)), noise, b), ofdma.snr_lin(p, g, b, noise))


def test_sinr_falls_with_interference_and_zero_bandwidth_gives_zero():
    s = sinr_lin(np.array([1e-9, 1e-9, 1e-9]), np.array([0.0, 1e-12, 0.0]), 1e-20, np.array([1e6, 1e6, 0.0]))
    assert s[0] > s[1] > 0 and s[2] == 0.0
    assert s[1] == pytest.approx(1e-9 / (1e-14 + 1e-12))


@pytest.mark.parametrize("num_sites", [7, 19])
def test_reuse_3_colours_differ_between_grid_neighbours(num_sites):
    sites = hex_site_positions_m(num_sites, ISD)
    colours = reuse_colours(sites, ISD, "hex")
    d = np.linalg.norm(sites[:, None] - sites[None], axis=2)
    neighbours = np.isclose(d, ISD)
    assert not np.any(neighbours & (colours[:, None] == colours[None, :]))
    assert set(colours.tolist()) == {0, 1, 2}
    line = reuse_colours(line_site_positions_m(7, 500.0), 500.0, "line")
    assert np.all(line[1:] != line[:-1])


def test_subbands():
    start, width = subband_start_hz(np.array([0, 2, 1]), 3, 30e6)
    assert width == 10e6 and start.tolist() == [0.0, 20e6, 10e6]
    start, width = subband_start_hz(np.array([0, 2, 1]), 1, 30e6)
    assert width == 30e6 and start.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="reuse"):
        subband_start_hz(np.array([0]), 2, 30e6)


def test_geometry_by_hand_and_serving_choice():
    g = np.array([[1e-10, 1e-11, 1e-12], [1e-12, 1e-12, 1e-9]])
    geo = downlink_geometry_lin(g, 10.0, 1e-12)
    assert geo[0] == pytest.approx(1e-9 / (1e-12 + 1e-10 + 1e-11))
    assert geo[1] == pytest.approx(1e-8 / (1e-12 + 2e-11))
    forced = downlink_geometry_lin(g, 10.0, 1e-12, serving=np.array([1, 2]))
    assert forced[0] == pytest.approx(1e-10 / (1e-12 + 1e-9 + 1e-11))
