"""Seeds as an axis of runs and sweeps: ``--seeds 0,1,2`` or ``--seeds 0-9``.

A configuration run at several seeds gives independent replicates (each seed spawns its own
world, data split and learner streams), from which :mod:`analysis.stats` makes intervals. Each
replicate is an ordinary run in its own directory ``<dir>/seed=<n>``, made exactly as the same
run made alone with ``--seed n``; the seed directory name is the only thing the axis adds.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from scenarios.overrides import ConfigError

SEED_KEY = "seed"
#: Most runs one command may plan (seeds x grid points); each is checked before any starts.
MAX_RUNS = 1000
_PART = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def parse_seeds(text: str, option: str = "--seeds") -> tuple[int, ...]:
    """``"0,1,2"``, ``"0-9"`` or a mix (``"0-2,7"``) -> the seeds, in the order given.

    Raises:
        ConfigError: empty text, a value that is not a non-negative integer, a range whose end
            is below its start, a seed given twice, or more than :data:`MAX_RUNS` seeds (one
            line naming ``option`` and the value).
    """
    ranges: list[tuple[int, int]] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        match = _PART.fullmatch(part)
        if match is None:
            raise ConfigError(f"{option}: {part!r} is not a seed or a range like 0-9 (ASCII digits)")
        lo = int(match[1])
        hi = int(match[2]) if match[2] is not None else lo
        if hi < lo:
            raise ConfigError(f"{option}: {part!r} must be a non-negative seed or a range a-b with a <= b")
        ranges.append((lo, hi))
    # Counted before any range is expanded: 0-99999999999999 is refused at once.
    count = sum(hi - lo + 1 for lo, hi in ranges)
    if count > MAX_RUNS:
        raise ConfigError(f"{option} {text}: {count} seeds, more than the {MAX_RUNS} runs one command "
                          f"may plan; split it into several commands")
    seeds: list[int] = []
    seen: set[int] = set()
    for lo, hi in ranges:
        for seed in range(lo, hi + 1):
            if seed in seen:
                raise ConfigError(f"{option}: seed {seed} given twice in {text!r}")
            seen.add(seed)
            seeds.append(seed)
    if not seeds:
        raise ConfigError(f"{option} needs at least one seed, e.g. {option} 0,1,2 or {option} 0-4")
    return tuple(seeds)


def check_seed_options(seed: int | None, seeds: Sequence[int] | None,
                       grid: Mapping[str, Sequence[str]] | None = None,
                       values: Mapping[str, object] | None = None) -> None:
    """Refuse the combinations that would run a seed twice or ambiguously.

    Args:
        seed: ``--seed``; seeds: ``--seeds``; grid: ``--grid`` axes; values: ``--set`` and
            ``--config`` values.

    Raises:
        ConfigError: ``--seed`` (or a ``seed`` value set otherwise) together with ``--seeds``,
            or a grid over ``seed`` together with ``--seeds``.
    """
    if grid and SEED_KEY in grid and (seed is not None or (values and SEED_KEY in values)):
        given = f"--seed {seed}" if seed is not None else f"seed={values[SEED_KEY]}"
        raise ConfigError(f"--grid seed=... and {given} cannot be combined; give the seeds in the grid only")
    if seeds is None:
        return
    if seed is not None:
        raise ConfigError(f"--seed {seed} and --seeds cannot be combined; give the seeds in --seeds only")
    if values and SEED_KEY in values:
        raise ConfigError(f"seed={values[SEED_KEY]} (--set or --config) and --seeds cannot be combined")
    if grid and SEED_KEY in grid:
        raise ConfigError("--grid seed=... and --seeds cannot be combined; give the seeds in --seeds only")


def seed_dir(base: str | Path, seed: int) -> Path:
    """The run directory of ``seed`` under ``base``: ``base/seed=<seed>``."""
    return Path(base) / f"{SEED_KEY}={seed}"


__all__ = ["SEED_KEY", "MAX_RUNS", "parse_seeds", "check_seed_options", "seed_dir"]
