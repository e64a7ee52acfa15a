"""The policy registry: names, one source file per name, `list --policies`, a user's policy."""
from __future__ import annotations

import json
import re
import sys
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


def test_the_readme_policy_runs_as_written_with_its_parameter(tmp_path, fmnist_dir, capsys):
    path = tmp_path / "my_policy.py"
    path.write_text(readme_policy())
    out = tmp_path / "run"
    # static-cell schedules every device each round (the default paper-cell samples half).
    argv = ["run", "static-cell",
            *small_args(fmnist_dir, tmp_path / "cache", rounds=2, policy=f"{path}:TokenShare"),
            "--set", "token-share.share=0.25", "--out", str(out)]
    assert main(argv) == 0
    summary = capsys.readouterr().out
    assert "static-cell / Token share" in summary and str(path) not in summary  # the label, not the file
    decisions = pd.read_parquet(out / "decisions.parquet")
    planned = decisions[decisions["status"] == "ok"]
    assert len(planned) == 6  # 3 devices, 2 rounds
    config = json.loads((out / "config.json").read_text())
    k_max = (config["config"]["model"]["img_size"] // config["config"]["model"]["patch_size"]) ** 2
    assert (planned["tokens"] == max(1, round(0.25 * k_max))).all()
    assert planned["bandwidth_hz"].nunique() == 1
    assert config["policy_label"] == "Token share"
    assert config["config"]["token-share"] == {"share": 0.25}
    assert config["config"]["learner"]["strategy"] == "split-federated"
    # the README's command line names the same class and key
    assert "--set policy=my_policy.py:TokenShare --set token-share.share=0.25" in (ROOT / "README.md").read_text()


PARAM_POLICY = """
from dataclasses import dataclass, field

import numpy as np

from scenarios.policies import Decision, Policy, register_policy


@dataclass(frozen=True)
class FixedParams:
    tokens: int = field(default=3, metadata={"help": "patch tokens every device keeps", "unit": "tokens"})

    def __post_init__(self):
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 1:
            raise ValueError(f"tokens must be an integer >= 1, got {self.tokens!r}")


DECORATOR
class Fixed(Policy):
    name = "NAME"
    label = "Fixed budget"
    description = "a fixed token budget, equal bandwidth, full power"
    reference = "a test"
    params_type = FixedParams

    def decide(self, view):
        return Decision(
            tokens=np.full(view.num_devices, min(self.params.tokens, view.max_tokens)),
            bandwidth_hz=np.full(view.num_devices, view.total_bandwidth_hz / view.num_devices),
            power_w=view.max_power_w.copy(), status=np.full(view.num_devices, "ok", dtype=object))
"""


def _planned_tokens(out: Path) -> list[int]:
    decisions = pd.read_parquet(out / "decisions.parquet")
    return decisions.loc[decisions["status"] == "ok", "tokens"].tolist()


def test_a_users_policy_with_a_typed_parameter_is_one_file(tmp_path, fmnist_dir, capsys):
    path = tmp_path / "fixed.py"
    path.write_text(PARAM_POLICY.replace("NAME", "fixed-budget").replace("DECORATOR", ""))
    policy = f"{path}:Fixed"
    assert main(["show", "--set", f"policy={policy}", "--set", "fixed-budget.tokens=5"]) == 0
    shown = capsys.readouterr().out
    assert "fixed-budget.tokens = 5  [tokens]  # patch tokens every device keeps" in shown
    for bad, message in (("fixed-budget.tokens=0", "fixed-budget.tokens=0: tokens must be an integer >= 1, got 0"),
                         ("fixed-budget.tokens=x", "fixed-budget.tokens: expected an integer, got 'x'"),
                         ("fixed-budget.tokns=2",
                          "unknown key 'fixed-budget.tokns'; did you mean fixed-budget.tokens?")):
        assert main(["show", "--set", f"policy={policy}", "--set", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"sflsim: error: {message}", err
    out = tmp_path / "run"
    argv = ["run", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=1, policy=policy),
            "--set", "fixed-budget.tokens=2", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert _planned_tokens(out) == [2, 2, 2]


def test_a_shipped_policy_with_a_typed_parameter_is_one_file(tmp_path, fmnist_dir, monkeypatch):
    # A new module in a folder the package searches: nothing else is edited.
    import scenarios.policies as package
    from scenarios.policies import registry

    folder = tmp_path / "more_policies"
    folder.mkdir()
    (folder / "fixed_budget.py").write_text(PARAM_POLICY.replace("NAME", "fixed-budget")
                                            .replace("DECORATOR", "@register_policy"))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, "scenarios.policies.fixed_budget", raising=False)
    assert "fixed-budget" in names()
    out = tmp_path / "run"
    argv = ["run", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=1, policy="fixed-budget"),
            "--set", "fixed-budget.tokens=4", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert _planned_tokens(out) == [4, 4, 4]
    monkeypatch.delitem(sys.modules, "scenarios.policies.fixed_budget", raising=False)


def test_a_parameter_of_a_policy_not_chosen_is_refused_naming_the_chosen_one(capsys):
    assert main(["show", "--set", "policy=equal", "--set", "tsflora.tokens=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("sflsim: error: unknown key 'tsflora.tokens': policy tsflora is not the chosen policy "
                   "(policy=equal); set policy=tsflora to use its parameters"), err
    assert main(["show", "--set", "policy=tsflora", "--set", "tsflora.tokens=4"]) == 0
    shown = capsys.readouterr().out
    assert "tsflora.tokens = 4  [tokens]" in shown and "sflam." not in shown


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
