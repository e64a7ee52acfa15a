"""The round's planning: who may take part, and what the policy is shown about them.

Selection keeps the devices in the cell, with battery left, that can finish before they leave
(:func:`netsim.allocation.select_by_dwell`), optionally a random fraction of them; every device
left out gets a :class:`netsim.reasons.Reason`. The view (:class:`scenarios.policies.RoundView`)
holds the planned channel (:func:`planning_gain`), the devices' limits and the round's compute
costs from the learner's measured step costs.

The planned channel is one of three (``PlanningConfig.channel``): the instantaneous gain; the
large-scale gain (path loss and shadowing) less a fading margin; or ``expected``: the gain
whose capped Shannon rate is the rate a transfer spanning many coherence times averages, the
expected capped rate over the device's fading (Rician for LOS devices, Rayleigh for NLOS:
:func:`netsim.ergodic_rate.effective_snr_lin`). That gain depends on the bandwidth and power
it is computed at (the mean SNR per Hz falls as the bandwidth grows), so it is computed at an
equal share first and, with ``passes > 1``, again at the bandwidth and power the policy chose,
and the policy decides again (:func:`expected_gain`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from netsim import ofdma
from netsim.allocation import round_to_rbs, select_by_dwell
from netsim.allocation.radio import rate_bps
from netsim.channel import ChannelConfig
from netsim.ergodic_rate import effective_snr_lin
from netsim.ofdma import OfdmaConfig
from netsim.reasons import Reason
from netsim.units import db_to_lin, lin_to_db
from netsim.world import ChannelState
from scenarios.costs import CostModel
from scenarios.policies import Decision, RoundView


@dataclass(frozen=True)
class PlanSettings:
    """The scenario settings planning needs (from ``ScenarioConfig``)."""

    channel: str
    fading_margin_db: float
    deadline_margin: float
    deadline_s: float
    sample_fraction: float
    keep_ratio: float
    energy_margin: float = 1.0
    passes: int = 1


def equal_share_hz(state: ChannelState, sample_fraction: float) -> float:
    """The band over the devices expected to be planned (a fraction of those in the cell), Hz."""
    in_cell = max(1, int(np.count_nonzero(state.in_cell)))
    return state.total_bandwidth_hz / max(1, math.ceil(sample_fraction * in_cell))


def expected_gain(state: ChannelState, bandwidth_hz: np.ndarray, power_w: np.ndarray, radio: OfdmaConfig,
                  channel: ChannelConfig) -> np.ndarray:
    """``[N]`` gain whose capped Shannon rate at ``(bandwidth_hz, power_w)`` is the expected rate.

    ``g_eff = g * effective_snr(s) / s`` with ``g`` the large-scale gain and ``s = p g / (N0 b)``
    its mean SNR; exact at that bandwidth and power (netsim.ergodic_rate's docstring measures
    the error elsewhere). The spectral-efficiency cap is inside the expectation.
    """
    large = db_to_lin(-(np.asarray(state.pathloss_db) + np.asarray(state.shadowing_db)))
    mean_snr = ofdma.snr_lin(np.asarray(power_w, dtype=float), large, np.asarray(bandwidth_hz, dtype=float),
                             state.noise_psd_w_per_hz)
    fading, k_lin = channel.fading_for_planning(np.asarray(state.los, dtype=bool))
    eff = effective_snr_lin(mean_snr, radio.max_spectral_efficiency, fading, k_lin)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean_snr > 0, large * eff / mean_snr, large)


def planning_gain(state: ChannelState, plan: PlanSettings, radio: OfdmaConfig,
                  channel: ChannelConfig | None = None) -> np.ndarray:
    """The channel gain ``[N]`` the policy plans with (first pass).

    An upload of a second or more sees hundreds of fading blocks, so by default the plan uses
    the large-scale gain (path loss and shadowing) less a fading margin rather than the fading
    of the instant the round starts; and where the world caps the spectral efficiency, the gain
    is clipped so that the SNR over an equal share of the band does not exceed the cap's.
    ``expected`` (needs ``channel``) is :func:`expected_gain` at an equal share and full power,
    less the fading margin (0 dB is the consistent choice: the fading is in the expectation).
    """
    if plan.channel == "expected":
        if channel is None:
            raise ValueError("channel='expected' needs the world's ChannelConfig")
        n = np.asarray(state.gain_lin).size
        share = np.full(n, equal_share_hz(state, plan.sample_fraction))
        return expected_gain(state, share, np.asarray(state.max_power_w), radio, channel) * db_to_lin(
            -plan.fading_margin_db)
    if plan.channel == "instantaneous":
        gain = np.asarray(state.gain_lin, dtype=float)
    else:
        gain = db_to_lin(-(np.asarray(state.pathloss_db) + np.asarray(state.shadowing_db)))
    gain = gain * db_to_lin(-plan.fading_margin_db)
    cap = radio.max_spectral_efficiency
    if cap is not None:
        share_hz = state.total_bandwidth_hz / max(1, int(np.count_nonzero(state.in_cell)))
        snr_cap = 2.0**cap - 1.0
        gain = np.minimum(gain, snr_cap * state.noise_psd_w_per_hz * share_hz / np.asarray(state.max_power_w))
    return gain


def estimated_round_s(state: ChannelState, gain: np.ndarray, costs: CostModel, radio: OfdmaConfig,
                      communicates: bool, split: bool) -> np.ndarray:
    """``[N]`` a device's round time at all tokens, full power and an equal share of the band.

    Used only to decide whether a device can finish before it leaves the cell.
    """
    n = gain.size
    compute = costs.full_compute_s(np.asarray(state.cpu_hz), np.asarray(state.flops_per_cycle),
                                   state.server_flops_per_s)
    if not communicates:
        return compute
    share = state.total_bandwidth_hz / max(1, int(np.count_nonzero(state.in_cell)) or n)
    rate, _ = ofdma.uplink_rate_bps(np.full(n, share), np.asarray(state.max_power_w), gain,
                                    state.noise_psd_w_per_hz, radio.max_spectral_efficiency)
    bits = costs.local_steps * costs.uplink(costs.k_max) if split else costs.adapter_bits
    return compute + bits / np.maximum(rate, 1e-9)


def downlink_rate_estimate(state: ChannelState, devices: np.ndarray, radio: OfdmaConfig) -> np.ndarray:
    """``[m]`` downlink rate over an equal share of the band (the base station's power follows it)."""
    share = np.full(devices.size, state.total_bandwidth_hz / max(1, devices.size))
    rate, _ = ofdma.downlink_rate_bps(share, radio.bs_tx_power_w, state.total_bandwidth_hz,
                                      np.asarray(state.gain_lin)[devices],
                                      ofdma.noise_psd_w_per_hz(radio.ue_noise_figure_db),
                                      radio.max_spectral_efficiency)
    return np.maximum(rate, 1.0)


def select(state: ChannelState, estimate_s: np.ndarray, sample_fraction: float,
           rng: np.random.Generator) -> tuple[np.ndarray, dict[int, str]]:
    """The devices to plan this round, and why each other device is left out.

    Returns:
        ``(devices int [m] sorted, {device: Reason})``.
    """
    left_out: dict[int, str] = {}
    in_cell = np.asarray(state.in_cell, dtype=bool)
    charged = np.asarray(state.battery_j) > 0
    for d in np.flatnonzero(~in_cell):
        left_out[int(d)] = Reason.LEFT_CELL.value
    for d in np.flatnonzero(in_cell & ~charged):
        left_out[int(d)] = Reason.BATTERY.value
    dwell_ok, dwell_reason = select_by_dwell(np.asarray(state.time_left_s, dtype=float), estimate_s)
    dwell_ok = np.asarray(dwell_ok, dtype=bool)
    candidates = in_cell & charged
    for d in np.flatnonzero(candidates & ~dwell_ok):
        left_out[int(d)] = str(dwell_reason[d])
    idx = np.flatnonzero(candidates & dwell_ok)
    if sample_fraction < 1.0 and idx.size:
        m = max(1, math.ceil(sample_fraction * idx.size))
        picked = np.sort(rng.choice(idx, size=m, replace=False))
        for d in np.setdiff1d(idx, picked):
            left_out[int(d)] = Reason.NOT_SAMPLED.value
        idx = picked
    return idx, left_out


def round_budget_j(state: ChannelState, devices: np.ndarray) -> np.ndarray:
    """``[m]`` energy each device may spend this round: its budget, or its battery if lower, J."""
    return np.minimum(np.asarray(state.energy_budget_j)[devices], np.asarray(state.battery_j)[devices])


def round_view(state: ChannelState, devices: np.ndarray, gain: np.ndarray, costs: CostModel,
               plan: PlanSettings, radio: OfdmaConfig, rng: np.random.Generator,
               retention_of: Callable[[], np.ndarray]) -> RoundView:
    """What the policy sees about ``devices`` this round."""
    idx = devices
    cpu = np.asarray(state.cpu_hz)[idx]
    budget = round_budget_j(state, idx)
    deadline = plan.deadline_margin * np.minimum(plan.deadline_s, np.asarray(state.time_left_s)[idx])
    work = costs.round_compute(cpu, np.asarray(state.flops_per_cycle)[idx], np.asarray(state.kappa)[idx],
                               state.server_flops_per_s, downlink_rate_estimate(state, idx, radio))
    m = idx.size
    if plan.energy_margin < 1.0:
        # the margin covers what is uncertain, the transmit energy; compute energy is exact
        compute_j = work.energy_j + work.energy_per_token_j * costs.k_max
        budget = budget - (1.0 - plan.energy_margin) * np.maximum(budget - compute_j, 0.0)
    return RoundView(
        devices=idx, gain_lin=gain[idx], noise_psd_w_per_hz=float(state.noise_psd_w_per_hz),
        total_bandwidth_hz=float(state.total_bandwidth_hz), max_power_w=np.asarray(state.max_power_w)[idx],
        energy_budget_j=budget, deadline_s=deadline, compute_time_s=work.time_s,
        compute_energy_j=work.energy_j, compute_time_per_token_s=work.time_per_token_s,
        compute_energy_per_token_j=work.energy_per_token_j,
        bits_per_token=np.full(m, costs.local_steps * costs.uplink.per_token),
        extra_tokens=float(costs.extra_tokens) if costs.uplink.per_token > 0 else 0.0,
        max_tokens=costs.k_max, keep_ratio=plan.keep_ratio, rng=rng, retention_of=retention_of,
    )


def plan_record(view: RoundView, j: int, tokens: int, bandwidth_hz: float, power_w: float, budget_j: float,
                compute_j: float, costs: CostModel, max_spectral_efficiency: float | None, split: bool) -> dict:
    """What the plan of device ``j`` of ``view`` says, for ``decisions.parquet``.

    Args:
        budget_j: the device's energy for the round (budget, or battery if lower), J.
        compute_j: its planned compute energy at ``tokens``, J.

    Returns:
        ``planned_gain_db`` (the gain the policy planned with), ``max_power_w``,
        ``energy_budget_j`` (``budget_j - compute_j``: what transmitting may spend, J),
        ``planned_uplink_s`` (the round's activation uplink bits at ``tokens``, from the cost
        model, over the capped Shannon rate at the planned gain, bandwidth and power; NaN when
        nothing is planned to be sent).
    """
    planned_s = math.nan
    if split and tokens > 0 and bandwidth_hz > 0 and power_w > 0:
        rate = float(rate_bps(bandwidth_hz, power_w, float(view.gain_lin[j]), view.noise_psd_w_per_hz,
                              max_spectral_efficiency))
        planned_s = float(costs.round_uplink_bits(int(tokens))) / rate
    return {
        "planned_gain_db": float(lin_to_db(float(view.gain_lin[j]))),
        "max_power_w": float(view.max_power_w[j]), "energy_budget_j": float(budget_j - compute_j),
        "planned_uplink_s": planned_s,
    }


def whole_rbs(decision: Decision, view: RoundView, costs: CostModel, radio: OfdmaConfig) -> Decision:
    """The decision with each allocated bandwidth rounded to whole resource blocks
    (:func:`netsim.allocation.round_to_rbs`: within the band, deadlines repaired where blocks
    can move; a device that ends up late or without a block gets that status). Power is kept,
    so a device that loses part of a block spends a little more airtime (and energy).
    """
    ok = np.asarray([s == Reason.ALLOCATED for s in decision.status], dtype=bool)
    if not ok.any():
        return decision
    k = np.asarray(decision.tokens, dtype=int)
    b = np.where(ok, np.asarray(decision.bandwidth_hz, dtype=float), 0.0)
    rb = round_to_rbs(b, radio.rb_bandwidth_hz, radio.num_rb, costs.round_uplink_bits(np.maximum(k, 1)),
                      np.where(ok, decision.power_w, 1.0), view.gain_lin, view.noise_psd_w_per_hz,
                      view.compute_time_s + view.compute_time_per_token_s * k, view.deadline_s,
                      radio.max_spectral_efficiency)
    status = np.asarray(decision.status, dtype=object).copy()
    status[ok] = rb.status[ok]
    bandwidth = np.where(ok, rb.bandwidth_hz, np.asarray(decision.bandwidth_hz, dtype=float))
    # replace, not a new Decision: every other field (cut layers, bit widths, ...) is kept
    return dataclasses.replace(decision, bandwidth_hz=bandwidth, status=status)
