"""``sflsim reproduce st-sflora``: the ST-SFLora paper's comparison as this simulator makes it.

Two sweeps of the default paper-style cell, both with seeds as an axis: every policy of the
paper's comparison (``DIR/policies/policy=<p>/seed=<n>``), and ST-SFLora over a few deadlines
(``DIR/deadlines/deadline_s=<d>/seed=<n>``) for the token-budget-vs-deadline curve. Both are
ordinary sweeps, run under one progress bar and resumed the way a sweep resumes: running the
same command again keeps the finished runs, continues the partial ones from their checkpoints
and rewrites ``DIR/RESULTS.md`` (:mod:`analysis.results_md`) from all of them. ``DIR`` must be
absent, empty or a reproduction's (:func:`check_reproduction_dir`): a user's folder is refused
before one byte of it changes.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from scenarios.overrides import ConfigError, parse_assignments
from scenarios.registry import SCENARIOS as REGISTERED, load
from scenarios.seeds import parse_seeds

COMPARISONS = Path(__file__).with_name("comparisons")  # <paper>.toml: policies, roles, reported


def comparison(paper: str) -> dict:
    """The comparison file of ``paper`` (policies, their roles in the claims, reported numbers)."""
    from scenarios.overrides import tomllib

    return tomllib.loads((COMPARISONS / f"{paper}.toml").read_text())

SCENARIOS = ("scenes-cell", "paper-cell", "static-cell")  # the first one registered is used


@dataclass(frozen=True)
class ReproducePlan:
    """What a reproduction runs.

    Attributes:
        policies: the policies compared (empty: the comparison file's).
        seeds: seeds of every policy (the intervals are over these).
        rounds: rounds of every run (None: the scenario's).
        deadlines_s: deadlines of the ST-SFLora token-budget sweep [s] (empty: no sweep).
        deadline_seeds: seeds of the deadline sweep.
        sets: further config values for every run (text, as ``--set``).
    """

    policies: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    rounds: int | None = None
    deadlines_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    deadline_seeds: tuple[int, ...] = (0, 1, 2)
    sets: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.rounds is not None and self.rounds <= 0:
            raise ConfigError(f"--rounds must be > 0, got {self.rounds}")
        if any(d <= 0 for d in self.deadlines_s):
            raise ConfigError(f"--deadlines must be > 0 s, got {self.deadlines_s}")


# Deadlines from below to above the ~0.3-0.5 s round the allocation settles at in paper-cell's
# radio, which scenes-cell shares (paper-cell's docstring), where the deadline rather than energy limits the tokens.
FULL = ReproducePlan(seeds=(0, 1, 2, 3, 4), deadlines_s=(0.25, 0.5, 1.0, 2.0, 4.0), deadline_seeds=(0, 1, 2))
QUICK = ReproducePlan(seeds=(0, 1, 2), rounds=3, deadlines_s=(0.5, 2.0), deadline_seeds=(0, 1),
                      sets={"learner.eval_samples": "500"})


def default_scenario() -> str:
    """The first registered of :data:`SCENARIOS`: ``scenes-cell`` (the default) in the package."""
    return next(s for s in SCENARIOS if s in REGISTERED)


WORKER_MEMORY_GIB = 2.0  # a paper-cell run peaks at 1.3 GB resident (measured, 1 thread)


def default_workers() -> int:
    """One worker per core, but no more than the free memory holds at
    :data:`WORKER_MEMORY_GIB` each (where the OS reports it)."""
    cores = os.cpu_count() or 1
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return cores
    return max(1, min(cores, int(free // (WORKER_MEMORY_GIB * 2**30))))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sflsim reproduce``."""
    p.add_argument("paper", choices=sorted(f.stem for f in COMPARISONS.glob("*.toml")),
                   help="the comparison to re-make")
    p.add_argument("--out", required=True, help="directory of the runs, figures and RESULTS.md")
    p.add_argument("--quick", action="store_true", help="3 seeds, 3 rounds, 2 deadlines, 500 evaluation images (a few minutes)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change a config value of every run (e.g. a smaller model)")
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="seeds instead of the plan's, e.g. 0-4")
    p.add_argument("--rounds", type=int, default=None, help="rounds instead of the plan's")
    p.add_argument("--policies", default=None, metavar="P1,P2",
                   help="only these policies (a smaller reproduction)")
    p.add_argument("--deadlines", default=None, metavar="D1,D2",
                   help="deadlines [s] of the token-budget sweep instead of the plan's ('' : none)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="parallel local worker processes (default: one per core, one torch thread "
                        f"each, at most one per {WORKER_MEMORY_GIB:g} GiB of free memory)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no per-run lines")


def plan_from_args(args: argparse.Namespace, roles: Mapping) -> ReproducePlan:
    """The quick or full plan for the comparison ``roles`` (its policies, its ``config``
    values) with the command line's changes."""
    base = QUICK if args.quick else FULL
    changes: dict = {"sets": {**base.sets, **roles.get("config", {}), **parse_assignments(args.sets)},
                     "policies": tuple(roles["policies"])}
    if args.seeds is not None:
        changes["seeds"] = parse_seeds(args.seeds)
        changes["deadline_seeds"] = changes["seeds"][:len(base.deadline_seeds)]
    if args.rounds is not None:
        changes["rounds"] = args.rounds
    if args.policies is not None:
        changes["policies"] = tuple(p.strip() for p in args.policies.split(",") if p.strip())
        if not changes["policies"]:
            raise ConfigError("--policies needs at least one policy")
    if args.deadlines is not None:
        try:
            changes["deadlines_s"] = tuple(float(d) for d in args.deadlines.split(",") if d.strip())
        except ValueError:
            raise ConfigError(f"--deadlines expects numbers like 1,2,4, got {args.deadlines!r}") from None
    return dataclasses.replace(base, **changes)


def reproduce_command(args: argparse.Namespace) -> int:
    """Run (or continue) the reproduction into ``args.out`` and write its RESULTS.md."""
    from analysis.results_md import write_results
    from scenarios.runner import resolve
    from scenarios.sweep import execute, plan

    check_reproduction_dir(Path(args.out))
    start, load_start = time.perf_counter(), os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    roles = comparison(args.paper)
    the_plan = plan_from_args(args, roles)
    scenario = load(default_scenario())
    out = Path(args.out)
    sets = dict(the_plan.sets)
    if the_plan.rounds is not None and "rounds" not in parse_assignments(args.sets):
        sets["rounds"] = str(the_plan.rounds)  # the plan's rounds, unless --set rounds= says
    if "policy" in sets or "seed" in sets:
        raise ConfigError("reproduce chooses policy and seed itself; use --policies and --seeds")
    jobs = plan(scenario, sets, None, None, {"policy": list(the_plan.policies)}, out / "policies",
                seeds=the_plan.seeds, resume=True)
    n_policy = len(jobs)
    # The deadline sweep reuses the ST-SFLora policy runs at the scenario's own deadline.
    default_deadline = resolve(scenario, sets).deadline_s
    me = roles["proposed"]
    reused = [j.run_dir for j in jobs if j.sweep.get("policy") == me
              and int(j.sweep["seed"]) in the_plan.deadline_seeds]
    others = [d for d in the_plan.deadlines_s if d != default_deadline]
    if the_plan.deadlines_s and reused:
        if others:
            jobs += plan(scenario, {**sets, "policy": me}, None, None,
                         {"deadline_s": [f"{d:g}" for d in others]}, out / "deadlines",
                         seeds=the_plan.deadline_seeds, resume=True)
        if default_deadline not in the_plan.deadlines_s:
            reused = []
    _pretrain_once(scenario, sets, args.quiet)
    already = sum(j.finished for j in jobs)
    # Logged before the runs start, completed after: an invocation that is killed stays in the
    # log without a wall time, and RESULTS.md says so.
    _, entry = _log_invocation(out, {"started": started, "runs_found_finished": already})
    execute(scenario, jobs, workers=args.workers, resume=True, quiet=args.quiet, desc="reproduce")
    wall_s = time.perf_counter() - start
    load_end = os.getloadavg()
    invocations, _ = _log_invocation(out, {
        "started": started, "wall_s": round(wall_s, 1), "runs_run": len(jobs) - already,
        "runs_found_finished": already, "workers": args.workers, "cores": os.cpu_count(),
        "load_start": round(load_start[0], 2), "load_end": round(load_end[0], 2)}, entry)
    command = f"sflsim reproduce {args.paper}" + (" --quick" if args.quick else "")
    how = {
        "version": ("QUICK (`--quick`: fewer seeds, rounds and deadlines; intervals are wide)"
                    if args.quick else "full"),
        "made by": f"`{command}` (scenario `{scenario.name}`, {len(jobs)} runs: "
                   f"{n_policy} policy runs, {len(jobs) - n_policy} more ST-SFLora runs at other "
                   f"deadlines than the scenario's {default_deadline:g} s)",
        "seeds": f"{', '.join(map(str, the_plan.seeds))} (deadline sweep: "
                 f"{', '.join(map(str, the_plan.deadline_seeds))})",
        **_time_lines(invocations),
        "config changes": ", ".join(f"{k}={v}" for k, v in sets.items()) or "none (defaults)",
    }
    deadline_dirs = [j.run_dir for j in jobs[n_policy:]] + reused if the_plan.deadlines_s else []
    path = write_results(out, [j.run_dir for j in jobs[:n_policy]], deadline_dirs, how, roles)
    print(f"wrote {path} ({wall_s / 60:.1f} min)")
    return 0


#: What a reproduction writes at the top of its folder.
REPRODUCTION_NAMES = frozenset({"policies", "deadlines", "figures", "RESULTS.md", "invocations.json"})


def check_reproduction_dir(out: Path) -> None:
    """``out`` is absent, empty, or holds only what a reproduction writes (and the atomic
    writer's temporary files of those); writes nothing.

    Raises:
        ConfigError: one line naming what else is there.
    """
    from scenarios.runcheck import entries, temp_of

    if not out.is_dir():
        return
    foreign = [n for n in entries(out) if not (n in REPRODUCTION_NAMES and not (out / n).is_symlink())
               and not temp_of(n, REPRODUCTION_NAMES)]
    if foreign:
        raise ConfigError(f"--out {out} is not empty and is not a reproduction directory "
                          f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                          f"nothing was written: choose another --out")


def _log_invocation(out: Path, entry: dict, index: int | None = None) -> tuple[list[dict], int]:
    """Record an invocation in ``out/invocations.json`` (atomically): append ``entry``, or with
    ``index`` replace that entry (its completion). Returns every entry and ``entry``'s index."""
    from analysis.files import atomic_write_text

    path = out / "invocations.json"
    out.mkdir(parents=True, exist_ok=True)
    from analysis.files import read_regular_bytes

    log = json.loads(read_regular_bytes(path)) if os.path.lexists(path) else []
    if index is None:
        log.append(entry)
        index = len(log) - 1
    else:
        log[index] = entry
    atomic_write_text(path, json.dumps(log, indent=1) + "\n")
    return log, index


def _time_lines(invocations: list[dict]) -> dict[str, str]:
    """The wall-time and load lines of RESULTS.md: over every invocation that ran runs."""
    interrupted = sum("wall_s" not in i for i in invocations)
    done = [i for i in invocations if "wall_s" in i]
    ran = [i for i in done if i["runs_run"]] or done[-1:]
    total = sum(i["wall_s"] for i in ran)
    each = "; ".join(f"{i['started']}: {i['runs_run']} runs in {i['wall_s'] / 60:.1f} min, "
                     f"{i['workers']} worker(s) on {i['cores']} cores, 1-minute load "
                     f"{i['load_start']:.2f} at the start, {i['load_end']:.2f} at the end" for i in ran)
    if interrupted:
        each += (f"; plus {interrupted} interrupted invocation(s) whose time is not known "
                 f"(their finished runs and checkpoints were kept)")
    if len(ran) == 1:
        return {"wall time": f"{total / 60:.1f} min ({each})",
                "machine load": "the 1-minute load average above counts this job's own workers "
                                "(a quiet machine running the reproduction alone shows about one "
                                "per worker)"}
    return {"wall time": f"{total / 60:.1f} min in {len(ran)} invocations that ran runs ({each})",
            "machine load": "the 1-minute load averages above count this job's own workers"}


def _pretrain_once(scenario, sets: Mapping[str, str], quiet: bool) -> None:
    """Make (or find cached) the backbone every run shares before the runs start in parallel."""
    from scenarios.base import backbone
    from scenarios.runner import resolve

    cfg = resolve(scenario, sets)
    backbone(cfg, status=(lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr)))


__all__ = ["comparison", "ReproducePlan", "FULL", "QUICK", "plan_from_args", "reproduce_command",
           "default_scenario", "default_workers"]
