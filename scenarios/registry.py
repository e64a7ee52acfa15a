"""Scenarios by name, or by the path of a user's own scenario file.

A scenario is a Python module with a frozen dataclass ``Config`` (a subclass of
:class:`scenarios.base.ScenarioConfig` with its own defaults) and, optionally, a
``build(config, status) -> CoSimulation`` function when it needs more than the standard wiring
of :func:`scenarios.base.build` (``status(message)`` reports progress, such as the backbone
being pretrained; the runner passes it as a keyword). The first line of the module docstring is its description.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from scenarios.config import ScenarioConfig
    from scenarios.cosim import CoSimulation

SCENARIOS: dict[str, str] = {
    "static-cell": "scenarios.static_cell",
    "pedestrians": "scenarios.pedestrians",
    "highway": "scenarios.highway",
    "dense-cell": "scenarios.dense_cell",
    "paper-cell": "scenarios.paper_cell",
    "paper-cell-100": "scenarios.paper_cell_100",
    "highway-corridor": "scenarios.highway_corridor",
    "urban-7": "scenarios.urban_7",
    "scenes-cell": "scenarios.scenes_cell",
    "scenes-cell-64": "scenarios.scenes_cell_64",
}
DEFAULT = "scenes-cell"


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: its name, one-line description, config class and build function."""

    name: str
    description: str
    config_class: type
    build: Callable[..., "CoSimulation"]
    source: str

    def default_config(self) -> "ScenarioConfig":
        return self.config_class()


def load(name_or_path: str | None) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path."""
    name_or_path = name_or_path or DEFAULT
    if name_or_path in SCENARIOS:
        module = importlib.import_module(SCENARIOS[name_or_path])
        return _from_module(module, name_or_path, SCENARIOS[name_or_path])
    path = Path(name_or_path)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise ValueError(f"scenario file not found: {name_or_path}")
        module = import_file(path)
        return _from_module(module, path.stem.replace("_", "-"), str(path))
    raise ValueError(
        f"unknown scenario {name_or_path!r}; choose one of {', '.join(SCENARIOS)} or give a .py file"
    )


def available() -> list[Scenario]:
    """The shipped scenarios, in the order of :data:`SCENARIOS`."""
    return [load(name) for name in SCENARIOS]


def import_file(path: Path, kind: str = "scenario") -> ModuleType:
    """Import a user's Python file as a module; ValueError in one line if it fails.

    Args:
        path: the ``.py`` file.
        kind: what it holds (``scenario``, ``policy``), for the module name and messages.
    """
    mod_name = f"sflsim_user_{kind}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{kind} file cannot be imported: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file: report it in one line
        del sys.modules[mod_name]
        raise ValueError(f"{kind} file {path} failed to import: {type(exc).__name__}: {exc}") from None
    return module


def _from_module(module: ModuleType, name: str, source: str) -> Scenario:
    from scenarios.base import ScenarioConfig, build as default_build

    config_class = getattr(module, "Config", None)
    if config_class is None or not dataclasses.is_dataclass(config_class) or not issubclass(
        config_class, ScenarioConfig
    ):
        raise ValueError(
            f"scenario {source} must define `Config`, a dataclass subclassing scenarios.base.ScenarioConfig"
        )
    doc = (module.__doc__ or "").strip().splitlines()
    description = doc[0] if doc else ""
    build = getattr(module, "build", default_build)
    return Scenario(name=name, description=description, config_class=config_class, build=build, source=source)
