"""Committed bench results carry no machine paths: a file is named relative to the project
(or by its name and SHA-256), so the results read the same on every clone."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "bench" / "results").glob("*.json")) + sorted((ROOT / "bench" / "results").glob("*.txt"))
# An absolute POSIX path (/x/...), a home folder (~/...) or a Windows drive (C:\ or C:/).
ABSOLUTE = re.compile(r'"(/[^"/]+/|~/|[A-Za-z]:[\\/])')


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_committed_result_holds_no_absolute_path(path):
    text = path.read_text()
    assert not ABSOLUTE.search(text), ABSOLUTE.search(text)[0]
    if path.suffix == ".json":
        for s in _strings(json.loads(text)):
            assert not Path(s).is_absolute() and not s.startswith("~"), s


def test_bench_records_paths_relative_to_the_project(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_token_curve", ROOT / "bench" / "token_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = ROOT / "learning" / "weights" / "default.safetensors"
    assert module.portable_path(shipped) == "learning/weights/default.safetensors"
    outside = tmp_path / "mine.safetensors"
    outside.write_bytes(b"")
    assert module.portable_path(outside) == "mine.safetensors"
