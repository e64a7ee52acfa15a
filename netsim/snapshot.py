"""What an allocation policy sees of the cell before a round: one snapshot of every device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelState:
    """Snapshot of the cell for an allocation policy; arrays are ``[N]`` copies.

    Attributes:
        gain_lin: Wideband channel power gain (path loss x shadowing x fading, averaged over
            resource blocks).
        pathloss_db: Path loss, dB.
        shadowing_db: Shadowing, dB.
        los: bool, True where the device is in line of sight (per device with the
            ``3gpp-uma`` / ``3gpp-umi`` models; the same for all devices with a fixed model:
            :func:`netsim.pathloss.fixed_los_state`).
        positions_m: ``[N, 2]`` positions relative to the base station, m.
        speeds_mps: Speeds, m/s.
        in_cell: True where the device is inside the cell.
        time_left_s: Time until the device leaves the cell, s (inf if it stays).
        noise_psd_w_per_hz: Uplink (base-station receiver) noise PSD, W/Hz.
        total_bandwidth_hz: Usable band, Hz.
        max_power_w: Maximum transmit power, W.
        energy_budget_j: Energy each device may spend in a round, J.
        battery_j: Battery energy left, J.
        cpu_hz: CPU frequency, Hz.
        flops_per_cycle: FLOPs per CPU cycle.
        kappa: Effective switched capacitance, J / (cycle Hz^2).
        server_flops_per_s: Edge server speed of one slot, FLOP/s.
        serving_cell: ``[N]`` serving site of each device in a multi-cell world (None: one cell).
        interference_psd_w_per_hz: ``[N]`` uplink interference PSD at each device's serving
            site that ``gain_lin`` accounts for (multi-cell, W/Hz; None: one cell).
    """

    gain_lin: np.ndarray
    pathloss_db: np.ndarray
    shadowing_db: np.ndarray
    los: np.ndarray
    positions_m: np.ndarray
    speeds_mps: np.ndarray
    in_cell: np.ndarray
    time_left_s: np.ndarray
    noise_psd_w_per_hz: float
    total_bandwidth_hz: float
    max_power_w: np.ndarray
    energy_budget_j: np.ndarray
    battery_j: np.ndarray
    cpu_hz: np.ndarray
    flops_per_cycle: np.ndarray
    kappa: np.ndarray
    server_flops_per_s: float
    serving_cell: np.ndarray | None = None
    interference_psd_w_per_hz: np.ndarray | None = None
