"""Benchmark of the research-line allocation functions (not a test): SFLAM, cut layer, GenFV.

    .venv/bin/python bench/allocation_line.py [--quick]

1. SFLAM (``netsim.allocation.sflam.solve_sflam``): solve time of "bcd" for N = 10, 30, 100
   on random cells (median of the best of 3 repeats per instance), and its match rate and
   worst objective gap against "exhaustive" on random N <= 4 instances (2 and 20 MHz bands).
2. Adaptive cut layer (``cut_layer.choose_cut_layer``): time for N = 1000 devices x 11 cuts.
3. GenFV selection (``vehicle_selection.select_vehicles``): time for N = 1000, C = 10.

No targets are set for these; the last printed line is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from netsim.allocation.cut_layer import choose_cut_layer  # noqa: E402
from netsim.allocation.sflam import SflamProblem, solve_sflam  # noqa: E402
from netsim.allocation.vehicle_selection import select_vehicles  # noqa: E402

N0 = 10 ** ((-174.0 + 9.0 - 30.0) / 10.0)


def random_sflam(rng, n, weight_s, band_hz=20e6, levels=(2, 4, 8, 16)):
    r_m = np.sqrt(rng.uniform(50.0**2, 500.0**2, n))
    gain_db = -(128.1 + 37.6 * np.log10(r_m / 1e3)) + 8.0 * rng.standard_normal(n)
    comp_e = rng.uniform(0.02, 0.2, n)
    return SflamProblem(
        gain_lin=10 ** (gain_db / 10), noise_psd_w_per_hz=N0, total_bandwidth_hz=band_hz,
        max_power_w=0.2, energy_budget_j=comp_e + rng.uniform(0.05, 1.0, n),
        deadline_s=rng.uniform(2.0, 6.0, n), values_per_step=8 * 65 * 192,
        header_bits_per_step=8 * 65 * 64, steps=rng.integers(1, 6, n),
        distortion_weight_s=weight_s, compute_time_s=rng.uniform(0.05, 0.3, n),
        compute_energy_j=comp_e, bit_levels=levels, tokens=64,
    )


def best_of(fn, repeats):
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return min(runs)


def sflam_section(quick: bool, seed: int) -> dict:
    out = {}
    for n in (10, 30, 100):
        times = []
        for j in range(3 if quick else 10):
            problem = random_sflam(np.random.default_rng([seed, n, j]), n, 10.0)
            times.append(best_of(lambda: solve_sflam(problem), 3))
        out[f"bcd_n{n}_median_ms"] = 1e3 * float(np.median(times))
    for band in (20e6, 2e6):
        rng = np.random.default_rng([seed, int(band)])
        gaps = []
        for _ in range(100 if quick else 500):
            levels = (2, 4, 8, 16) if rng.random() < 0.5 else (2, 4, 8)
            problem = random_sflam(rng, int(rng.integers(1, 5)),
                                   float(10 ** rng.uniform(-1, 2)), band, levels)
            ref = solve_sflam(problem, "exhaustive")
            if ref.num_ok:
                gaps.append(solve_sflam(problem).objective / ref.objective - 1)
        gaps = np.array(gaps)
        key = f"vs_exhaustive_{band / 1e6:g}mhz"
        out[key] = {"instances": int(gaps.size), "match_rate": float(np.mean(gaps <= 1e-9)),
                    "worst_gap": float(gaps.max())}
    return out


def cut_section(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n, cuts = 1000, np.arange(1, 12)
    block = 3 * 2 * 1.2e7 * 65 * 16 * 10
    act = 65 * 192 * 16 * 10 * 32.0
    kw = dict(cuts=cuts, device_flops=cuts * block, server_flops=(12 - cuts) * block,
              uplink_bits=act + cuts * 6e5, downlink_bits=act + cuts * 6e5,
              cpu_hz=rng.uniform(1e9, 3e9, n), flops_per_cycle=16.0, kappa=1e-28,
              server_flops_per_s=rng.uniform(5e9, 1e11, n), uplink_rate_bps=rng.uniform(1e5, 1e8, n),
              downlink_rate_bps=rng.uniform(1e6, 1e8, n), tx_power_w=0.2,
              energy_budget_j=rng.uniform(1.0, 50.0, n), deadline_s=np.inf)
    choose_cut_layer(**kw)
    t = best_of(lambda: choose_cut_layer(**kw), 20)
    chosen = choose_cut_layer(**kw).cut
    return {"n1000_c11_ms": 1e3 * t, "cut_counts": np.bincount(chosen, minlength=12)[1:].tolist()}


def genfv_section(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = 1000
    hist = rng.integers(0, 50, (n, 10)) + 1
    t_left = rng.uniform(0.0, 60.0, n)
    select_vehicles(t_left, 5.0, hist, hist.sum(axis=0), 100)
    t = best_of(lambda: select_vehicles(t_left, 5.0, hist, hist.sum(axis=0), 100), 20)
    return {"n1000_c10_ms": 1e3 * t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = {"machine": platform.machine(), "load_1min": os.getloadavg()[0]}
    result["sflam"] = sflam_section(args.quick, args.seed)
    print("sflam", json.dumps(result["sflam"]))
    result["cut_layer"] = cut_section(args.seed)
    print("cut_layer", json.dumps(result["cut_layer"]))
    result["genfv"] = genfv_section(args.seed)
    print("genfv", json.dumps(result["genfv"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
