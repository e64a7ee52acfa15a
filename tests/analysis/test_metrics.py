"""analysis.metrics: a deadline miss is a deadline, not any stop."""
import pandas as pd

from analysis import metrics


def test_only_deadline_stops_count_as_misses():
    events = pd.DataFrame({
        "round": [1, 1, 1, 1], "device": [0, 1, 2, 2], "end_s": [1.0, 2.0, 0.5, 3.0],
        "completed": [True, False, True, False], "reason": ["", "energy", "", "deadline"],
    })
    dr = metrics.device_rounds(events)
    assert dr["missed"].tolist() == [False, False, True]
    assert dr["reason"].tolist() == ["", "energy", "deadline"]
    assert metrics.deadline_misses(events) == (1, 1 / 3)
