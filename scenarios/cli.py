"""``sflsim``: the command line.

    sflsim list
    sflsim show [SCENARIO|FILE] [--set key=value ...]
    sflsim run [SCENARIO|FILE] [--set key=value ...] [--config file.toml] [--seed N] [--out DIR] [--resume]
    sflsim run ... --seeds 0-4                      (one run directory per seed: DIR/seed=N)
    sflsim sweep SCENARIO --grid key=v1,v2 ... [--seeds 0,1,2] [--workers N] [--ray-address ADDR] --out DIR
    sflsim pretrain [SCENARIO|FILE] [--set key=value ...]
    sflsim pretrain --recipe default --out FILE.safetensors [--public-samples N] [--epochs E]
    sflsim plot RUN_DIR [RUN_DIR ...] [--out DIR]
    sflsim compare RUN_DIR ... [--baseline NAME] [--target-accuracy A]
    sflsim reproduce st-sflora --out DIR [--quick]

Bad input gets one line on stderr naming what is wrong and the valid choices, exit status 2,
and no run directory.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import Sequence

# OpenMP threads that spin while waiting make small torch ops ~100x slower as soon as another
# process holds a core; passive waiting costs nothing measurable here. Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from scenarios.overrides import ascii_int  # noqa: E402  (stdlib only: no torch yet)

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2 (argparse prints usage too)
        self.exit(EXIT_USAGE, f"sflsim: error: {message}\n")


def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default=None,
                   help="a scenario name (see `sflsim list`) or the path of a scenario .py file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change a config value, e.g. --set devices=20 --set world.cell_radius_m=300")
    p.add_argument("--config", dest="config_file", default=None, metavar="FILE.toml",
                   help="read config values from a TOML file (then --set applies on top)")
    p.add_argument("--seed", type=ascii_int, default=None, help="the run's seed (same seed, same bytes)")
    p.add_argument("--threads", type=ascii_int, default=None,
                   help="torch CPU threads (default: all cores; results are reproducible for a fixed value)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sflsim", description="Split federated LoRA fine-tuning over a simulated wireless cell.")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (may be given anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="the shipped scenarios (or, with --policies, the registered policies)")
    p.add_argument("--policies", action="store_true", help="list the policies with description and reference")

    p = sub.add_parser("show", help="print a scenario's resolved config as TOML-like keys")
    _add_config_options(p)

    p = sub.add_parser("run", help="run a scenario into a run directory")
    _add_config_options(p)
    p.add_argument("--out", default=None, help="run directory (default runs/<scenario>-<policy>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last round")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config, the files it names and --out, write nothing, and stop")
    _add_seeds_option(p)

    p = sub.add_parser("sweep", help="run a grid of configs (in parallel with --workers or Ray)")
    _add_config_options(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a key and the values to sweep; several --grid make a product")
    _add_seeds_option(p)
    p.add_argument("--workers", type=ascii_int, default=1,
                   help="parallel local worker processes (with --ray-address local: its CPUs)")
    p.add_argument("--ray-address", default=None,
                   help="run on Ray: 'local' starts one here, 'auto' or HOST:PORT joins a running "
                        "cluster (needs sflsim[ray])")
    p.add_argument("--out", required=True, help="sweep directory (one run directory per grid point)")
    p.add_argument("--resume", action="store_true", help="continue unfinished runs of the sweep")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no per-run lines")

    p = sub.add_parser("pretrain", help="pretrain (and cache) the backbone a scenario uses, or run a recipe")
    _add_config_options(p)
    p.add_argument("--recipe", default=None,
                   help="train a named backbone recipe (e.g. 'default') into --out instead")
    p.add_argument("--out", default=None, metavar="FILE.safetensors", help="weights file of --recipe")
    p.add_argument("--public-samples", type=ascii_int, default=None,
                   help="with --recipe: a smaller public split (a quick, smaller run; recorded in the file)")
    p.add_argument("--epochs", type=float, default=None, help="with --recipe: other epoch count (recorded)")
    p.add_argument("--eval-samples", type=ascii_int, default=None, help="with --recipe: test images scored")
    p.add_argument("--data-root", default=None, help="with --recipe: folder holding the data set")

    p = sub.add_parser("plot", help="figures and summary.md from run directories")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="where figures go (default RUN_DIR/figures for one run)")
    p.add_argument("--kind", choices=("runs", "token-curve", "token-maps", "decisions", "cells"), default="runs",
                   help="runs: every figure of the runs; token-curve: accuracy vs K from "
                        "bench/token_curve.py JSON files; token-maps: kept tokens of one run; decisions: "
                        "tokens, band and power against the gain; cells: SINR and handovers of a multi-cell run")

    p = sub.add_parser("compare", help="mean ± 95 %% interval over seeds per configuration, "
                                       "paired differences to a baseline")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run or sweep directories")
    p.add_argument("--baseline", default=None, metavar="NAME",
                   help="a configuration (policy name or label) to difference against, seed by seed")
    p.add_argument("--target-accuracy", type=float, default=None, metavar="A",
                   help="accuracy (fraction) for the time-to-target column (default: 90 %% of "
                        "the best configuration's mean final accuracy)")

    from scenarios.reproduce import add_arguments as add_reproduce_arguments

    add_reproduce_arguments(sub.add_parser("reproduce", help="re-make a paper's comparison: runs, "
                                                             "RESULTS.md, figures"))
    return parser


def _add_seeds_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="run once per seed, each in DIR/seed=N: 0,1,2 or 0-9 (not with --seed)")
    p.add_argument("--force", action="store_true",
                   help="run even when the config asks for more work than the stated bounds "
                        "(1e9 channel updates, 1e8 training or evaluation samples per run)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; every error is one line on stderr (``--debug``: the traceback too).

    Bad input (a value, a file, a place to write) exits with status 2; an error of the program
    itself with status 1, saying so.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SFLSIM_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        how = "run the same command again" if args.command == "reproduce" else "add --resume"
        print(f"sflsim: interrupted; to continue, {how}", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:  # bad input: a value, a file, a folder
        _report(exc, debug, "")
        return EXIT_USAGE
    except Exception as exc:  # a bug: still one line, and how to see more
        _report(exc, debug, f"internal error, {type(exc).__name__}: ",
                "" if debug else " (run again with --debug for the traceback)")
        return 1


def _report(exc: BaseException, debug: bool, prefix: str, suffix: str = "") -> None:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    print(f"sflsim: error: {prefix}{text or type(exc).__name__}{suffix}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        return _cmd_list(args.policies)
    if args.command == "compare":
        return _cmd_compare(args)
    if args.command == "reproduce":
        from scenarios.reproduce import reproduce_command

        return reproduce_command(args)
    if args.command in ("plot", "compare"):
        from analysis import cli as analysis_cli

        # token-curve and token-maps write one figure, so their --out may name a file
        if (args.command == "plot" and args.kind not in ("token-curve", "token-maps") and args.out is not None
                and os.path.exists(args.out) and not os.path.isdir(args.out)):
            raise ValueError(f"--out {args.out} exists and is not a directory (figures go into a directory)")
        if args.command == "plot" and args.kind == "token-curve":
            return analysis_cli.token_curve_command(args.runs, args.out)
        if args.command == "plot" and args.kind == "token-maps":
            return analysis_cli.token_maps_command(args.runs, args.out)
        if args.command == "plot" and args.kind == "decisions":
            return analysis_cli.decisions_command(args.runs, args.out)
        if args.command == "plot" and args.kind == "cells":
            return analysis_cli.cells_command(args.runs, args.out)
        if args.command == "plot":
            return analysis_cli.plot_command(args.runs, args.out)
        return analysis_cli.compare_command(args.runs)

    if getattr(args, "threads", None) is not None and args.threads <= 0:
        raise ValueError(f"--threads must be > 0, got {args.threads}")
    if args.command == "pretrain" and args.recipe is not None:
        return _cmd_pretrain_recipe(args)
    from scenarios.overrides import load_toml, parse_assignments
    from scenarios.ray_cluster import check_ray_address
    from scenarios.seeds import check_seed_options, parse_seeds

    # What needs no scenario is checked before the heavy imports (torch, timm): it fails fast.
    seeds = parse_seeds(args.seeds) if getattr(args, "seeds", None) is not None else None
    check_ray_address(getattr(args, "ray_address", None))
    sets = parse_assignments(args.sets)
    file_values = load_toml(args.config_file) if args.config_file else None
    if seeds is not None:
        check_seed_options(args.seed, seeds, None, {**(file_values or {}), **sets})
    from scenarios.registry import load
    from scenarios.runner import resolve

    scenario = load(args.scenario)
    cfg = resolve(scenario, sets, file_values, seed=args.seed)
    _set_threads(args.threads)
    if args.command == "show":
        return _cmd_show(cfg)
    if args.command == "pretrain":
        return _cmd_pretrain(cfg)
    if args.command == "run" and seeds is not None:
        return _cmd_run_seeds(scenario, cfg, sets, file_values, seeds, args)
    if args.command == "run":
        return _cmd_run(scenario, cfg, args)
    if args.command == "sweep":
        from scenarios.sweep import parse_grid, run_sweep

        if not args.grid and seeds is None:
            raise ValueError("sweep needs --grid KEY=V1,V2 or --seeds")
        grid = parse_grid(args.grid)
        return run_sweep(scenario, cfg, sets, file_values, args.seed, grid, args.out,
                         workers=args.workers, ray_address=args.ray_address, resume=args.resume,
                         seeds=seeds, quiet=args.quiet, force=args.force)
    raise AssertionError(args.command)


def _set_threads(threads: int | None) -> None:
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


def _cmd_list(policies: bool = False) -> int:
    from scenarios.registry import available

    if policies:
        from scenarios.policies import available as available_policies

        registered = available_policies()
        width = max(len(p.name) for p in registered)
        for p in registered:
            print(f"{p.name:<{width}}  {p.description}")
            if p.reference:
                print(f"{'':<{width}}  ({p.reference})")
            if p.params_type is not None:
                keys = ", ".join(f"{p.name}.{f.name}" for f in dataclasses.fields(p.params_type))
                print(f"{'':<{width}}  parameters: {keys}")
        return 0
    scenarios = available()
    width = max(len(s.name) for s in scenarios)
    for s in scenarios:
        print(f"{s.name:<{width}}  {s.description}")
    return 0


def _cmd_show(cfg) -> int:
    """Every key with its value, unit and help; the chosen policy's parameters under its name;
    keys that follow another (``DERIVED_KEYS``) are marked, since ``--set`` refuses them."""
    from scenarios.config import DERIVED_KEYS
    from scenarios.overrides import field_paths, key_info

    for key in field_paths(cfg):
        value, meta = key_info(cfg, key)
        unit = f"  [{meta['unit']}]" if meta.get("unit") else ""
        note = f"  # {meta['help']}" if meta.get("help") else ""
        if key in DERIVED_KEYS:
            note = f"  # derived: follows {DERIVED_KEYS[key]} (set {DERIVED_KEYS[key]} instead)"
        print(f"{key} = {value!r}{unit}{note}")
    return 0


def _cmd_pretrain(cfg) -> int:
    from scenarios.base import backbone

    backbone(cfg, status=lambda m: print(m, file=sys.stderr))
    return 0


def _cmd_pretrain_recipe(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from tqdm import tqdm

    from learning.recipes import get_recipe
    from scenarios.backbone import run_recipe

    if args.out is None:
        raise ValueError("--out is required with --recipe (the .safetensors file to write)")
    recipe = get_recipe(args.recipe)
    changes = {k: v for k, v in (("public_samples", args.public_samples), ("epochs", args.epochs),
                                 ("eval_samples", args.eval_samples)) if v is not None}
    if changes:
        recipe = dataclasses.replace(recipe, pretrain=dataclasses.replace(recipe.pretrain, **changes))
    if args.threads is not None:
        recipe = dataclasses.replace(recipe, threads=args.threads)
    bar = None

    def on_step(step: int, total: int, loss: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True,
                       desc=f"pretrain {recipe.name}", mininterval=2.0)
        bar.update(1)
        if step % 20 == 0 or step == total:
            bar.set_postfix_str(f"loss={loss:.3f}", refresh=False)

    summary = run_recipe(recipe, args.out, data_root=args.data_root, on_step=on_step)
    if bar is not None:
        bar.close()
    print(json.dumps(summary, sort_keys=True))
    return 0


def _cmd_run(scenario, cfg, args) -> int:
    from tqdm import tqdm

    from scenarios.progress import summary_table
    from scenarios.runner import execute, prepare, summary

    prepared = prepare(scenario, cfg, args.out, resume=args.resume, force=args.force)
    if args.dry_run:
        print(f"ok: {cfg.name}/{cfg.policy} would {'resume' if prepared.state else 'write'} {prepared.out_dir}")
        return 0
    bar = None

    def status(msg: str) -> None:
        print(msg, file=sys.stderr)

    def on_round(row: dict, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = tqdm(total=total, initial=row["round"], unit="round", file=sys.stderr,
                       dynamic_ncols=True, desc=f"{cfg.name}/{cfg.policy}")
        else:
            bar.update(1)
        acc = row["accuracy"]
        bar.set_postfix_str(
            f"acc={'-' if math.isnan(acc) else f'{acc:.3f}'} lat={row['latency_s']:.2f}s "
            f"E={row['energy_j']:.2f}J up={row['uplink_bits'] / 1e6:.1f}Mbit", refresh=True)

    result = execute(prepared, on_round=on_round, on_status=status)
    if bar is not None:
        bar.close()
    s = summary(result.rounds)
    print(summary_table(cfg, s))
    print(f"run directory: {result.out_dir}")
    return 0


def _cmd_run_seeds(scenario, cfg, sets, file_values, seeds, args) -> int:
    """``sflsim run --seeds``: one run per seed in ``OUT/seed=N``, each as if run alone."""
    from pathlib import Path

    from scenarios.sweep import run_sweep

    out = args.out or str(Path("runs") / f"{cfg.name}-{cfg.policy}-seeds")
    return run_sweep(scenario, cfg, sets, file_values, None, {}, out, resume=args.resume,
                     seeds=seeds, quiet=args.quiet, record_sweep=False, force=args.force)


def _cmd_compare(args: argparse.Namespace) -> int:
    """``sflsim compare``: runs grouped by configuration, mean ± interval over seeds."""
    from analysis.metrics import MissingDataError
    from analysis.tables import seed_compare_markdown
    from analysis.traces import NotARunError

    if args.target_accuracy is not None and not 0 < args.target_accuracy <= 1:
        raise ValueError(f"--target-accuracy must be in (0, 1], got {args.target_accuracy}")
    try:
        text = seed_compare_markdown(args.runs, baseline=args.baseline,
                                     target_accuracy=args.target_accuracy)
    except (NotARunError, MissingDataError) as exc:
        raise ValueError(str(exc)) from None
    print(text, end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
