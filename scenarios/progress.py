"""Progress of a sweep: one bar over its runs and one summary line per finished run; the
summary table of one run.

The bar counts runs (done / total), says how many are running and how many wait, and tqdm
estimates the time left from the rate of runs finished in this session (runs found finished
at the start count as done but not in the rate). Everything goes to standard error, so the
table a sweep prints on standard output stays clean; ``quiet`` silences all of it.
"""
from __future__ import annotations

import math
import sys
from typing import Mapping, TextIO


def summary_line(name: str, result: Mapping, wall_s: float | None = None) -> str:
    """One line of a finished run: its name and headline numbers.

    Args:
        name: the run's name within the sweep (e.g. ``policy=equal/seed=1``).
        result: :func:`scenarios.runner.summary` of the run.
        wall_s: wall-clock seconds the run took in this session, if known.
    """
    acc = result.get("final_accuracy", math.nan)
    parts = [
        f"acc {acc:.4f}" if isinstance(acc, float) and math.isfinite(acc) else "acc -",
        f"uplink {float(result.get('uplink_bits', 0.0)) / 1e6:.1f} Mbit",
        f"energy {float(result.get('energy_j', 0.0)):.2f} J",
    ]
    lat = result.get("mean_latency_s", math.nan)
    if isinstance(lat, float) and math.isfinite(lat):
        parts.append(f"latency {lat:.2f} s")
    parts.append(f"dropped {result.get('dropped', 0)}/{result.get('selected', 0)}")
    if wall_s is not None:
        parts.append(f"{wall_s:.0f} s wall")
    return f"done {name}: " + ", ".join(parts)


class SweepProgress:
    """A bar over the runs of a sweep.

    Args:
        total: runs in the sweep.
        done: runs already finished before this session.
        quiet: print nothing.
        desc: the bar's label.
        stream: where to print (default standard error).
    """

    def __init__(self, total: int, done: int = 0, quiet: bool = False, desc: str = "runs",
                 stream: TextIO | None = None):
        self.total = total
        self.done = done
        self.running = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._bar = None
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="run", desc=desc, file=self.stream,
                             dynamic_ncols=True, mininterval=1.0, smoothing=0.0)
            self._refresh()

    def _refresh(self) -> None:
        if self._bar is not None:
            waiting = self.total - self.done - self.running
            self._bar.set_postfix_str(f"running {self.running}, waiting {max(0, waiting)}",
                                      refresh=True)

    def set_running(self, running: int) -> None:
        """How many runs are executing now."""
        if running != self.running:
            self.running = running
            self._refresh()

    def message(self, text: str) -> None:
        """Print a line above the bar (nothing when quiet)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:  # pragma: no cover - the bar exists whenever not quiet
            print(text, file=self.stream)

    def finished(self, name: str, result: Mapping, wall_s: float | None = None) -> None:
        """A run ended: print its summary line and advance the bar."""
        self.done += 1
        self.running = max(0, self.running - 1)
        self.message(summary_line(name, result, wall_s))
        if self._bar is not None:
            self._bar.update(1)
        self._refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "SweepProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _policy_label(policy: str) -> str:
    """The policy's label (a file policy's class label, not its path)."""
    from scenarios.policies import policy_class

    return policy_class(policy).label


def summary_table(cfg, s: dict) -> str:
    """The table ``sflsim run`` prints at the end: ``cfg``'s names and its summary ``s``."""
    rows = [
        ("scenario / policy", f"{cfg.name} / {_policy_label(cfg.policy)}"),
        ("rounds", f"{s['rounds']}"),
        ("accuracy start -> final", f"{s['start_accuracy']:.4f} -> {s['final_accuracy']:.4f}"),
        ("uplink", f"{s['uplink_bits'] / 1e6:.1f} Mbit"),
        ("device energy", f"{s['energy_j']:.2f} J"),
        ("mean round latency", f"{s['mean_latency_s']:.3f} s"),
        ("simulated time", f"{s['sim_time_s']:.2f} s"),
        ("dropped / selected", f"{s['dropped']} / {s['selected']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


__all__ = ["SweepProgress", "summary_line", "summary_table"]
