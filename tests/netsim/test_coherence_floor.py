"""A channel block shorter than one 5G NR slot is a typo: refused, naming the floor."""
import pytest

from netsim.config import MIN_COHERENCE_S, WorldConfig


def test_floor_is_one_slot_at_240_khz():
    # TS 38.211 Table 4.3.2-1: numerology 4 has 16 slots per 1 ms subframe.
    assert MIN_COHERENCE_S == pytest.approx(1e-3 / 16)


@pytest.mark.parametrize("coherence_s", [1e-12, 1e-6, 62.4e-6])
def test_shorter_blocks_are_refused(coherence_s):
    with pytest.raises(ValueError, match=r"coherence_s must be >= 6.25e-05 s"):
        WorldConfig(coherence_s=coherence_s)


def test_one_slot_is_accepted():
    assert WorldConfig(coherence_s=62.5e-6).coherence_s == 62.5e-6
