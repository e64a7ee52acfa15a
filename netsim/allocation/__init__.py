"""Token budget, bandwidth and power for each device of a split federated LoRA round.

The problem (ST-SFLora: Qiang, Chang & Min, "Semantic-aware Token Selection and Resource
Optimization for Communication-efficient Split Federated Fine-tuning in Edge Intelligence",
arXiv:2605.26120, 2026). For N devices with channel power gain g_i, noise PSD N0, uplink
band W, power limit p_max_i, energy budget e_i, deadline D_i (which includes the time left
in the cell), uplink bits per token beta_i, compute time c_i and energy eps_i of the device's
own work for the round (optionally plus c'_i K and eps'_i K per kept token), retention
curves f_i(K), K = 0..K_max (non-decreasing, f_i(0) = 0), choose for each device

    tokens K_i (integer in [min_tokens, K_max]), bandwidth b_i > 0 with sum_i b_i <= W,
    power 0 < p_i <= p_max_i,

with

    rate     R_i = b_i log2(1 + p_i g_i / (N0 b_i))
    payload  S_i = beta_i (K_i + extra_tokens)
    latency  T_i = c_i + S_i / R_i                  <= D_i
    energy   E_i = eps_i + p_i S_i / R_i            <= e_i

to maximise the Semantic Transmission Efficiency

    STE = sum_i f_i(K_i) / max_i T_i.

R is jointly concave and increasing in (b, p). Since STE divides by the *largest* latency,
finishing a device early buys nothing: at the optimum all devices finish at a common
latency tau (or at their deadline, if earlier).

ST-SFLora's rule (:func:`max_ste`) alternates three steps; the paper solves the
mixed-integer problem by alternating optimisation, and the way each step is solved here is
derived in this package (the paper's closed forms were not available to us):

(a) power, for given tokens and bandwidth: the transmission energy p S / R(b, p) grows with
    p while the latency falls, so the fastest transmission within the energy budget uses the
    largest p <= p_max meeting it; for a given transmission time t this is P = min(p_max,
    e / t) (``radio.max_power_for_energy_w``, ``radio.bandwidth_for_time_hz``).
(b) bandwidth, for given tokens and powers: min-max latency. Each device's least bandwidth
    B_i(T) to finish by T is decreasing in T, so the common tau with
    sum_i B_i(min(tau, D_i)) = W is a one-dimensional root: bisection in principle; here a
    safeguarded Newton step with the analytic slope (``core.exact_radio``, ~7 steps to
    1e-12) and, for many token vectors at once, Illinois regula falsi
    (``core.batch_round_latency_s``).
    With (a) inside, this is the exact optimal radio allocation for the tokens (the problem
    in (b, p) is convex; tests check it against a conic solver).
(c) tokens, for the common tau: with B_i(K, tau) from (a)+(b), choosing K is a
    multiple-choice knapsack max sum f_i(K_i) s.t. sum B_i(K_i, tau) <= W, solved by the
    greedy on incremental efficiencies (``rules.greedy_tokens``).

The fractional objective is handled by an outer search on tau (a coarse geometric grid on a
ladder of every 4th budget, then two finer grids around the best), each tau giving tokens by
(c) whose F / tau is a lower bound of their STE; the best candidates (for N <= 16 re-timed by
(a)+(b) first) and the two end points "all at min_tokens" and "all at the most each can
send" get the exact radio allocation, and the best is kept. For N <= 6 a local search on
integer token vectors (one device's budget, or two devices' within +-3) closes the
integrality gap. The greedy's integrality loss is at most one token step per tau, so it
fades as N grows. Everything is vectorised over devices,
token budgets and candidate latencies.

Other rules, plain functions with the arguments they need: :func:`fixed_tokens` (given
budgets, optimal radio; K_max for every device sends all tokens), :func:`random_tokens` (K
uniform from ``rng``, optimal radio), :func:`equal_share` (given budgets, W / N each, max
power reduced only to meet the energy budget). Reference: :func:`exhaustive` (every integer
token vector, exact radio). No rule knows a policy name: the policies of
``scenarios.policies`` call the rule they need.

Devices that cannot meet their deadline or energy even alone with the whole band at
K = min_tokens are excluded with status "deadline" or "energy"; if the rest cannot all be
served at K = min_tokens, those needing the most bandwidth are excluded ("capacity"). A
baseline whose fixed tokens a device cannot send is likewise reported per device. No
returned number is NaN and every "ok" device has b_i > 0 and p_i > 0.

Whole resource blocks: ``round_to_rbs`` (:mod:`.rb_rounding`) rounds a continuous solution's
bandwidths to blocks without exceeding the band, repairing deadlines where blocks can move.
"""

from netsim.reasons import Reason

from .exhaustive import exhaustive
from .instances import random_problem, random_retention
from .problem import Allocation, AllocationProblem
from .rb_rounding import RbAllocation, round_to_rbs
from .rules import equal_share, fixed_tokens, max_ste, random_tokens
from .selection import select_by_dwell

__all__ = [
    "Allocation",
    "AllocationProblem",
    "RbAllocation",
    "Reason",
    "equal_share",
    "exhaustive",
    "fixed_tokens",
    "max_ste",
    "random_problem",
    "random_retention",
    "random_tokens",
    "round_to_rbs",
    "select_by_dwell",
]
