"""analysis.results_md: the deadline claim's verdict from a hand-made table (Student t by hand)."""
import math

import pandas as pd

from analysis.results_md import HELD, NOT_MEASURED, NOT_SEPARABLE, deadline_claim

T_975_DF2 = 4.302652729749464  # Student t, 97.5 % quantile, 2 degrees of freedom


def _table(low, high):
    rows = [{"deadline_s": 0.25, "seed": s, "tokens_mean": k} for s, k in enumerate(low)]
    rows += [{"deadline_s": 1.0, "seed": s, "tokens_mean": 20.0} for s in range(3)]  # not used
    rows += [{"deadline_s": 4.0, "seed": s, "tokens_mean": k} for s, k in enumerate(high)]
    return pd.DataFrame(rows)


def test_deadline_claim_pairs_the_extreme_deadlines_by_seed():
    # Differences 4, 5, 6: mean 5, s = 1, half-width 4.303 / sqrt(3) = 2.48 -> clear of 0.
    claim = deadline_claim(_table([10.0, 11.0, 12.0], [14.0, 16.0, 18.0]))
    assert claim.verdict == HELD
    assert f"= 5 ± {T_975_DF2 / math.sqrt(3):.2g}; more at 3 of 3 seeds" in claim.measured
    # Differences 0, 4, 8: mean 4, s = 4, half-width 9.94 -> rises at 2 seeds, not separable.
    claim = deadline_claim(_table([10.0, 10.0, 10.0], [10.0, 14.0, 18.0]))
    assert claim.verdict == NOT_SEPARABLE and "more at 2 of 3 seeds" in claim.measured
    one = pd.DataFrame([{"deadline_s": 1.0, "seed": 0, "tokens_mean": 5.0}])
    assert deadline_claim(one).verdict == NOT_MEASURED
