"""Benchmark of the netsim World (not a test): channel updates per second and event overhead.

Measures, in one run on this machine:

1. ``device_channel_updates_per_s``: 10,000 highway vehicles over 1,000 coherence intervals
   through the World's own update path (``World.advance``): mobility step, correlated
   shadowing, Rayleigh fading with per-device Doppler, path loss, and uplink and downlink rate
   of every device; N x intervals / wall time. Target >= 1e7.
2. ``bare_timeouts_per_s``: SimPy alone, one process yielding ``env.timeout`` in a loop.
3. Per-event cost of the World with a tiny cell (N = 1): wall time per channel event, its
   physics alone, and its scheduling alone (the channel process with the physics call
   stubbed out). ``world_overhead_ratio`` = scheduling per event / bare timeout, target <= 2.
   ``world_event_ratio_with_physics`` is the whole per-event cost at N = 1 over a bare
   timeout: numpy's fixed cost per call dominates there, not SimPy.
4. ``transfer_event_ratio``: in a round where 1,000 devices upload through many channel
   updates, wall time per transfer wake-up (a transfer resuming at an update and re-planning
   at the new rate) over the bare timeout cost.
5. ``multicell_device_site_updates_per_s``: a 7-site hexagonal world with wrap-around and 140
   pedestrians (random waypoint, so every update recomputes all 7 x 140 distances) through
   ``World.advance``: mobility, inter-site correlated shadowing, path loss to every site, fading
   of the serving links, A3 handover and the SINR of every device; N x S x intervals / wall
   time. Target >= 1e6. ``multicell_sinr_change_us``: wall time of one change of transmitters
   in a round where all 140 devices upload (every SINR recomputed, the transfers woken).

The last printed line is a JSON object with every figure. Run: ``python bench/netsim_scale.py``.
"""

from __future__ import annotations

import json
import math
import platform
import time

import numpy as np
import simpy

from netsim.cellconfig import CellsConfig
from netsim.channel import ChannelConfig
from netsim.layout import LayoutConfig
from netsim.mobility import HighwayConfig, RandomWaypointConfig
from netsim.world import Compute, DevicePlan, Transfer, World, WorldConfig


def best_of(fn, repeats: int = 3) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn`` (s): the least-disturbed run."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bare_timeout_s(num_events: int) -> float:
    """Wall time per event of a bare SimPy timeout loop (s)."""

    def run():
        env = simpy.Environment()

        def loop():
            timeout = env.timeout
            for _ in range(num_events):
                yield timeout(0.01)

        env.process(loop())
        env.run()

    return best_of(run) / num_events


def scale(num_devices: int, intervals: int, config: WorldConfig) -> float:
    """Device-channel updates per second through ``World.advance``."""
    world = World(config, seed=0)
    coherence_s = config.coherence_s

    done = []

    def run():
        start = world.interval
        t0 = time.perf_counter()
        world.advance(intervals * coherence_s)
        done.append((world.interval - start, time.perf_counter() - t0))

    best_of(run)
    # Updates actually applied per run (an update falling exactly at the end of a run is
    # applied at the start of the next one), divided by its wall time.
    return max(num_devices * count / wall for count, wall in done)


def world_event_s(config: WorldConfig, intervals: int) -> tuple[float, float, float]:
    """Per-event wall time of the World's channel process (s): whole, physics alone, scheduling alone.

    The scheduling cost is measured directly: the same World process with its physics call
    replaced by a stub that only counts the interval (the timing path of the channel process:
    integer-k target time, exact-delay check, the timeout, waking waiting transfers).
    """
    world = World(config, seed=0)

    def run_world():
        world.advance(intervals * config.coherence_s)

    def run_physics():
        update = world._update_channel
        for _ in range(intervals):
            update()

    whole = best_of(run_world) / intervals
    physics = best_of(run_physics) / intervals

    stub = World(config, seed=0)

    def count_only():
        stub._interval += 1

    stub._update_channel = count_only
    scheduling = best_of(lambda: stub.advance(intervals * config.coherence_s)) / intervals
    return whole, physics, scheduling


def transfer_wakeup_s(num_devices: int) -> tuple[float, int]:
    """Wall time per transfer wake-up in a round of long uploads (s), and the wake-up count."""
    config = WorldConfig(num_devices=num_devices, mobility=HighwayConfig(), cell_radius_m=2000.0)
    world = World(config, seed=0)
    state = world.channel_state()
    bandwidth = state.total_bandwidth_hz / num_devices
    plans = [DevicePlan(i, [Transfer("uplink", 2e5)], bandwidth, 0.1) for i in range(num_devices)]
    t0 = time.perf_counter()
    result = world.run_round(1, plans, deadline_s=1.0)
    wall = time.perf_counter() - t0
    intervals = round((result.end_s - result.start_s) / config.coherence_s)
    # Cost of the channel updates themselves, to subtract: time them alone.
    physics = best_of(lambda: [world._update_channel() for _ in range(intervals)], repeats=1)
    # A transfer wakes at every update k with start <= k * coherence < end.
    coh = config.coherence_s
    wakeups = sum(math.ceil(r["end_s"] / coh - 1e-9) - math.ceil(r["start_s"] / coh - 1e-9) for r in result.rows)
    return (wall - physics) / max(wakeups, 1), wakeups


def multicell_config(num_devices: int = 140) -> WorldConfig:
    """Seven hexagonal sites with wrap-around (ISD 500 m), pedestrians moving."""
    return WorldConfig(
        num_devices=num_devices, cell_radius_m=500.0, mobility=RandomWaypointConfig(),
        cells=CellsConfig(enabled=True, layout=LayoutConfig(kind="hex", num_sites=7, isd_m=500.0, wrap_around=True)),
    )


def multicell_round_change_us(config: WorldConfig) -> tuple[float, int]:
    """Wall time per change of transmitters (us) in a round where every device uploads once."""
    world = World(config, seed=0)
    state = world.channel_state()
    counts = np.bincount(state.serving_cell, minlength=world.num_sites)
    plans = [DevicePlan(i, [Compute("device_forward", 1e7 * (1 + i % 13)), Transfer("uplink", 2e5)],
                        state.total_bandwidth_hz / counts[state.serving_cell[i]], 0.1)
             for i in range(config.num_devices)]
    t0 = time.perf_counter()
    result = world.run_round(1, plans, deadline_s=5.0)
    wall = time.perf_counter() - t0
    intervals = round((result.end_s - result.start_s) / config.coherence_s)
    physics = best_of(lambda: [world._update_channel() for _ in range(intervals)], repeats=1)
    changes = 2 * config.num_devices  # each upload starts and stops once
    return (wall - physics) / changes * 1e6, changes


def main() -> None:
    num_devices, intervals = 10_000, 1_000
    highway = WorldConfig(num_devices=num_devices, mobility=HighwayConfig(), channel=ChannelConfig())
    updates_per_s = scale(num_devices, intervals, highway)
    print(f"device-channel updates/s ({num_devices} devices x {intervals} intervals): {updates_per_s:,.0f}")

    bare_s = bare_timeout_s(200_000)
    print(f"bare SimPy timeouts/s: {1 / bare_s:,.0f}  ({bare_s * 1e6:.2f} us each)")

    tiny = WorldConfig(num_devices=1, mobility=HighwayConfig())
    event_s, physics_s, overhead_s = world_event_s(tiny, 20_000)
    print(
        f"world channel event (N=1): {event_s * 1e6:.2f} us, of which physics {physics_s * 1e6:.2f} us, "
        f"scheduling {overhead_s * 1e6:.2f} us = {overhead_s / bare_s:.2f} x bare timeout"
    )
    wakeup_s, wakeups = transfer_wakeup_s(1_000)
    print(
        f"transfer wake-up at a channel update: {wakeup_s * 1e6:.2f} us = {wakeup_s / bare_s:.2f} x bare timeout "
        f"({wakeups} wake-ups)"
    )

    mc = multicell_config()
    mc_updates = scale(mc.num_devices * 7, 2_000, mc)
    print(f"multi-cell device-site updates/s (7 sites x {mc.num_devices} devices x 2000 intervals): {mc_updates:,.0f}")
    change_us, changes = multicell_round_change_us(mc)
    print(f"multi-cell change of transmitters (every SINR recomputed): {change_us:.1f} us ({changes} changes)")

    figures = {
        "num_devices": num_devices,
        "intervals": intervals,
        "device_channel_updates_per_s": round(updates_per_s),
        "target_updates_per_s": 10_000_000,
        "bare_timeouts_per_s": round(1 / bare_s),
        "world_event_us_n1": round(event_s * 1e6, 3),
        "world_physics_us_n1": round(physics_s * 1e6, 3),
        "world_overhead_ratio": round(overhead_s / bare_s, 3),
        "world_event_ratio_with_physics": round(event_s / bare_s, 3),
        "target_overhead_ratio": 2.0,
        "transfer_wakeup_ratio": round(wakeup_s / bare_s, 3),
        "multicell_device_site_updates_per_s": round(mc_updates),
        "multicell_target_updates_per_s": 1_000_000,
        "multicell_sinr_change_us": round(change_us, 1),
        "python": platform.python_version(),
        "simpy": simpy.__version__,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
