"""No scenario pretrains by surprise: a backbone that is not cached is announced before the
pretraining starts (where it will be cached), and its duration on this machine is measured
from its first steps and said; a cached one is only loaded."""
from __future__ import annotations

import re

from scenarios.base import TIMED_STEPS
from scenarios.cli import main
from scenarios.registry import SCENARIOS, load

from smallrun import small_args


def test_first_use_is_announced_with_its_cache_and_measured_time(fmnist_dir, tmp_path, capsys):
    args = small_args(fmnist_dir, tmp_path / "cache", rounds=1, **{
        "pretrain.source": "own", "pretrain.public_samples": 200, "pretrain.batch_size": 20,
        "pretrain.epochs": 0.5, "pretrain.eval_samples": 0})
    assert main(["run", "static-cell", *args, "--threads", "1", "--quiet", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    (entry,) = (tmp_path / "cache").glob("backbone-*.pt")
    announce = [line for line in err.splitlines() if "not cached; pretraining it once" in line]
    assert len(announce) == 1 and str(entry) in announce[0], err
    measured = [line for line in err.splitlines() if "s per step measured here" in line]
    assert len(measured) == 1, err
    assert re.search(r"pretraining takes about \d+\.\d min \(5 steps\), once", measured[0]), measured[0]
    assert err.index(announce[0]) < err.index(measured[0])
    assert TIMED_STEPS <= 5
    # the second run loads the cache: nothing is announced
    assert main(["run", "static-cell", *args, "--threads", "1", "--quiet", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "pretraining it once" not in err and "measured here" not in err


def test_which_shipped_scenarios_pretrain():
    # paper-cell runs from the shipped backbone; the others pretrain once, announced as above.
    sources = {name: load(name).default_config().pretrain.source for name in SCENARIOS}
    assert sources["paper-cell"] == "shipped"
    assert set(sources.values()) <= {"shipped", "own"}
