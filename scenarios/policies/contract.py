"""What a policy is: the round's view it decides from, the decision it returns, and its class.

A policy is one class in one file, registered by name where it is defined
(:func:`scenarios.policies.registry.register_policy`). The co-simulation never asks which
policy it runs: it builds a :class:`RoundView` of the devices to plan, calls
:meth:`Policy.decide`, and trains and times what the :class:`Decision` says. Arrays of a view
and of a decision hold one entry per planned device, in the order of ``RoundView.devices``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from learning.costs import StepCost
from netsim.allocation import Allocation, AllocationProblem
from netsim.energy import compute_energy_j, compute_time_s
from netsim.reasons import Reason

#: ``step_cost_of(tokens, cut, bits)``: the learner's measured cost of one local step with
#: ``tokens`` patch tokens, cut after block ``cut`` and ``bits`` uplink bits per value (32:
#: float32; ``None``: the configured width).
StepCostOf = Callable[[int, int, "int | None"], StepCost]


@dataclass(frozen=True)
class CutCost:
    """What one round costs each device of a view at one cut, token budget and bit width.

    Attributes:
        device_time_s: ``[m]`` device compute time (forward and backward), s.
        device_energy_j: ``[m]`` device compute energy, J.
        server_time_s: ``[m]`` server compute time at the device's share of the server, s.
        downlink_time_s: ``[m]`` gradient downlink time at the view's downlink rate, s.
        uplink_bits: activation and label bits sent in the round (measured payloads).
        downlink_bits: gradient bits received in the round.
        adapter_bits: device adapters sent for aggregation (and received back), bits.
        device_flops: device FLOPs of the round.
        server_flops: server FLOPs of the round for this device.
    """

    device_time_s: np.ndarray
    device_energy_j: np.ndarray
    server_time_s: np.ndarray
    downlink_time_s: np.ndarray
    uplink_bits: float
    downlink_bits: float
    adapter_bits: float
    device_flops: float
    server_flops: float


@dataclass(frozen=True)
class RoundView:
    """What the round's planner sees about the ``m`` devices it may schedule.

    Attributes:
        devices: ``int [m]`` device ids.
        gain_lin: ``[m]`` planned uplink channel power gain (large-scale less the fading
            margin, by default; see ``PlanningConfig``).
        noise_psd_w_per_hz: receiver noise PSD, W/Hz.
        total_bandwidth_hz: the uplink band shared by the devices, Hz.
        max_power_w: ``[m]`` transmit power limits, W.
        energy_budget_j: ``[m]`` energy each device may spend this round (budget and
            battery), J.
        deadline_s: ``[m]`` time by which each device should finish (deadline, time left in the
            cell, planning margin), s.
        compute_time_s: ``[m]`` time of the round's work that does not depend on the token
            budget (device and server compute, gradient downlink), s.
        compute_energy_j: ``[m]`` device compute energy of that work, J.
        compute_time_per_token_s: ``[m]`` extra time per kept token, s.
        compute_energy_per_token_j: ``[m]`` extra device energy per kept token, J.
        bits_per_token: ``[m]`` uplink bits per kept token over the round's local steps.
        extra_tokens: token-equivalents sent besides the kept patches ([CLS], fused token,
            labels, quantiser side information).
        max_tokens: patch tokens per image, K_max.
        keep_ratio: the scenario's token share for fixed-ratio policies.
        rng: the allocation's own random stream (seeded from the run's seed).
        retention_of: returns ``[m, K_max + 1]`` semantic retention curves f_i(K); read
            :attr:`retention` instead (computed on first use, it runs the device model).
        cpu_hz: ``[m]`` device CPU frequency, Hz.
        flops_per_cycle: ``[m]`` device FLOPs per cycle.
        kappa: ``[m]`` effective switched capacitance, J / (cycle Hz^2).
        server_flops_per_s: the edge server's speed, FLOP/s.
        downlink_rate_bps: ``[m]`` downlink rate estimate over an equal share of the band, bit/s.
        local_steps: local steps per device per round.
        model_cut: the configured cut (blocks on the device).
        depth: transformer blocks of the model.
        time_left_s: ``[m]`` time until each device leaves the cell, s (``inf``: stays).
        expected_round_s: ``[m]`` the planner's estimate of the device's round at all tokens,
            full power and an equal share of the band, s.
        label_hists_of: returns ``[N, C]`` label counts of every device's data; read
            :attr:`label_hist` and :attr:`global_label_hist` instead (computed on first use).
        step_cost_of: the learner's measured step cost at any token budget, cut and bit
            width (:data:`StepCostOf`); use :meth:`cost_at`.
    """

    devices: np.ndarray
    gain_lin: np.ndarray
    noise_psd_w_per_hz: float
    total_bandwidth_hz: float
    max_power_w: np.ndarray
    energy_budget_j: np.ndarray
    deadline_s: np.ndarray
    compute_time_s: np.ndarray
    compute_energy_j: np.ndarray
    compute_time_per_token_s: np.ndarray
    compute_energy_per_token_j: np.ndarray
    bits_per_token: np.ndarray
    extra_tokens: float
    max_tokens: int
    keep_ratio: float
    rng: np.random.Generator
    retention_of: Callable[[], np.ndarray] = field(repr=False)
    cpu_hz: np.ndarray | None = None
    flops_per_cycle: np.ndarray | None = None
    kappa: np.ndarray | None = None
    server_flops_per_s: float = math.inf
    downlink_rate_bps: np.ndarray | None = None
    local_steps: int = 1
    model_cut: int = 0
    depth: int = 0
    time_left_s: np.ndarray | None = None
    expected_round_s: np.ndarray | None = None
    label_hists_of: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    step_cost_of: StepCostOf | None = field(default=None, repr=False)

    def cost_at(self, cut: int, tokens: int | None = None, bits: int | None = None) -> CutCost:
        """The round's cost of every device at ``cut``, ``tokens`` (default K_max) and ``bits``.

        From the learner's measured step cost (:attr:`step_cost_of`) and netsim's compute
        formulas; the server is shared equally by the view's devices (each gets
        ``server_flops_per_s / m``).
        """
        if self.step_cost_of is None or self.cpu_hz is None:
            raise ValueError("this view carries no step costs per cut (step_cost_of, cpu_hz)")
        step = self.step_cost_of(self.max_tokens if tokens is None else int(tokens), int(cut), bits)
        n = self.local_steps
        share = self.server_flops_per_s / max(1, self.num_devices)
        return CutCost(
            device_time_s=compute_time_s(n * step.device_flops, self.cpu_hz, self.flops_per_cycle),
            device_energy_j=compute_energy_j(n * step.device_flops, self.cpu_hz, self.flops_per_cycle, self.kappa),
            server_time_s=np.full(self.num_devices, n * step.server_flops / share),
            downlink_time_s=n * step.downlink_bits / self.downlink_rate_bps,
            uplink_bits=n * step.uplink_bits, downlink_bits=n * step.downlink_bits,
            adapter_bits=step.adapter_bits, device_flops=n * step.device_flops,
            server_flops=n * step.server_flops,
        )

    @property
    def num_devices(self) -> int:
        return int(self.devices.size)

    @functools.cached_property
    def retention(self) -> np.ndarray:
        """``[m, K_max + 1]`` retention curves, non-decreasing, f(0) = 0, f(K_max) = 1."""
        return np.asarray(self.retention_of(), dtype=float)

    @functools.cached_property
    def label_hist(self) -> np.ndarray | None:
        """``[m, C]`` label counts of each device's data (None when the view has none)."""
        return None if self.label_hists_of is None else np.asarray(self.label_hists_of())[self.devices]

    @functools.cached_property
    def global_label_hist(self) -> np.ndarray | None:
        """``[C]`` label counts over every device's data (None when the view has none)."""
        return None if self.label_hists_of is None else np.asarray(self.label_hists_of()).sum(axis=0)

    def problem(self) -> AllocationProblem:
        """The view as a :class:`netsim.allocation.AllocationProblem` (one token at least)."""
        return AllocationProblem(
            gain_lin=self.gain_lin, noise_psd_w_per_hz=self.noise_psd_w_per_hz,
            total_bandwidth_hz=self.total_bandwidth_hz, max_power_w=self.max_power_w,
            energy_budget_j=self.energy_budget_j, deadline_s=self.deadline_s,
            bits_per_token=self.bits_per_token, extra_tokens=self.extra_tokens,
            compute_time_s=self.compute_time_s, compute_energy_j=self.compute_energy_j,
            compute_time_per_token_s=self.compute_time_per_token_s,
            compute_energy_per_token_j=self.compute_energy_per_token_j,
            retention=self.retention, min_tokens=1,
        )


_STATUSES = frozenset(r.value for r in Reason if r != Reason.COMPLETED)


def _show(value: Any) -> str:
    """A number as a person writes it (``nan``, ``-0.2``, ``7``), not as numpy reprs it."""
    return repr(value.item() if isinstance(value, np.generic) else value)


class InvalidDecision(ValueError):
    """A policy's decision (or its ``decide()``) cannot be used; one line naming the policy
    and, where it is about one device, the device id. Bad input, not a bug: exit status 2."""


@dataclass(frozen=True)
class Decision:
    """What a policy decided for the ``m`` devices of its view.

    Attributes:
        tokens: ``int [m]`` patch tokens each device keeps per sample (1..K_max).
        bandwidth_hz: ``[m]`` uplink bandwidth, Hz (the sum over devices at most the band;
            a sequential schedule gives each device the whole band in turn).
        power_w: ``[m]`` transmit power, W.
        status: ``[m]`` :class:`netsim.reasons.Reason` per device: ``Reason.ALLOCATED`` to
            schedule it, otherwise why not (``DEADLINE``, ``ENERGY``, ``CAPACITY``, ...).
        planned_ste: the semantic transmission efficiency the plan expects (NaN: none).
        cut_layer: ``int [m]`` blocks each device runs, or ``None`` for the configured cut
            (a cut other than the configured one needs ``Policy.chooses_cut``).
        bits_per_value: ``int [m]`` uplink quantisation width of each device (32: float32),
            or ``None`` for the learner's configured width.
    """

    tokens: np.ndarray
    bandwidth_hz: np.ndarray
    power_w: np.ndarray
    status: np.ndarray
    planned_ste: float = math.nan
    cut_layer: np.ndarray | None = None
    bits_per_value: np.ndarray | None = None

    def check(self, view: RoundView, policy: "type[Policy] | Policy") -> None:
        """Refuse, in one line naming ``policy`` and the device id, anything the world or the
        learner would otherwise meet later.

        Checked: one entry per device of ``view`` in every array; no NaN or infinity; statuses
        from :class:`netsim.reasons.Reason` (not the empty "completed"); for a scheduled device
        (``ok``) an integer token budget in ``[1, K_max]``, otherwise in ``[0, K_max]``;
        bandwidth >= 0, each at most the band and (parallel schedule) their sum too; power in
        ``[0, p_max]``; cut layers integers in ``[0, depth]`` (the configured cut unless the
        policy ``chooses_cut``); bits per value in ``[1, 16]`` or 32.

        Raises:
            InvalidDecision: the first violation, as ``policy NAME: device ID: ...``.
        """
        name = policy.name
        m = view.num_devices

        def refuse(j: int | None, what: str) -> None:
            where = "" if j is None else f"device {int(view.devices[j])}: "
            raise InvalidDecision(f"policy {name}: {where}{what}")

        arrays = {}
        for field_name in ("tokens", "bandwidth_hz", "power_w", "status", "cut_layer", "bits_per_value"):
            value = getattr(self, field_name)
            if value is None and field_name in ("cut_layer", "bits_per_value"):
                continue
            arr = np.asarray(value, dtype=object if field_name == "status" else None)
            if arr.shape != (m,):
                refuse(None, f"Decision.{field_name} must hold one entry per device of the view ({m}), "
                             f"got shape {arr.shape}")
            if field_name != "status":
                if arr.dtype.kind not in "biuf":
                    refuse(None, f"Decision.{field_name} must be numbers, got dtype {arr.dtype}")
                bad = ~np.isfinite(arr.astype(float))
                if bad.any():
                    j = int(np.flatnonzero(bad)[0])
                    refuse(j, f"{field_name}={_show(arr[j])} is not a finite number")
            arrays[field_name] = arr
        ok = np.zeros(m, dtype=bool)
        for j, s in enumerate(arrays["status"]):
            if not isinstance(s, str) or s == Reason.COMPLETED or s not in _STATUSES:
                refuse(j, f"status={s!r} must be one of {', '.join(sorted(_STATUSES))}")
            ok[j] = s == Reason.ALLOCATED
        integers = {"tokens": (0, view.max_tokens), "cut_layer": (0, view.depth), "bits_per_value": (1, 32)}
        for field_name, (low, high) in integers.items():
            if field_name not in arrays:
                continue
            arr = arrays[field_name].astype(float)
            for j in range(m):
                lo = 1 if field_name == "tokens" and ok[j] else low
                if arr[j] != int(arr[j]) or not lo <= arr[j] <= high or (
                        field_name == "bits_per_value" and 16 < arr[j] < 32):
                    allowed = "[1, 16] or 32" if field_name == "bits_per_value" else f"[{lo}, {high}]"
                    refuse(j, f"{field_name}={_show(arrays[field_name][j])} must be an integer in {allowed}")
        if "cut_layer" in arrays and not policy.chooses_cut:
            other = np.flatnonzero(arrays["cut_layer"].astype(float) != view.model_cut)
            if other.size:
                j = int(other[0])
                refuse(j, f"cut_layer={_show(arrays['cut_layer'][j])} differs from the configured cut "
                          f"{view.model_cut}; "
                          f"a policy that chooses cuts sets chooses_cut = True")
        band = float(view.total_bandwidth_hz)
        bw, pw = arrays["bandwidth_hz"].astype(float), arrays["power_w"].astype(float)
        tol = 1e-6  # solvers meet the band and p_max to ~1e-12; this only forgives rounding
        for j in range(m):
            if not 0 <= bw[j] <= band * (1 + tol):
                refuse(j, f"bandwidth_hz={_show(bw[j])} must be in [0, {band:g}] (the band)")
            if not 0 <= pw[j] <= float(view.max_power_w[j]) * (1 + tol):
                refuse(j, f"power_w={_show(pw[j])} must be in [0, {float(view.max_power_w[j]):g}] (its p_max)")
        if policy.schedule == "parallel" and bw.sum() > band * (1 + tol):
            refuse(None, f"the bandwidths sum to {bw.sum():g} Hz, more than the band {band:g} Hz")

    @classmethod
    def everyone(cls, view: RoundView, bandwidth_hz: float, power_w: np.ndarray | float) -> "Decision":
        """Every device scheduled with all tokens, the same bandwidth and the given power."""
        m = view.num_devices
        return cls(tokens=np.full(m, view.max_tokens, dtype=int), bandwidth_hz=np.full(m, float(bandwidth_hz)),
                   power_w=np.broadcast_to(np.asarray(power_w, dtype=float), (m,)).copy(),
                   status=np.full(m, Reason.ALLOCATED.value, dtype=object))

    @classmethod
    def from_allocation(cls, alloc: Allocation) -> "Decision":
        """A :class:`netsim.allocation.Allocation` as a decision."""
        return cls(tokens=np.asarray(alloc.tokens, dtype=int), bandwidth_hz=np.asarray(alloc.bandwidth_hz, dtype=float),
                   power_w=np.asarray(alloc.power_w, dtype=float), status=np.asarray(alloc.status, dtype=object),
                   planned_ste=float(alloc.ste))


class Policy:
    """A policy: how the learner trains under it and how each round's radio is decided.

    Subclass it, set the class attributes, implement :meth:`decide`, and decorate the class
    with :func:`scenarios.policies.registry.register_policy`.

    Attributes:
        name: the name used in ``policy=...`` (lower case, dashes).
        label: display name in figures and tables.
        description: one line: what it does.
        reference: the paper it comes from ("" for none).
        strategy: the learner strategy (:data:`learning.strategies.STRATEGIES`):
            ``split-federated``, ``split-sequential``, ``federated`` or ``local``.
        token_policy: which tokens a device keeps (``semantic``, ``random``, ``norm``,
            ``all``), or ``None`` to use the learner's configured one.
        schedule: ``parallel`` (OFDMA, all at once) or ``sequential`` (devices take turns).
        plans_tokens: the decision chooses token budgets from the retention curves (the
            round's realised STE and token maps are recorded).
        chooses_cut: the decision may cut each device after its own block
            (``Decision.cut_layer``): the learner puts adapters in every block.
        params_type: the policy's parameters: a frozen dataclass beside the policy, every
            field with a default and ``metadata={"help": ..., "unit": ...}``, checked in its
            ``__post_init__``; or ``None`` for none. The scenario config holds one instance,
            for the chosen policy only, set as ``--set <name>.<field>=...``.
        default: the policy a scenario runs unless it says otherwise (exactly one has it).

    Args:
        params: the policy's parameters (an instance of ``params_type``), or ``None`` for
            its defaults.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    reference: ClassVar[str] = ""
    strategy: ClassVar[str] = "split-federated"
    token_policy: ClassVar[str | None] = None
    schedule: ClassVar[str] = "parallel"
    plans_tokens: ClassVar[bool] = True
    chooses_cut: ClassVar[bool] = False
    params_type: ClassVar[type | None] = None
    default: ClassVar[bool] = False

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None or self.params_type is None else self.params_type()

    @classmethod
    def from_config(cls, config: Any) -> "Policy":
        """The policy with its parameters read from the scenario config (``policy_params``)."""
        return cls(config.policy_params)

    @classmethod
    def check_config(cls, config: Any, depth: int) -> None:
        """Limits of this policy's parameters that depend on the rest of the config (checked
        before a run starts; ``depth``: the model's transformer blocks). Raise ValueError
        naming the key and the value. Default: none."""

    def decide(self, view: RoundView) -> Decision:
        """Tokens, bandwidth, power and status of every device of ``view``."""
        raise NotImplementedError
