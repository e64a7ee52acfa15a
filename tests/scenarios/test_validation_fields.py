"""Every config field of every shipped scenario, set to every bad kind of value.

The fields are found by walking the config dataclasses (``dataclasses.fields``, recursively),
so a field added later is covered without editing this file. Each field gets the bad kinds
that apply to its declared type (zero, negative, nan, inf, absurdly large, wrong type, empty);
each case runs ``sflsim run --dry-run`` in-process (validation only, nothing built) under a
time limit and must exit 2 with one line on stderr naming the key, and create nothing.

A kind is bad for a field unless :data:`ALLOWED` says that value is legitimate there (a seed of
0, a Rician K of -1 dB, an empty optional path meaning "none"); those cases pass the
validation (exit 0, nothing created) unless another field makes them wrong, when they are
refused like the rest. The list is the reviewed set of exceptions.
"""
from __future__ import annotations

import dataclasses
import signal
import types
import typing
from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.config import DERIVED_KEYS
from scenarios.registry import SCENARIOS, load

CASE_SECONDS = 20  # per-case limit: a validation that hangs fails instead of stalling the suite

KINDS = ("zero", "negative", "nan", "inf", "large", "wrong-type", "empty")
NUMBER_VALUES = {"zero": "0", "negative": "-1", "nan": "nan", "inf": "inf", "large": "1e30",
                 "wrong-type": "abc", "empty": ""}
INT_VALUES = {**NUMBER_VALUES, "large": "1000000000000000000000"}
BOOL_VALUES = {"wrong-type": "maybe", "empty": "", "nan": "nan"}
TEXT_VALUES = {"empty": "", "wrong-type": "1e30"}

# (key suffix, kind): values that are legitimate for that field and must be accepted.
ALLOWED = {
    # zero is a meaningful setting of these
    *[(k, "zero") for k in (
        "seed", "token_maps", "fading_margin_db", "inner_radius_m", "offset_m", "pause_s",
        "min_doppler_speed_mps", "kappa", "ue_noise_figure_db", "bs_noise_figure_db",
        "bs_tx_power_dbm", "max_tx_power_dbm", "rician_k_db", "shadowing_std_db", "cut",
        "lora_dropout", "weight_decay", "momentum", "warmup_steps", "pretrain.eval_samples",
        "pretrain.seed", "scenes.fragments", "scenes.seed", "lora_rank",
        "sample_cache_mb")],
    # documented: a very long (or infinite) decorrelation distance keeps shadowing constant
    ("decorrelation_m", "large"),
    # quantities in dB or dBm may be negative
    *[(k, "negative") for k in ("rician_k_db", "bs_tx_power_dbm", "max_tx_power_dbm")],
    # an empty optional value means "none" (the default behaviour)
    *[(k, "empty") for k in (
        "data_root", "cache_dir", "bs_height_m", "shadowing_std_db", "decorrelation_m",
        "road_length_m", "max_spectral_efficiency", "energy_budget_j_range", "depth", "embed_dim",
        "num_heads", "uplink_bits_per_value", "downlink_bits_per_value", "eval_tokens",
        "checkpoint", "batched")],
    # policy parameters: a zero weight or margin switches a term off, 0 is the first cut,
    # max_cut=-1 means the model's depth; token budgets and a max_cut above the model's are
    # clipped to it (documented; a min_cut above the depth is refused), and weights are
    # relative, so a huge one is a choice, not an error
    *[(k, "zero") for k in ("dwell_weight", "emd_weight", "margin_s", "distortion_weight_s", "min_cut")],
    ("max_cut", "negative"),
    *[(k, "large") for k in ("tsflora.tokens", "dwell_weight", "emd_weight", "distortion_weight_s",
                             "max_cut")],
    # multi-cell: units on the road axis, independent shadowing, no offset, hysteresis, time to
    # trigger or backhaul latency are all legitimate; an A3 offset may be negative
    *[(k, "zero") for k in ("line_offset_m", "inter_site_correlation", "offset_db", "hysteresis_db",
                            "time_to_trigger_s", "backhaul_latency_s")],
    ("offset_db", "negative"),
    # any text is a fine name, and "1e30" a fine (if odd) scenario name or cache folder
    ("name", "wrong-type"), ("cache_dir", "wrong-type"),
}


def _hint(owner: type, name: str):
    return typing.get_type_hints(owner)[name]


def _base(hint):
    """(base type, optional) of a field's declared type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), type(None) in typing.get_args(hint)
    return hint, False


def _values(hint) -> dict[str, str]:
    base, _ = _base(hint)
    if typing.get_origin(base) is tuple:
        inner = typing.get_args(base)[0]
        n = 1 if typing.get_args(base)[-1] is Ellipsis else len(typing.get_args(base))
        if inner is str:
            return {"empty": "", "wrong-type": ",".join(["1e30"] * n)}
        return {kind: ",".join([v] * n) if v else "" for kind, v in NUMBER_VALUES.items()}
    if base is bool:
        return BOOL_VALUES
    if base is int:
        return INT_VALUES
    if base is float:
        return NUMBER_VALUES
    return TEXT_VALUES


def _walk(cfg, prefix=""):
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from _walk(value, key + ".")
        else:
            yield key, _hint(type(cfg), f.name)


def _allowed(key: str, kind: str) -> bool:
    if key in DERIVED_KEYS:
        return False
    return any(key == k or key.endswith("." + k) for k, want in ALLOWED if want == kind)


def _default(scenario: str, key: str):
    value = load(scenario).default_config()
    for part in key.split("."):
        value = getattr(value, part)
    return value


def cases():
    out, seen = [], set()
    for name in SCENARIOS:
        for key, hint in _walk(load(name).default_config()):
            for kind, value in _values(hint).items():
                # The same key, type and default mean the same check in every scenario: one
                # case each; a scenario with its own default (or section type) gets its own.
                ident = (key, kind, repr(hint), repr(_default(name, key)))
                if ident in seen:
                    continue
                seen.add(ident)
                out.append(pytest.param(name, key, kind, value, id=f"{name}:{key}={kind}"))
    return out


CASES = cases()


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def test_the_walk_covers_every_field_and_kind():
    keys = {c.values[1] for c in CASES}
    assert "world.ofdma.bs_noise_figure_db" in keys and "pretrain.checkpoint" in keys
    assert {c.values[2] for c in CASES} == set(KINDS)
    assert len(CASES) > 500, len(CASES)


@pytest.mark.parametrize("scenario, key, kind, value", CASES)
def test_bad_value_of_every_field(scenario, key, kind, value, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SFLSIM_CACHE", str(tmp_path / "cache"))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        status = main(["run", scenario, "--set", f"{key}={value}", "--out", "out", "--dry-run"])
    except _Timeout:
        pytest.fail(f"{key}={value!r}: validation took over {CASE_SECONDS} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    captured = capsys.readouterr()
    assert not any(Path(tmp_path).iterdir()), f"{key}={value!r} created {list(tmp_path.iterdir())}"
    lines = captured.err.strip().splitlines()
    if _allowed(key, kind) and status == 0:
        return
    # A bad kind must be refused; an allowed one may still be refused by a cross-field check
    # (an empty num_heads means the model's default, which may not divide embed_dim), cleanly.
    assert status == 2, (key, value, captured.err)
    assert len(lines) == 1 and lines[0].startswith("sflsim: error: "), captured.err
    assert "Traceback" not in captured.err
    leaf = key.rsplit(".", 1)[-1]
    assert leaf in lines[0] or key in lines[0], lines[0]
