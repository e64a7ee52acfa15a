"""Seeds as an axis: parsing, refused combinations, and seed runs equal to runs made alone."""
from __future__ import annotations

import pytest

from scenarios.cli import main
from scenarios.overrides import ConfigError
from scenarios.seeds import check_seed_options, parse_seeds, seed_dir

from smallrun import run_files, small_args


@pytest.mark.parametrize("text, seeds", [
    ("0,1,2", (0, 1, 2)), ("0-4", (0, 1, 2, 3, 4)), ("3", (3,)), ("7, 0-1", (7, 0, 1)),
    ("2-2", (2,)),
])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", ",", "a", "1-", "-1", "3-1", "0,1,1", "0-2,2", "1.5"])
def test_parse_seeds_refuses(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


def test_conflicting_seed_options():
    check_seed_options(None, (0, 1), {"policy": ["a"]}, {"rounds": "2"})
    check_seed_options(None, None, {"seed": ["1", "2"]})  # a seed grid alone is fine
    with pytest.raises(ConfigError, match="--grid seed=... and --seed 3"):  # --seed would be ignored
        check_seed_options(3, None, {"seed": ["1", "2"]})
    with pytest.raises(ConfigError, match="--seed 3 and --seeds"):
        check_seed_options(3, (0, 1))
    with pytest.raises(ConfigError, match="--grid seed"):
        check_seed_options(None, (0, 1), {"seed": ["1", "2"]})
    with pytest.raises(ConfigError, match="seed=5"):
        check_seed_options(None, (0, 1), None, {"seed": "5"})


@pytest.mark.parametrize("extra", [
    ["run", "--seed", "1", "--seeds", "0,1"],
    ["sweep", "--grid", "seed=0,1", "--seeds", "0,1"],
    ["sweep", "--grid", "policy=equal", "--seeds", "0,0"],
    ["run", "--seeds", "0-x"],
])
def test_refused_on_the_command_line(tmp_path, fmnist_dir, capsys, extra):
    command, *rest = extra
    args = [command, "static-cell", *small_args(fmnist_dir, tmp_path / "cache"), *rest,
            "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed" in err[0]
    assert not (tmp_path / "out").exists()


def test_each_seed_run_equals_the_run_made_alone(tmp_path, fmnist_dir):
    small = small_args(fmnist_dir, tmp_path / "cache", rounds=2)
    assert main(["run", "static-cell", *small, "--seeds", "0-1", "--threads", "1",
                 "--out", str(tmp_path / "many"), "--quiet"]) == 0
    assert main(["sweep", "static-cell", *small, "--grid", "policy=st-sflora", "--seeds", "1,0",
                 "--threads", "1", "--out", str(tmp_path / "sw"), "-q"]) == 0
    for seed in (0, 1):
        alone = tmp_path / f"alone{seed}"
        assert main(["run", "static-cell", *small, "--seed", str(seed), "--threads", "1",
                     "--out", str(alone), "--quiet"]) == 0
        many = run_files(seed_dir(tmp_path / "many", seed))
        swept = run_files(seed_dir(tmp_path / "sw" / "policy=st-sflora", seed))
        ref = run_files(alone)
        assert sorted(many) == sorted(ref) == sorted(swept) and "events.parquet" in ref
        for name in ref:
            assert many[name] == ref[name], (seed, name)
            if name != "config.json":  # the sweep records its grid values and seed there
                assert swept[name] == ref[name], (seed, name)
    # Different seeds are different runs.
    assert ((tmp_path / "many" / "seed=0" / "events.parquet").read_bytes()
            != (tmp_path / "many" / "seed=1" / "events.parquet").read_bytes())
