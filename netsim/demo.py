"""A netsim-only demo: N devices, a few rounds of a fixed split-learning payload, a table.

Run ``python -m netsim.demo --devices 8 --rounds 3``. Each round every device computes a
forward pass, uploads ``--payload-bits``, waits for the server, downloads the gradient and
computes its backward pass, with an equal share of the band at full power. Printing is this
module's job: it is the command-line edge of :mod:`netsim`.
"""

from __future__ import annotations

import argparse

from netsim.mobility import HighwayConfig, RandomWaypointConfig, StaticConfig
from netsim.world import Compute, DevicePlan, Transfer, World, WorldConfig

_MOBILITY = {"static": StaticConfig, "random-waypoint": RandomWaypointConfig, "highway": HighwayConfig}


def build_plans(world: World, payload_bits: float, flops: float) -> list[DevicePlan]:
    """One equal-share, full-power plan per device for one local step."""
    state = world.channel_state()
    bandwidth_hz = state.total_bandwidth_hz / world.num_devices
    phases = (
        Compute("device_forward", flops, "device", 0),
        Transfer("uplink", payload_bits, "uplink", 0),
        Compute("server", 20 * flops, "server", 0),
        Transfer("downlink", payload_bits, "downlink", 0),
        Compute("device_backward", 2 * flops, "device", 0),
    )
    return [
        DevicePlan(i, phases, bandwidth_hz, float(state.max_power_w[i]), tokens_kept=197)
        for i in range(world.num_devices)
    ]


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the rounds and print one line per device per round."""
    parser = argparse.ArgumentParser(prog="python -m netsim.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8, help="number of devices (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="number of rounds (default 3)")
    parser.add_argument("--payload-bits", type=float, default=4e6, help="uplink and downlink bits per round")
    parser.add_argument("--flops", type=float, default=2e9, help="device forward FLOPs per round")
    parser.add_argument("--deadline-s", type=float, default=5.0, help="round deadline in s")
    parser.add_argument("--mobility", choices=sorted(_MOBILITY), default="highway")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = WorldConfig(num_devices=args.devices, mobility=_MOBILITY[args.mobility]())
    world = World(config, seed=args.seed)
    print(f"{args.devices} devices, {args.mobility}, seed {args.seed}, payload {args.payload_bits:.3g} bits, "
          f"deadline {args.deadline_s} s")
    header = (
        f"{'round':>5} {'dev':>4} {'dist_m':>7} {'snr_db':>7} {'ul_Mbps':>8} {'latency_s':>9} {'energy_j':>8}  status"
    )
    print(header)
    print("-" * len(header))
    for round_index in range(1, args.rounds + 1):
        state = world.channel_state()
        result = world.run_round(round_index, build_plans(world, args.payload_bits, args.flops), args.deadline_s)
        uplink = {row["device"]: row for row in result.rows if row["phase"] == "uplink"}
        for outcome in result.outcomes:
            i = outcome.device
            row = uplink.get(i)
            distance_m = float((state.positions_m[i] ** 2).sum() ** 0.5)
            snr = f"{row['snr_db']:7.1f}" if row else f"{'-':>7}"
            rate = f"{row['rate_bps'] / 1e6:8.2f}" if row else f"{'-':>8}"
            status = "ok" if outcome.finished else f"missed ({outcome.reason})"
            print(f"{round_index:>5} {i:>4} {distance_m:7.0f} {snr} {rate} {outcome.latency_s:9.3f} "
                  f"{outcome.energy_j:8.3f}  {status}")
        world.advance(1.0)
    print(f"simulated time {world.now_s:.3f} s")


if __name__ == "__main__":
    main()
