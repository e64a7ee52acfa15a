"""SFLAM: bits per value, bandwidth and power chosen jointly for quantised split uploads.

Source: "Deploying Large AI Models on Resource-Limited
Devices with Split Federated Learning" (SFLAM), arXiv:2504.09114, IEEE TMC 2026. The device
holds only the patch embedding (cut 0) and uploads quantised activations; each round the
bits per value b_i, transmit power p_i and bandwidth w_i are chosen jointly to cut the round
latency under energy limits (the paper: block coordinate descent with successive convex
approximation and matching).

**Reconstruction.** The paper's full text (its objective weights, convergence bound and
closed forms) was not available to us; this module is rebuilt from its problem statement.

Problem, for N devices (channel gain g_i, noise PSD N0, band W, power limit p_max_i, energy
budget e_i, deadline D_i, a discrete set of bit widths L):

    payload   S_i(b) = steps_i (V_i b + H_i [b < 32])            bits
    latency   T_i    = c_i + S_i(b_i) / R_i(w_i, p_i)            (c_i: compute + fixed terms)
    energy    E_i    = eps_i + p_i S_i(b_i) / R_i(w_i, p_i)  <= e_i
    minimise  J = max_i T_i + lambda * mean_i D(b_i)
    s.t.      sum_i w_i <= W,  0 < p_i <= p_max_i,  T_i <= D_i,  b_i in L,

with R the Shannon rate (``radio.rate_bps``), V_i the values sent per training step, H_i the
quantiser's side information per step (the per-token minimum and step of the learner's
min-max quantiser; none at 32 bits, the unquantised float32), and

    D(b) = (2^b - 1)^(-2)    (0 at b = 32)

the mean squared error of a uniform b-bit quantiser over a range r, Delta^2 / 12 with
Delta = r / (2^b - 1), normalised by r^2 / 12 (the variance of a value uniform over the
range): the inverse signal-to-quantisation-noise ratio, ~4^(-b) (Gersho & Gray, "Vector
Quantization and Signal Compression", 1992, ch. 5). Minimising latency alone would always
pick the fewest bits; the accuracy side must be in the objective. We chose the weighted form
(``distortion_weight_s`` = lambda, seconds of round latency worth one unit of normalised
distortion) over a constraint mean D <= D_max because convergence bounds under activation
quantisation add the quantisation variance as an additive error term, so a multi-objective
latency + lambda x variance is their natural scalarisation; sweeping lambda traces the convex
hull of the latency/distortion Pareto front.

Solver (``method="bcd"``): block coordinate descent over the blocks (b_1), ..., (b_N) and
the radio (w, p). The radio block is solved exactly for each bit vector: for fixed payloads
the min-max radio is convex and ``core.exact_radio`` / ``core.batch_round_latency_s`` give
its optimum (common latency tau, power min(p_max, e / t)); this replaces the paper's SCA,
which converges to the same optimum of the convex block. Each bits block is a discrete step:
the one change of one device's bits (with the radio re-solved) that lowers J most, until no
change lowers it (a fixed point). The start comes from a Lagrangian view of the bits: for a
common latency tau the best bits minimise mean D subject to sum_i B_i(b_i, tau) <= W, a
multiple-choice knapsack solved by ``policies.greedy_tokens`` over a geometric grid of tau.
``method="exhaustive"`` is the reference: every bit vector in L^N with its exact radio.

Differences from the paper: no convergence-bound constants (lambda is an argument); the
matching step (device-to-subchannel) is replaced by a continuous bandwidth split; the radio
block is exact instead of SCA; bits are chosen per device per round from a given set.
Devices that cannot meet their deadline or energy even alone with the whole band at the
fewest bits are excluded ("deadline" / "energy"); if the band cannot carry the rest at the
fewest bits, those needing the most bandwidth are excluded ("capacity"), as the other rules do.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace

import numpy as np

from netsim.reasons import Reason

from .core import Prepared, batch_round_latency_s, exact_radio, prepare, screen
from .rules import greedy_tokens
from .problem import Allocation, AllocationProblem, _check_all, _frozen_array
from .radio import rate_bps

#: Bit width of the unquantised float32 payload (no quantiser side information).
FLOAT_BITS = 32
#: Default bit widths to choose from.
DEFAULT_BIT_LEVELS = (2, 4, 8, 16)


def quantisation_distortion(bits_per_value) -> np.ndarray:
    """Normalised MSE of a uniform b-bit quantiser, (2^b - 1)^-2; 0 for b >= 32 (float32).

    Args:
        bits_per_value: array of bit widths, any shape, >= 1.

    Returns:
        D(b), same shape (dimensionless; 1 = the variance of a value uniform on the range).
    """
    b = np.asarray(bits_per_value, dtype=float)
    return np.where(b >= FLOAT_BITS, 0.0, (np.exp2(np.minimum(b, FLOAT_BITS)) - 1.0) ** -2.0)


@dataclass(frozen=True, eq=False)
class SflamProblem:
    """One round of SFLAM's joint bits / bandwidth / power problem (SI units).

    Args:
        gain_lin: ``[N]`` channel power gain, > 0.
        noise_psd_w_per_hz: noise PSD N0, W/Hz, > 0.
        total_bandwidth_hz: uplink band W, Hz, > 0.
        max_power_w: ``[N]`` (or scalar) power limit, W, > 0.
        energy_budget_j: ``[N]`` (or scalar) energy budget for the round, J, > 0.
        deadline_s: ``[N]`` (or scalar) deadline, s, > 0.
        values_per_step: ``[N]`` (or scalar) activation values uploaded per step, > 0.
        header_bits_per_step: ``[N]`` (or scalar) quantiser side information per step, bits,
            >= 0 (per-token minimum and step: tokens x 64 for float32 pairs).
        steps: ``[N]`` (or scalar) training steps in the round, > 0.
        distortion_weight_s: lambda, s per unit of mean normalised distortion, >= 0.
        compute_time_s: ``[N]`` (or scalar) device compute time of the round, s, >= 0.
        compute_energy_j: ``[N]`` (or scalar) device compute energy of the round, J, >= 0.
        fixed_time_s: ``[N]`` (or scalar) other time on the device's critical path (server,
            downlink), s, >= 0; no device energy.
        bit_levels: allowed bits per value, strictly increasing integers in [1, 32].
        tokens: tokens each served device sends per sample (all of them: cut 0 keeps every
            token); only carried into the result.

    Raises:
        ValueError: naming the field and the value.
    """

    gain_lin: np.ndarray
    noise_psd_w_per_hz: float
    total_bandwidth_hz: float
    max_power_w: np.ndarray
    energy_budget_j: np.ndarray
    deadline_s: np.ndarray
    values_per_step: np.ndarray
    header_bits_per_step: np.ndarray
    steps: np.ndarray
    distortion_weight_s: float
    compute_time_s: np.ndarray = field(default=0.0)
    compute_energy_j: np.ndarray = field(default=0.0)
    fixed_time_s: np.ndarray = field(default=0.0)
    bit_levels: tuple[int, ...] = DEFAULT_BIT_LEVELS
    tokens: int = 0

    def __post_init__(self) -> None:
        gain = np.array(self.gain_lin, dtype=float)
        if gain.ndim != 1 or gain.size == 0:
            raise ValueError(f"gain_lin must be a non-empty 1-D array, got shape {gain.shape}")
        n = gain.size
        for name, strict in (("gain_lin", True), ("max_power_w", True),
                             ("energy_budget_j", True), ("deadline_s", True),
                             ("values_per_step", True), ("header_bits_per_step", False),
                             ("steps", True), ("compute_time_s", False),
                             ("compute_energy_j", False), ("fixed_time_s", False)):
            arr = _frozen_array(name, getattr(self, name), n)
            _check_all(name, arr, arr > 0 if strict else arr >= 0, "> 0" if strict else ">= 0")
            object.__setattr__(self, name, arr)
        for name, low in (("noise_psd_w_per_hz", 0.0), ("total_bandwidth_hz", 0.0)):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > low):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        lam = float(self.distortion_weight_s)
        if not (np.isfinite(lam) and lam >= 0):
            raise ValueError(f"distortion_weight_s must be finite and >= 0, got {lam!r}")
        object.__setattr__(self, "distortion_weight_s", lam)
        levels = tuple(self.bit_levels)
        if (not levels or any(isinstance(b, bool) or int(b) != b or not 1 <= b <= FLOAT_BITS
                              for b in levels) or list(levels) != sorted(set(levels))):
            raise ValueError(
                f"bit_levels must be strictly increasing integers in [1, 32], got {levels!r}")
        object.__setattr__(self, "bit_levels", tuple(int(b) for b in levels))
        if isinstance(self.tokens, bool) or int(self.tokens) != self.tokens or self.tokens < 0:
            raise ValueError(f"tokens must be an integer >= 0, got {self.tokens!r}")

    @property
    def num_devices(self) -> int:
        """N, the number of devices."""
        return self.gain_lin.size

    def payload_bits(self, bits_per_value) -> np.ndarray:
        """S_i(b) = steps_i (V_i b + H_i [b < 32]), bits; ``bits_per_value`` broadcasts with [N]."""
        b = np.asarray(bits_per_value, dtype=float)
        header = np.where(b < FLOAT_BITS, self.header_bits_per_step, 0.0)
        return self.steps * (self.values_per_step * b + header)

    def level_problem(self, bits_per_value: int) -> AllocationProblem:
        """The fixed-payload radio problem with every device at ``bits_per_value``.

        One "token" of ``bits_per_token`` = S_i(b) bits (K = 1, no extra tokens), so the
        screening and the exact radio of :mod:`netsim.allocation.core` apply unchanged.
        """
        n = self.num_devices
        return AllocationProblem(
            gain_lin=self.gain_lin, noise_psd_w_per_hz=self.noise_psd_w_per_hz,
            total_bandwidth_hz=self.total_bandwidth_hz, max_power_w=self.max_power_w,
            energy_budget_j=self.energy_budget_j, deadline_s=self.deadline_s,
            bits_per_token=self.payload_bits(np.full(n, bits_per_value)),
            retention=np.tile([0.0, 1.0], (n, 1)),
            compute_time_s=self.compute_time_s + self.fixed_time_s,
            compute_energy_j=self.compute_energy_j, extra_tokens=0, min_tokens=1,
        )


@dataclass(frozen=True, eq=False)
class BitsAllocation(Allocation):
    """An :class:`Allocation` with SFLAM's bit widths (excluded devices: zeros).

    ``tokens`` is the full token count of each served device, ``retention`` 1 for served
    devices (every token is sent) and ``ste`` = served devices / round latency.

    Attributes:
        bits_per_value: ``[N]`` int, b_i (0 if excluded).
        payload_bits: ``[N]`` S_i(b_i), bits.
        distortion: ``[N]`` D(b_i).
        objective: J = round latency + lambda x mean over served devices of D(b_i), s.
    """

    bits_per_value: np.ndarray
    payload_bits: np.ndarray
    distortion: np.ndarray
    objective: float


def _prepare_levels(problem: SflamProblem) -> tuple[Prepared, list[str]]:
    """Screen at the fewest bits, then one prepared column per bit level (``ks`` = levels)."""
    levels = problem.bit_levels
    prep, status = screen(problem.level_problem(levels[0]))
    cols = [prep] + [prepare(problem.level_problem(b), prep.idx) for b in levels[1:]]
    stack = lambda name: np.hstack([getattr(c, name) for c in cols])  # noqa: E731
    d = quantisation_distortion(levels)
    # [n, L] distortion removed relative to the fewest bits (non-decreasing in b).
    gain = np.broadcast_to(d[0] - d, (prep.n, len(levels))).copy()
    return replace(
        prep, ks=np.asarray(levels), payload_bits=stack("payload_bits"),
        compute_time_s=stack("compute_time_s"), tx_energy_j=stack("tx_energy_j"),
        retention=gain, alone_latency_s=stack("alone_latency_s"),
        alone_reason=stack("alone_reason"),
    ), list(status)


def _objective_s(prep: Prepared, kidx: np.ndarray, lam: float, tau_s: np.ndarray) -> np.ndarray:
    """J = tau + lambda mean_i D(b_i) for bit-level indices ``kidx[..., n]``."""
    mean_d = quantisation_distortion(prep.ks[kidx]).mean(axis=-1)
    return tau_s + lam * mean_d


def _exact_tau_s(prep: Prepared, kidx: np.ndarray) -> np.ndarray:
    return batch_round_latency_s(prep, kidx, iterations=100, newton_steps=3, rtol=1e-12)


def _bcd(prep: Prepared, lam: float, grid_points: int, max_sweeps: int):
    n, levels = prep.n, prep.ks.size
    lowest = np.zeros(n, dtype=np.intp)
    tau_lo = exact_radio(prep, lowest)[0]
    # Most bits each device could send alone (alone latency grows with the payload).
    k_cap = np.isfinite(prep.alone_latency_s).sum(axis=1) - 1
    tau_cap = float(_exact_tau_s(prep, k_cap[None])[0])
    tau_hi = tau_cap if np.isfinite(tau_cap) else float(prep.deadline_s.max())
    cands = [lowest[None], k_cap[None]]
    if tau_hi > tau_lo * (1 + 1e-9):
        kidx, _, fits = greedy_tokens(prep, np.geomspace(tau_lo, tau_hi, grid_points))
        cands.append(kidx[fits])
    cand = np.unique(np.vstack(cands), axis=0)
    score = _objective_s(prep, cand, lam, _exact_tau_s(prep, cand))
    best = int(np.argmin(score))
    kidx, j_best = cand[best], float(score[best])
    evaluated = cand.shape[0]
    for _ in range(max_sweeps):
        # [n * L, n] every single-device change of bits, each with its exact radio.
        moves = np.repeat(kidx[None], n * levels, axis=0)
        moves[np.arange(n * levels), np.repeat(np.arange(n), levels)] = np.tile(
            np.arange(levels), n)
        # Rank the moves with a coarse radio (~1e-6), then time the best few exactly.
        coarse = batch_round_latency_s(prep, moves, iterations=30, newton_steps=1, rtol=1e-6)
        coarse = _objective_s(prep, moves, lam, coarse)
        top = moves[np.argsort(coarse, kind="stable")[:4]]
        # Also apply several devices' best moves at once (prefixes of the most promising),
        # so that a large instance needs few sweeps.
        per_dev = coarse.reshape(n, levels)
        gainers = np.flatnonzero(per_dev.min(axis=1) < j_best)
        gainers = gainers[np.argsort(per_dev[gainers].min(axis=1), kind="stable")]
        if gainers.size > 1:
            # [G - 1, n] the first m = 2..G of those moves applied together.
            applied = np.arange(gainers.size)[None, :] < np.arange(2, gainers.size + 1)[:, None]
            prefix = np.repeat(kidx[None], gainers.size - 1, axis=0)
            prefix[:, gainers] = np.where(applied, per_dev[gainers].argmin(axis=1), kidx[gainers])
            top = np.vstack([top, prefix])
        score = _objective_s(prep, top, lam, _exact_tau_s(prep, top))
        best = int(np.argmin(score))
        evaluated += moves.shape[0]
        if not score[best] < j_best * (1 - 1e-12):
            break
        kidx, j_best = top[best], float(score[best])
    return kidx, evaluated


def _exhaustive(prep: Prepared, lam: float, max_vectors: int):
    n, levels = prep.n, prep.ks.size
    if levels**n > max_vectors:
        raise ValueError(f"exhaustive needs {levels}**{n} = {levels**n} bit vectors, more than "
                         f"max_vectors={max_vectors}")
    # [L ** n, n] every bit-level vector.
    cand = np.array(list(itertools.product(range(levels), repeat=n)), dtype=np.intp)
    score = _objective_s(prep, cand, lam, _exact_tau_s(prep, cand))
    return cand[int(np.argmin(score))], cand.shape[0]


def solve_sflam(
    problem: SflamProblem, method: str = "bcd", *, grid_points: int = 12,
    max_sweeps: int = 50, max_vectors: int = 200_000,
) -> BitsAllocation:
    """Bits per value, bandwidth and power for one SFLAM round.

    Args:
        problem: the round's :class:`SflamProblem`.
        method: ``"bcd"`` (block coordinate descent, see the module docstring) or
            ``"exhaustive"`` (every bit vector with its exact radio; small N only).
        grid_points: common latencies of the knapsack start.
        max_sweeps: safeguard on the number of descent steps.
        max_vectors: size limit of ``"exhaustive"``.

    Returns:
        The :class:`BitsAllocation`: every served device meets its deadline and energy
        budget, the bandwidths sum to at most W, 0 < p_i <= p_max_i. ``iterations`` counts
        the bit vectors whose exact radio was computed.

    Raises:
        ValueError: unknown method; exhaustive beyond ``max_vectors``.
    """
    t0 = time.perf_counter()
    if method not in ("bcd", "exhaustive"):
        raise ValueError(f"method must be 'bcd' or 'exhaustive', got {method!r}")
    prep, status = _prepare_levels(problem)
    lam = problem.distortion_weight_s
    kidx, evaluated = np.zeros(0, dtype=np.intp), 0
    if prep.n and method == "bcd":
        kidx, evaluated = _bcd(prep, lam, grid_points, max_sweeps)
    elif prep.n:
        kidx, evaluated = _exhaustive(prep, lam, max_vectors)
    return _build(problem, prep, status, kidx, evaluated, time.perf_counter() - t0)


def _build(problem: SflamProblem, prep: Prepared, status: list[str], kidx: np.ndarray,
           evaluated: int, solve_time_s: float) -> BitsAllocation:
    """The record, latency and energy from the forward model (not from the solver)."""
    n = problem.num_devices
    idx = prep.idx
    zeros = lambda dtype=float: np.zeros(n, dtype=dtype)  # noqa: E731
    bits, bw, pw, payload, rate = zeros(np.int64), zeros(), zeros(), zeros(), zeros()
    latency, energy, distortion = zeros(), zeros(), zeros()
    iterations = evaluated
    if idx.size:
        _, b_sub, p_sub, it = exact_radio(prep, kidx)
        iterations += it
        bits[idx], bw[idx], pw[idx] = prep.ks[kidx], b_sub, p_sub
        payload[idx] = problem.payload_bits(bits)[idx]
        rate[idx] = rate_bps(b_sub, p_sub, problem.gain_lin[idx], problem.noise_psd_w_per_hz)
        airtime = payload[idx] / rate[idx]
        latency[idx] = problem.compute_time_s[idx] + problem.fixed_time_s[idx] + airtime
        energy[idx] = problem.compute_energy_j[idx] + p_sub * airtime
        distortion[idx] = quantisation_distortion(bits[idx])
    ok = zeros(bool)
    ok[idx] = True
    round_latency = float(latency.max()) if idx.size else 0.0
    mean_d = float(distortion[idx].mean()) if idx.size else 0.0
    return BitsAllocation(
        rule="bits-power-bandwidth", tokens=np.where(ok, problem.tokens, 0).astype(np.int64),
        bandwidth_hz=bw, power_w=pw, rate_bps=rate, latency_s=latency, energy_j=energy,
        retention=ok.astype(float), status=tuple(status),
        ste=float(idx.size / round_latency) if idx.size else 0.0,
        round_latency_s=round_latency, iterations=int(iterations), solve_time_s=solve_time_s,
        bits_per_value=bits, payload_bits=payload, distortion=distortion,
        objective=round_latency + problem.distortion_weight_s * mean_d if idx.size else 0.0,
    )
