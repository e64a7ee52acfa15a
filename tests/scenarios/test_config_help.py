"""Every config field explains itself: `sflsim show` prints its value, unit and help."""
import dataclasses

from scenarios.cli import main
from scenarios.registry import available


def _fields(cls, prefix=""):
    for f in dataclasses.fields(cls):
        yield prefix + f.name, cls, f


def _walk(obj, prefix=""):
    for key, cls, f in _fields(type(obj), prefix):
        value = getattr(obj, f.name)
        yield key, cls, f
        if dataclasses.is_dataclass(value):
            yield from _walk(value, key + ".")


def test_every_field_of_every_scenario_config_has_help():
    missing = set()
    for scenario in available():
        for key, cls, f in _walk(scenario.default_config()):
            meta = next((c.__dataclass_fields__[f.name].metadata for c in cls.__mro__
                         if f.name in getattr(c, "__dataclass_fields__", {})
                         and c.__dataclass_fields__[f.name].metadata), {})
            if not meta.get("help") or "unit" not in meta:
                missing.add(key)
    assert not missing, sorted(missing)


def test_show_prints_value_unit_and_help(capsys):
    assert main(["show", "static-cell", "--set", "deadline_s=2.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "deadline_s = 2.5  [s]  # per-round deadline from the round start" in lines
    assert all(" # " in line for line in lines), [l for l in lines if " # " not in l][:5]
