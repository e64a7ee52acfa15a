"""The round's planning: who may take part, and what the policy is shown about them.

Selection keeps the devices in the cell, with battery left, that can finish before they leave
(:func:`netsim.allocation.select_by_dwell`), optionally a random fraction of them; every device
left out gets a :class:`netsim.reasons.Reason`. The view (:class:`scenarios.policies.RoundView`)
holds the planned channel (:func:`planning_gain`), the devices' limits and the round's compute
costs from the learner's measured step costs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from netsim import ofdma
from netsim.allocation import select_by_dwell
from netsim.ofdma import OfdmaConfig
from netsim.reasons import Reason
from netsim.units import db_to_lin
from netsim.world import ChannelState
from scenarios.costs import CostModel
from scenarios.policies import RoundView


@dataclass(frozen=True)
class PlanSettings:
    """The scenario settings planning needs (from ``ScenarioConfig``)."""

    channel: str
    fading_margin_db: float
    deadline_margin: float
    deadline_s: float
    sample_fraction: float
    keep_ratio: float


def planning_gain(state: ChannelState, plan: PlanSettings, radio: OfdmaConfig) -> np.ndarray:
    """The channel gain ``[N]`` the policy plans with.

    An upload of a second or more sees hundreds of fading blocks, so by default the plan uses
    the large-scale gain (path loss and shadowing) less a fading margin rather than the fading
    of the instant the round starts; and where the world caps the spectral efficiency, the gain
    is clipped so that the SNR over an equal share of the band does not exceed the cap's.
    """
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


def round_view(state: ChannelState, devices: np.ndarray, gain: np.ndarray, costs: CostModel,
               plan: PlanSettings, radio: OfdmaConfig, rng: np.random.Generator,
               retention_of: Callable[[], np.ndarray]) -> RoundView:
    """What the policy sees about ``devices`` this round."""
    idx = devices
    cpu = np.asarray(state.cpu_hz)[idx]
    budget = np.minimum(np.asarray(state.energy_budget_j)[idx], np.asarray(state.battery_j)[idx])
    deadline = plan.deadline_margin * np.minimum(plan.deadline_s, np.asarray(state.time_left_s)[idx])
    work = costs.round_compute(cpu, np.asarray(state.flops_per_cycle)[idx], np.asarray(state.kappa)[idx],
                               state.server_flops_per_s, downlink_rate_estimate(state, idx, radio))
    m = idx.size
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
