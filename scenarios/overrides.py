"""Changing a scenario config from the command line or a TOML file.

A scenario config is a tree of frozen dataclasses. ``--set world.cell_radius_m=300`` names a
field by its dotted path; the text is converted to the field's declared type and the new tree is
built with :func:`dataclasses.replace`, so every dataclass re-validates itself in
``__post_init__``. Errors are :class:`ConfigError` with one line naming the key, the value and
the valid choices (for an unknown key, the closest valid ones).

The chosen policy's parameters are one group named after the policy (``tsflora.tokens``),
resolved against that policy's ``params_type``; a parameter of a policy that is not chosen is
refused, naming the one that is.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
import types
import typing
from typing import Any, Iterable, Mapping


class ConfigError(ValueError):
    """A config key or value that cannot be used; the message is one line for the user."""


class _UnknownKey(ConfigError):
    """A key no field of the config has (the message is completed with the closest keys)."""


#: The ScenarioConfig field holding the chosen policy's parameters (scenarios.config.POLICY_PARAMS).
PARAMS = "policy_params"


def _group_name(cfg: Any) -> str | None:
    """The key of ``cfg``'s policy parameter group (the policy's name), or None if it has none."""
    if PARAMS not in {f.name for f in dataclasses.fields(cfg)} or getattr(cfg, PARAMS) is None:
        return None
    from scenarios.policies import policy_class

    return policy_class(cfg.policy).name


def field_paths(cfg: Any, prefix: str = "") -> list[str]:
    """All settable dotted keys of a dataclass tree, in declaration order (the policy's
    parameters under the policy's name)."""
    keys: list[str] = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        name = _group_name(cfg) if f.name == PARAMS else f.name
        if name is None:
            continue
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(value):
            keys.extend(field_paths(value, prefix=path + "."))
        else:
            keys.append(path)
    return keys


def key_info(cfg: Any, key: str) -> tuple[Any, Mapping[str, Any]]:
    """``(value, field metadata)`` of the dotted ``key`` of :func:`field_paths`.

    A scenario's Config redeclares fields with new defaults: the metadata comes from the first
    class of the MRO that has any.
    """
    value: Any = cfg
    meta: Mapping[str, Any] = {}
    for part in key.split("."):
        name = PARAMS if dataclasses.is_dataclass(value) and part == _group_name(value) else part
        meta = next((c.__dataclass_fields__[name].metadata for c in type(value).__mro__
                     if name in getattr(c, "__dataclass_fields__", {})
                     and c.__dataclass_fields__[name].metadata), {})
        value = getattr(value, name)
    return value, meta


def to_dict(cfg: Any) -> dict:
    """A dataclass tree as plain JSON-able dicts (tuples become lists); the policy's
    parameters under the policy's name (``{"<policy>": {"<param>": ...}}``), none if it has none."""
    out = dataclasses.asdict(cfg)
    if PARAMS in out:
        params, group = out.pop(PARAMS), _group_name(cfg)
        if group is not None:
            out[group] = params
    return out


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, str]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} expects key=value, got {item!r}")
        out[key] = value.strip()
    return out


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML config file into flat dotted keys (tables nest: ``[world]`` -> ``world.x``)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path} is a directory; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"--config {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path} is not a text (TOML) file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path} is not valid TOML: {exc}") from None

    return flatten(data)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts (a TOML file, a ``config.json`` record) as flat dotted keys: ``{"world":
    {"x": 1}}`` -> ``{"world.x": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """Return ``cfg`` with the dotted-key ``overrides`` applied (values: text or TOML values).

    Every key is looked up and converted first; then each dataclass of the tree is rebuilt
    once with all of its changes, so its ``__post_init__`` sees them together and the order
    of the keys does not matter (``pretrain.source=file`` with ``pretrain.checkpoint=F``
    is accepted either way round).
    """
    tree: dict[str, Any] = {}
    policy, group, params = _policy_group(cfg, overrides)
    group_keys: dict[str, Any] = {}
    for key, raw in overrides.items():
        parts = key.split(".")
        try:
            if group is not None and parts[0] == group:
                if len(parts) == 1:
                    example = dataclasses.fields(params)[0].name
                    raise ConfigError(f"{key!r} is a group of settings; set one of its keys, e.g. {key}.{example}=...")
                group_keys[key] = (_convert_key(params, parts[1:], raw, key), raw)
                continue
            if parts[0] == PARAMS:
                raise _UnknownKey(key)
            value = _convert_key(cfg, parts, raw, key)
        except _UnknownKey:
            _refuse_unknown(cfg, policy, key, field_paths(params, f"{group}.") if group else [])
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = (key, raw, value)
    if params is not None and (group_keys or params is not getattr(cfg, PARAMS)):
        # the chosen policy's parameters, rebuilt once with all of their keys (or its defaults)
        params_tree: dict[str, Any] = {}
        for key, (value, raw) in group_keys.items():
            node = params_tree
            parts = key.split(".")[1:]
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = (key, raw, value)
        tree[PARAMS] = (group, "", _rebuild(params, params_tree) if params_tree else params)
    elif policy is not None and params is None and "policy" in overrides:
        tree[PARAMS] = ("policy", overrides["policy"], None)  # a policy without parameters
    return _rebuild(cfg, tree)


def _policy_group(cfg: Any, overrides: Mapping[str, Any]) -> tuple[Any, str | None, Any]:
    """``(policy class, its group key, the parameters to start from)`` after ``overrides``.

    The parameters start from ``cfg``'s when the policy stays the same, from the new policy's
    defaults when it changes; ``(None, None, None)`` for a config without policy parameters.
    """
    if PARAMS not in {f.name for f in dataclasses.fields(cfg)}:
        return None, None, None
    from scenarios.policies import policy_class

    ref = overrides.get("policy", cfg.policy)
    try:
        policy = policy_class(convert(ref, str, "policy"))
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"policy={_show(ref)}: {_one_line(exc)}") from None
    if policy.params_type is None:
        return policy, None, None
    current = getattr(cfg, PARAMS)
    params = current if type(current) is policy.params_type else policy.params_type()
    return policy, policy.name, params


def _refuse_unknown(cfg: Any, policy: Any, key: str, group_keys: list[str]) -> None:
    """Raise the one-line error for an unknown ``key``: a parameter of a policy that is not
    chosen, or the closest valid keys (``group_keys``: those of the chosen policy's group)."""
    head = key.split(".", 1)[0]
    if "." in key and policy is not None:
        from scenarios.policies import names, policy_class

        if head in names() and head != policy.name:
            other = policy_class(head)
            what = "takes no parameters" if other.params_type is None else "is not the chosen policy"
            raise ConfigError(f"unknown key {key!r}: policy {head} {what} (policy={policy.name}); "
                              f"set policy={head} to use its parameters")
        if head == policy.name and policy.params_type is None:
            raise ConfigError(f"unknown key {key!r}: policy {head} takes no parameters")
    valid = [k for k in field_paths(cfg) if k.split(".", 1)[0] != _group_name(cfg)] + group_keys
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.8)
    leaf = key.rsplit(".", 1)[-1]
    close += [k for k in valid if k.rsplit(".", 1)[-1] == leaf and k not in close]
    hint = f"did you mean {' or '.join(close[:3])}?" if close else "sflsim show lists every key"
    raise ConfigError(f"unknown key {key!r}; {hint}")


def _convert_key(cfg: Any, parts: list[str], raw: Any, full_key: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cfg)}
    head = parts[0]
    if head not in names or head == PARAMS:
        raise _UnknownKey(full_key)
    current = getattr(cfg, head)
    if len(parts) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"unknown key {full_key!r}: {head!r} has no sub-keys")
        return _convert_key(current, parts[1:], raw, full_key)
    if dataclasses.is_dataclass(current):
        raise ConfigError(
            f"{full_key!r} is a group of settings; set one of its keys, "
            f"e.g. {full_key}.{dataclasses.fields(current)[0].name}=..."
        )
    hint = typing.get_type_hints(type(cfg))[head]
    return convert(raw, hint, full_key)


def _leaves(tree: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for node in tree.values():
        out += _leaves(node) if isinstance(node, dict) else [(node[0], node[1])]
    return out


def _rebuild(cfg: Any, tree: Mapping[str, Any]) -> Any:
    changes = {name: _rebuild(getattr(cfg, name), node) if isinstance(node, dict) else node[2]
               for name, node in tree.items()}
    try:
        return dataclasses.replace(cfg, **changes)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{_culprit(_leaves(tree), str(exc))}{_one_line(exc)}") from None


def _culprit(leaves: list[tuple[str, Any]], message: str) -> str:
    """``key=value: `` of the override the message is about (the only one, or the one it names)."""
    named = [(k, r) for k, r in leaves if re.search(rf"\b{re.escape(k.rsplit('.', 1)[-1])}\b", message)]
    pick = leaves if len(leaves) == 1 else named[:1] if len(named) >= 1 else []
    return "".join(f"{k}={_show(r)}: " for k, r in pick)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _show(raw: Any) -> str:
    return raw if isinstance(raw, str) else repr(raw)


#: An integer as text: an optional sign and ASCII digits (no "_", no other scripts' digits).
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
#: A number as text: decimal or exponent notation in ASCII, or inf / nan (refused later).
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _plain_digits_hint(text: str) -> str:
    """Why text Python itself would read as a number is refused ("1_0", "３")."""
    try:
        float(text.strip())
    except ValueError:
        return ""
    return " (plain ASCII digits only: no '_', no other scripts' digits)"


def ascii_int(text: str) -> int:
    """An argparse ``type``: an integer in ASCII digits (``int`` also takes "1_0" and "３")."""
    if not _INT_TEXT.fullmatch(str(text).strip()):
        import argparse

        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}{_plain_digits_hint(str(text))}")
    return int(text)


def convert(raw: Any, hint: Any, key: str, nullable: bool = False) -> Any:
    """Convert text (or a TOML value) to the type ``hint``; ConfigError naming ``key`` if not.

    ``nullable``: the field also takes ``none`` (an ``Optional`` hint), and its error says so.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    alt = " or none" if nullable else ""
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        optional = type(None) in args
        if optional and (raw is None or (isinstance(raw, str) and raw.lower() in {"none", "null", ""})):
            return None
        errors = []
        for option in non_none:
            try:
                return convert(raw, option, key, nullable=optional and len(non_none) == 1)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: cannot use {_show(raw)!s}")
    if origin is typing.Literal:
        text, names = str(raw), [str(a) for a in args]
        if text not in names:
            raise ConfigError(f"{key}: {text!r} is not one of {', '.join(names + (['none'] if nullable else []))}")
        return args[names.index(text)]
    if origin is tuple:
        items = raw if isinstance(raw, (list, tuple)) else [s for s in str(raw).split(",") if s.strip() != ""]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], key) for v in items)
        if len(items) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} comma-separated values{alt}, got {_show(raw)!r}")
        return tuple(convert(v, a, key) for v, a in zip(items, args))
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{key}: expected true, false or none, got {_show(raw)!r}" if nullable
                          else f"{key}: expected true or false, got {_show(raw)!r}")
    if hint is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: expected an integer{alt}, got {raw!r}")
        if isinstance(raw, int):
            return raw
        text = str(raw).strip()
        # int() also takes "1_000" and non-ASCII digits ("３"); a config value is plain digits.
        if not _INT_TEXT.fullmatch(text):
            raise ConfigError(f"{key}: expected an integer{alt}, got {_show(raw)!r}{_plain_digits_hint(text)}")
        return int(text)
    if hint is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: expected a number{alt}, got {raw!r}")
        try:
            if not isinstance(raw, (int, float)) and not _FLOAT_TEXT.fullmatch(str(raw).strip()):
                raise ValueError(raw)  # float() takes "1_0" and non-ASCII digits; we do not
            value = float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip())
        except ValueError:
            hint_text = _plain_digits_hint(str(raw))
            raise ConfigError(f"{key}: expected a number{alt}, got {_show(raw)!r}{hint_text}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number{alt}, got {_show(raw)!r}")
        return value
    if hint is str:
        if isinstance(raw, (dict, list)):
            raise ConfigError(f"{key}: expected text{alt}, got {raw!r}")
        return str(raw)
    raise ConfigError(f"{key}: cannot be set from the command line (type {hint})")
