"""GenFV's vehicle selection: stay in coverage long enough, and hold representative labels.

Source: GenFV, AIGC-assisted federated learning for vehicular edge intelligence (IEEE TMC
24(11):11896-11909, 2025; arXiv:2503.19676), as summarised secondhand: each round's
participants are chosen by how long they will stay in coverage (from speed and position,
against the round's expected duration) and by the earth mover's distance (EMD) of their
label distribution from the global one; bandwidth and power are then allocated. Its
generative data augmentation (AIGC images for skewed vehicles) is out of scope here.

The rule as written here (the paper's exact weighting was not available to us):

1. A vehicle whose time left in the cell is shorter than the round's expected duration (plus
   a margin) would lose its upload: it is never selected (``"left-cell"``, as
   :func:`netsim.allocation.select_by_dwell`).
2. The others are scored ``w_dwell * dwell - w_emd * emd`` with
   ``dwell = 1 - expected_round / time_left`` in [0, 1] (the share of its remaining coverage
   the round leaves free; 1 for a vehicle that stays) and ``emd`` in [0, 1] below; the best
   ``num_selected`` are selected, the other eligible ones get ``"not-scheduled"``. Ties go to
   the lower EMD, then the longer time left, then the lower index.

EMD between label histograms: with categorical labels and unit ground distance (moving mass
from any class to any other costs 1), the optimal transport moves exactly the excess mass,
so EMD(p, q) = sum_c max(p_c - q_c, 0) = 0.5 ||p - q||_1, the total-variation distance
(Villani, "Optimal Transport: Old and New", 2009, the TV case of the Kantorovich-Rubinstein
duality). Histograms are normalised first.

Radio: :func:`select_and_allocate` passes the selection to
:func:`netsim.allocation.fixed_tokens`, which gives the selected vehicles the exact min-max
bandwidth and power (``core.exact_radio``) at the given token budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.reasons import Reason

from .problem import Allocation, AllocationProblem
from .rules import fixed_tokens


def label_emd(label_hist, global_hist) -> np.ndarray:
    """EMD of each label histogram from the global one, unit ground distance (= 0.5 L1).

    Args:
        label_hist: ``[N, C]`` (or ``[C]``) label counts or frequencies, >= 0, each row > 0.
        global_hist: ``[C]`` global label counts or frequencies, >= 0, sum > 0.

    Returns:
        ``[N]`` (or scalar) EMD in [0, 1].

    Raises:
        ValueError: on negative, NaN or all-zero histograms, or mismatched C.
    """
    p = np.asarray(label_hist, dtype=float)
    q = np.asarray(global_hist, dtype=float)
    if q.ndim != 1 or p.shape[-1:] != q.shape:
        raise ValueError(f"label_hist must be [N, C] with C = {q.shape[-1:]}, got {p.shape}")
    for name, h in (("label_hist", p), ("global_hist", q)):
        if np.any(np.isnan(h)) or np.any(h < 0) or np.any(h.sum(axis=-1) <= 0):
            raise ValueError(f"{name} must be >= 0 with a positive sum per histogram, got {h!r}")
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum()
    return 0.5 * np.abs(p - q).sum(axis=-1)


@dataclass(frozen=True, eq=False)
class VehicleSelection:
    """One round's selection.

    Attributes:
        selected: ``[N]`` bool.
        dwell: ``[N]`` 1 - expected_round / time_left (0 where not eligible), in [0, 1].
        emd: ``[N]`` label EMD from the global histogram, in [0, 1].
        score: ``[N]`` w_dwell dwell - w_emd emd (-inf where not eligible).
        reasons: ``[N]`` ``"ok"``, ``"left-cell"`` or ``"not-scheduled"``.
    """

    selected: np.ndarray
    dwell: np.ndarray
    emd: np.ndarray
    score: np.ndarray
    reasons: tuple[str, ...]


def select_vehicles(
    time_left_s,
    expected_round_s,
    label_hist,
    global_hist,
    num_selected: int | None = None,
    *,
    fraction: float | None = None,
    dwell_weight: float = 1.0,
    emd_weight: float = 1.0,
    margin_s: float = 0.0,
) -> VehicleSelection:
    """Choose the round's vehicles by dwell time and label EMD.

    Args:
        time_left_s: ``[N]`` time until each vehicle leaves coverage, s (``inf``: stays).
        expected_round_s: scalar or ``[N]`` expected round duration, s, > 0.
        label_hist: ``[N, C]`` label counts of each vehicle.
        global_hist: ``[C]`` global label counts.
        num_selected: how many to select (at most the eligible ones); or give ``fraction``.
        fraction: share of the N vehicles to select, in (0, 1], rounded up.
        dwell_weight: weight of the dwell term, >= 0.
        emd_weight: weight of the EMD term, >= 0.
        margin_s: safety margin on the expected duration, s, >= 0.

    Returns:
        :class:`VehicleSelection`.

    Raises:
        ValueError: naming the argument, on bad values or shapes, or if both or neither of
            ``num_selected`` and ``fraction`` are given.
    """
    t_left = np.asarray(time_left_s, dtype=float)
    if t_left.ndim != 1 or t_left.size == 0:
        raise ValueError(f"time_left_s must be a non-empty 1-D array, got shape {t_left.shape}")
    if np.any(np.isnan(t_left)) or np.any(t_left < 0):
        raise ValueError(f"time_left_s must be >= 0 and not NaN, got {t_left!r}")
    n = t_left.size
    est = np.asarray(expected_round_s, dtype=float)
    if est.ndim > 1 or (est.ndim == 1 and est.shape != (n,)):
        raise ValueError(f"expected_round_s must be a scalar or [{n}], got shape {est.shape}")
    est = np.broadcast_to(est, (n,))
    if not np.all(np.isfinite(est)) or np.any(est <= 0):
        raise ValueError(f"expected_round_s must be finite and > 0, got {expected_round_s!r}")
    for name, v in (("dwell_weight", dwell_weight), ("emd_weight", emd_weight),
                    ("margin_s", margin_s)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
    if (num_selected is None) == (fraction is None):
        raise ValueError(f"give exactly one of num_selected and fraction, got "
                         f"num_selected={num_selected!r}, fraction={fraction!r}")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        num_selected = int(np.ceil(fraction * n - 1e-9))
    if isinstance(num_selected, bool) or int(num_selected) != num_selected or num_selected < 0:
        raise ValueError(f"num_selected must be an integer >= 0, got {num_selected!r}")
    emd = label_emd(label_hist, global_hist)
    if emd.shape != (n,):
        raise ValueError(f"label_hist must have {n} rows, got {np.shape(label_hist)}")
    eligible = t_left >= est + margin_s
    with np.errstate(divide="ignore", invalid="ignore"):
        dwell = np.where(eligible, 1.0 - est / t_left, 0.0)
    score = np.where(eligible, dwell_weight * dwell - emd_weight * emd, -np.inf)
    # Best score first; ties: lower EMD, longer time left, lower index (lexsort: last key first).
    order = np.lexsort((np.arange(n), -t_left, emd, -score))
    take = order[: min(int(num_selected), int(eligible.sum()))]
    selected = np.zeros(n, dtype=bool)
    selected[take] = True
    reasons = tuple(
        Reason.ALLOCATED if selected[i] else (Reason.NOT_SCHEDULED if eligible[i]
                                              else Reason.LEFT_CELL)
        for i in range(n)
    )
    return VehicleSelection(selected=selected, dwell=dwell, emd=emd, score=score,
                            reasons=reasons)


def select_and_allocate(problem: AllocationProblem, selection: VehicleSelection,
                        tokens: int | np.ndarray | None = None) -> Allocation:
    """Bandwidth and power for the selected vehicles: :func:`fixed_tokens` restricted to them.

    Every selected vehicle sends ``tokens`` (default: all, ``problem.max_tokens``) and gets
    the exact min-max radio allocation; the others keep their selection reason.
    """
    budgets = problem.max_tokens if tokens is None else tokens
    return fixed_tokens(problem, budgets, selected=selection.selected, reasons=selection.reasons)
