"""The Python floor is one claim: pyproject's ``requires-python``, the README and CI agree.

``netsim.reasons`` uses ``enum.StrEnum`` and ``scenarios.overrides`` the standard ``tomllib``,
both new in Python 3.11, so the floor cannot be lower than that; ``.ci/run`` runs exactly the
floor version.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _floor() -> tuple[int, int]:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=(\d+)\.(\d+)", spec)
    assert match, spec
    return int(match[1]), int(match[2])


def test_readme_states_the_pyproject_floor():
    major, minor = _floor()
    stated = re.findall(r"Python >= (\d+\.\d+)", (ROOT / "README.md").read_text())
    assert stated == [f"{major}.{minor}"], stated


def test_floor_covers_what_the_code_imports():
    # StrEnum and tomllib exist from 3.11 on: a lower floor would be a false promise.
    assert _floor() >= (3, 11)
    assert sys.version_info[:2] >= _floor()


def test_ci_runs_the_floor_version():
    script = (ROOT / ".ci" / "run").read_text()
    assert "requires-python" in script and 'PYTHON=${PYTHON:-python$FLOOR}' in script
    assert 'make test PYTHON="$PYTHON"' in script
