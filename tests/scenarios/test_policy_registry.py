"""The policy registry: names, one source file per name, `list --policies`, a user's policy."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from scenarios.cli import main
from scenarios.policies import Policy, default_policy, names, policy_class

from smallrun import small_args

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "scenarios" / "policies"
# Read from the package, not kept by hand: each module of scenarios/policies/ but the contract
# and the registry holds one policy.
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "contract", "registry"))
SHIPPED = tuple(names())


def readme_policy() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("**Your own policy.**"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_every_policy_module_registers_one_policy_with_its_metadata():
    by_module = {policy_class(n).__module__.rsplit(".", 1)[-1]: n for n in SHIPPED}
    assert sorted(by_module) == MODULES and len(by_module) == len(SHIPPED)
    for name in SHIPPED:
        cls = policy_class(name)
        assert issubclass(cls, Policy) and cls.name == name
        assert cls.label and cls.description and cls.reference
    assert [n for n in SHIPPED if policy_class(n).default] == [default_policy()]


def _spelled(name: str, packages: tuple[str, ...]) -> list[str]:
    sources = [p for pkg in packages for p in (ROOT / pkg).rglob("*.py")]
    quoted = re.compile(rf"""["']{re.escape(name)}["']""")
    return [p.relative_to(ROOT).as_posix() for p in sources if quoted.search(p.read_text())]


def test_analysis_spells_no_policy_name():
    assert not [f for name in SHIPPED for f in _spelled(name, ("analysis",))]


@pytest.mark.parametrize("name", SHIPPED)
def test_each_policy_name_is_spelled_in_exactly_one_source_file(name):
    spelled = _spelled(name, ("netsim", "learning", "scenarios", "analysis"))
    assert len(spelled) == 1 and spelled[0].startswith("scenarios/policies/"), spelled


def test_config_imports_no_policy():
    source = (ROOT / "scenarios" / "config.py").read_text()
    assert not re.search(r"^from scenarios\.policies\.\w+ import|^import scenarios\.policies\.", source, re.M)


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
