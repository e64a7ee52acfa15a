"""``planning.whole_rbs`` changes a decision's bandwidths and nothing else.

Regression: the rounding used to rebuild the Decision by hand and dropped ``cut_layer`` and
``bits_per_value``, so a TSFLora run at 4 bits with whole RBs recorded 32 bits (and the uplink
of float32 payloads). Where every decided bandwidth is already whole blocks (3 devices share
51 RBs equally: 17 each), rounding changes nothing, so every column of ``decisions.parquet``
must be the same with and without it.
"""
from __future__ import annotations

import pandas as pd

from scenarios.cli import main
from smallrun import small_args


def _decisions(tmp_path, fmnist_dir, name: str, whole_rbs: bool) -> pd.DataFrame:
    out = tmp_path / name
    argv = ["run", "static-cell",
            *small_args(fmnist_dir, tmp_path / "cache", rounds=2, policy="tsflora"),
            "--set", "tsflora.bits=4", "--set", "tsflora.tokens=4",
            "--set", f"planning.whole_rbs={str(whole_rbs).lower()}", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return pd.read_parquet(out / "decisions.parquet")


def test_whole_rbs_keeps_every_field_of_the_decision(tmp_path, fmnist_dir):
    plain = _decisions(tmp_path, fmnist_dir, "plain", False)
    rounded = _decisions(tmp_path, fmnist_dir, "rounded", True)
    ok = plain["status"] == "ok"
    assert ok.sum() == 6  # 3 devices, 2 rounds, each with 51 / 3 = 17 whole blocks
    assert (plain.loc[ok, "bits_per_value"] == 4).all()
    pd.testing.assert_frame_equal(plain, rounded, check_exact=True)
