"""The one place that maps names to policies, and loading a user's policy from a file.

Shipped policies register themselves where they are defined::

    @register_policy
    class MyPolicy(Policy):
        name = "my-policy"
        ...

Every module of this package is imported on first lookup, so a new file here is all a new
shipped policy needs. A user's policy is a class in any Python file, named as
``path/to/file.py:ClassName`` wherever a policy name is accepted (``--set policy=...``).
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

from learning.strategies import STRATEGIES
from scenarios.policies.contract import Policy

_REGISTRY: dict[str, type[Policy]] = {}
_FILES: dict[str, type[Policy]] = {}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: add ``cls`` to the registry under ``cls.name``."""
    _check(cls, cls.__qualname__)
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"policy name {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _check(cls: object, where: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise ValueError(f"{where} must be a subclass of scenarios.policies.Policy")
    for attr in ("name", "label", "description"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise ValueError(f"{where} must set {attr} (a non-empty string)")
    if cls.strategy not in STRATEGIES:
        raise ValueError(f"{where}.strategy must be one of {tuple(STRATEGIES)}, got {cls.strategy!r}")
    if cls.schedule not in ("parallel", "sequential"):
        raise ValueError(f"{where}.schedule must be 'parallel' or 'sequential', got {cls.schedule!r}")
    if not _NAME.fullmatch(cls.name):
        raise ValueError(f"{where}.name must be lower-case letters, digits, '-' or '_' (a config key), "
                         f"got {cls.name!r}")
    kind = cls.params_type
    if kind is not None:
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen):
            raise ValueError(f"{where}.params_type must be a frozen dataclass, got {kind!r}")
        try:
            kind()
        except Exception as exc:  # noqa: BLE001 - any failure is the policy's to fix
            raise ValueError(f"{where}.params_type must build with its defaults: "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None


_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def _load_shipped() -> None:
    package = importlib.import_module("scenarios.policies")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in ("contract", "registry"):
            importlib.import_module(f"scenarios.policies.{info.name}")


def names() -> list[str]:
    """Registered policy names, in the order their modules were imported (alphabetical)."""
    _load_shipped()
    return sorted(_REGISTRY)


def default_policy() -> str:
    """The name of the policy marked ``default = True`` (exactly one shipped policy is)."""
    marked = [cls.name for cls in available() if cls.default]
    if len(marked) != 1:
        raise ValueError(f"exactly one registered policy must set default = True, got {marked}")
    return marked[0]


def available() -> list[type[Policy]]:
    """Registered policy classes, sorted by name."""
    return [_REGISTRY[n] for n in names()]


def policy_class(ref: str) -> type[Policy]:
    """The policy class of a registered name or of ``path/to/file.py:ClassName``.

    Raises:
        ValueError: unknown name, missing file or class, or a class that is not a policy.
    """
    if ":" in ref and ref.split(":", 1)[0].endswith(".py"):
        return _from_file(ref)
    _load_shipped()
    try:
        return _REGISTRY[ref]
    except KeyError:
        raise ValueError(
            f"policy must be one of {', '.join(names())} or path/to/file.py:ClassName, got {ref!r}"
        ) from None


def _from_file(ref: str) -> type[Policy]:
    if ref in _FILES:
        return _FILES[ref]
    path_text, class_name = ref.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"policy file not found: {path_text}")
    from scenarios.registry import import_file

    module = import_file(path, "policy")
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"policy file {path_text} has no class {class_name!r}")
    _check(cls, ref)
    _FILES[ref] = cls
    return cls
