"""--set / --config parsing against a small dataclass tree (no simulation needed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, get_args

import pytest

from scenarios.overrides import (
    ConfigError,
    apply_overrides,
    convert,
    field_paths,
    load_toml,
    parse_assignments,
)


@dataclass(frozen=True)
class Inner:
    radius_m: float = 250.0
    model: Literal["a", "b"] = "a"
    speeds_kmh: tuple[float, float] = (60.0, 130.0)

    def __post_init__(self):
        if self.radius_m <= 0:
            raise ValueError(f"radius_m must be > 0, got {self.radius_m!r}")


@dataclass(frozen=True)
class Outer:
    rounds: int = 3
    policy: str = "x"
    flag: bool = False
    root: Optional[str] = None
    auto: Optional[bool] = None
    inner: Inner = field(default_factory=Inner)


def test_field_paths_lists_nested_keys_in_order():
    assert field_paths(Outer()) == [
        "rounds", "policy", "flag", "root", "auto", "inner.radius_m", "inner.model", "inner.speeds_kmh",
    ]


def test_apply_overrides_converts_types_and_nests():
    cfg = apply_overrides(Outer(), {
        "rounds": "7", "flag": "yes", "root": "none", "auto": "off", "inner.radius_m": "300",
        "inner.model": "b", "inner.speeds_kmh": "50,90",
    })
    assert cfg == Outer(rounds=7, flag=True, root=None, auto=False, inner=Inner(300.0, "b", (50.0, 90.0)))
    assert apply_overrides(Outer(auto=True), {"auto": "none"}).auto is None


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("nope", "1", "unknown key 'nope'"),
        ("inner.nope", "1", "unknown key 'inner.nope'"),
        ("rounds.x", "1", "has no sub-keys"),
        ("inner", "1", "group of settings"),
        ("rounds", "abc", "rounds: expected an integer, got 'abc'"),
        ("rounds", "2.5", "expected an integer"),
        ("flag", "maybe", "expected true or false"),
        ("auto", "maybe", "auto: expected true, false or none, got 'maybe'"),
        ("inner.radius_m", "nan", "finite"),
        ("inner.radius_m", "inf", "finite"),
        ("inner.radius_m", "-5", "radius_m must be > 0, got -5.0"),
        ("inner.model", "c", "'c' is not one of a, b"),
        ("inner.speeds_kmh", "1,2,3", "expected 2 comma-separated values"),
    ],
)
def test_bad_overrides_name_key_and_value(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        apply_overrides(Outer(), {key: value})
    msg = str(err.value)
    assert fragment in msg
    assert "\n" not in msg


@pytest.mark.parametrize("key, message", [
    ("round", "unknown key 'round'; did you mean rounds?"),
    ("radius_m", "unknown key 'radius_m'; did you mean inner.radius_m?"),
    ("inner.radius", "unknown key 'inner.radius'; did you mean inner.radius_m?"),
    ("colour", "unknown key 'colour'; sflsim show lists every key"),
])
def test_unknown_key_names_the_closest_keys(key, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(Outer(), {key: "1"})
    assert str(err.value) == message


def test_parse_assignments_requires_equals():
    assert parse_assignments(["a=1", "b.c = x"]) == {"a": "1", "b.c": "x"}
    with pytest.raises(ConfigError, match="--set expects key=value, got 'devices'"):
        parse_assignments(["devices"])


def test_toml_file_flattens_tables(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('rounds = 4\nflag = true\n[inner]\nradius_m = 120\nspeeds_kmh = [10, 20]\n')
    cfg = apply_overrides(Outer(), load_toml(str(path)))
    assert cfg.rounds == 4 and cfg.flag is True
    assert cfg.inner.radius_m == 120.0 and cfg.inner.speeds_kmh == (10.0, 20.0)


def test_toml_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_toml(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("rounds = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(str(bad))
    typed = tmp_path / "typed.toml"
    typed.write_text('rounds = "three"')
    with pytest.raises(ConfigError, match="rounds: expected an integer"):
        apply_overrides(Outer(), load_toml(str(typed)))


def test_convert_rejects_bool_for_numbers():
    with pytest.raises(ConfigError):
        convert(True, int, "k")
    with pytest.raises(ConfigError):
        convert(False, float, "k")


@pytest.mark.parametrize("hint, raw, message", [
    (Optional[int], "abc", "k: expected an integer or none, got 'abc'"),
    (Optional[float], "x", "k: expected a number or none, got 'x'"),
    (Optional[float], "inf", "k: expected a finite number or none, got 'inf'"),
    (Optional[bool], "maybe", "k: expected true, false or none, got 'maybe'"),
    (Optional[Literal["a", "b"]], "c", "k: 'c' is not one of a, b, none"),
    (Optional[tuple[float, float]], "1,2,3", "k: expected 2 comma-separated values or none, got '1,2,3'"),
    (int, "abc", "k: expected an integer, got 'abc'"),
    (Literal["a", "b"], "c", "k: 'c' is not one of a, b"),
])
def test_an_optional_field_says_none_is_accepted(hint, raw, message):
    with pytest.raises(ConfigError) as err:
        convert(raw, hint, "k")
    assert str(err.value) == message
    if type(None) in get_args(hint):
        assert convert("none", hint, "k") is None
