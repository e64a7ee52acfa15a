"""The policy registry: names, one source file per name, `list --policies`, a user's policy."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from scenarios.cli import main
from scenarios.policies import Policy, names, policy_class

from smallrun import small_args

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("st-sflora", "st-sflora-full", "sflora", "split-lora", "fed-lora", "local-lora",
           "random-tokens", "equal", "tsflora", "sflam", "asfl", "genfv")


def readme_policy() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("**Your own policy.**"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_all_shipped_policies_are_registered_with_their_metadata():
    assert sorted(names()) == sorted(SHIPPED)
    for name in SHIPPED:
        cls = policy_class(name)
        assert issubclass(cls, Policy) and cls.name == name
        assert cls.label and cls.description and cls.reference


def _spelled(name: str, packages: tuple[str, ...]) -> list[str]:
    sources = [p for pkg in packages for p in (ROOT / pkg).rglob("*.py")]
    quoted = re.compile(rf"""["']{re.escape(name)}["']""")
    return [p.relative_to(ROOT).as_posix() for p in sources if quoted.search(p.read_text())]


def test_analysis_spells_no_policy_name():
    assert not [f for name in SHIPPED for f in _spelled(name, ("analysis",))]


@pytest.mark.parametrize("name", SHIPPED)
def test_each_policy_name_is_spelled_in_exactly_one_source_file(name):
    spelled = _spelled(name, ("netsim", "learning", "scenarios", "analysis"))
    # netsim's solver functions take their own names (the allocation module is not a policy).
    spelled = [p for p in spelled if not p.startswith("netsim/allocation/")]
    assert len(spelled) == 1 and spelled[0].startswith("scenarios/policies/"), spelled


def test_list_policies_prints_every_name_with_its_description(capsys):
    assert main(["list", "--policies"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        line = next(l for l in out.splitlines() if l.split() and l.split()[0] == name)
        assert policy_class(name).description in line


def test_the_readme_policy_runs_as_written(tmp_path, fmnist_dir):
    path = tmp_path / "my_policy.py"
    path.write_text(readme_policy())
    out = tmp_path / "run"
    # static-cell schedules every device each round (the default paper-cell samples half).
    argv = ["run", "static-cell",
            *small_args(fmnist_dir, tmp_path / "cache", rounds=2, policy=f"{path}:HalfTokens"),
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    decisions = pd.read_parquet(out / "decisions.parquet")
    planned = decisions[decisions["status"] == "ok"]
    assert len(planned) == 6  # 3 devices, 2 rounds
    config = json.loads((out / "config.json").read_text())
    k_max = (config["config"]["model"]["img_size"] // config["config"]["model"]["patch_size"]) ** 2
    assert (planned["tokens"] == k_max // 2).all()
    assert planned["bandwidth_hz"].nunique() == 1
    assert config["policy_label"] == "Half tokens"
    assert config["config"]["learner"]["strategy"] == "split-federated"


@pytest.mark.parametrize("ref, fragment", [
    ("nowhere.py:X", "policy file not found: nowhere.py"),
    ("{path}:Missing", "has no class 'Missing'"),
    ("{path}:np", "must be a subclass of scenarios.policies.Policy"),
])
def test_bad_user_policy_is_one_line(tmp_path, capsys, ref, fragment):
    path = tmp_path / "my_policy.py"
    path.write_text(readme_policy())
    assert main(["show", "--set", f"policy={ref.format(path=path)}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
