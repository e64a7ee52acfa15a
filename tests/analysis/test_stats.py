"""Student-t intervals and paired differences, against closed forms worked by hand."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis.stats import format_interval, paired_interval, seed_summary, t_interval


def test_t_interval_by_hand():
    # values 1, 2, 3: mean 2, s = 1, sem = 1/sqrt(3); t_{0.975, 2} = 4.302652729911275 (tables).
    iv = t_interval([1.0, 2.0, 3.0])
    assert iv.mean == 2.0
    assert iv.half_width == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    # 2 - 2.484 < 0: the interval holds 0.
    assert iv.n == 3 and not iv.excludes_zero()
    assert t_interval([1.0, 1.1, 1.2]).excludes_zero()


def test_one_seed_has_no_interval_and_nan_is_ignored():
    iv = t_interval([0.5, float("nan")])
    assert iv.mean == 0.5 and math.isnan(iv.half_width) and iv.n == 1
    assert not iv.excludes_zero()
    assert format_interval(iv.mean, iv.half_width) == "0.5 (1 seed)"


def test_paired_removes_common_variation():
    seeds = pd.Index([0, 1, 2, 3], name="seed")
    common = pd.Series([0.1, 0.5, 0.9, 0.3], index=seeds)
    a, b = common + 0.02, common
    paired = paired_interval(a, b)
    assert paired.mean == pytest.approx(0.02) and paired.half_width == pytest.approx(0.0, abs=1e-12)
    # The unpaired intervals of a and b overlap widely; the paired one is tight.
    assert t_interval(a).half_width > 0.2


def test_seed_summary_groups_and_differences():
    table = pd.DataFrame({
        "policy": ["p", "p", "q", "q"], "seed": [0, 1, 0, 1], "acc": [0.8, 0.9, 0.7, 0.85],
    })
    out = seed_summary(table, ["policy"], ["acc"], baseline="q").set_index("config")
    assert out.loc["p", "seeds"] == 2
    assert out.loc["p", "acc"] == pytest.approx(0.85)
    # Differences 0.1 and 0.05: mean 0.075, s = 0.0353553, t_{0.975,1} = 12.706204736174698.
    assert out.loc["p", "acc_diff"] == pytest.approx(0.075)
    assert out.loc["p", "acc_diff_ci"] == pytest.approx(12.706204736174698 * 0.05 / math.sqrt(2) / math.sqrt(2), rel=1e-6)
    assert out.loc["q", "acc_diff"] == 0.0
    with pytest.raises(ValueError, match="baseline"):
        seed_summary(table, ["policy"], ["acc"], baseline="nope")
    with pytest.raises(ValueError, match="seed"):
        seed_summary(pd.concat([table, table]), ["policy"], ["acc"])
