"""What a device is asked to do in a round: compute and transfer phases, and its radio.

A :class:`DevicePlan` is the World's whole input for one device in one round: its phases in
order (:class:`Compute` on the device or the edge server, :class:`Transfer` over the uplink or
the downlink) and the bandwidth and power its transfers use. Plans are checked when built.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Phase names of a split-learning round (the ``phase`` column of the trace).
PHASE_NAMES = (
    "device_forward",
    "uplink",
    "server",
    "downlink",
    "device_backward",
    "adapter_uplink",
    "adapter_downlink",
)


def _check_name(name: str) -> None:
    if name not in PHASE_NAMES:
        raise ValueError(f"name must be one of {PHASE_NAMES}, got {name!r}")


@dataclass(frozen=True)
class Compute:
    """A compute phase: ``flops`` on the device's CPU or on the edge server.

    Attributes:
        name: One of :data:`PHASE_NAMES`.
        flops: Work in FLOPs (>= 0).
        where: ``"device"`` or ``"server"``.
        step: Local step index, copied into the trace (-1: not part of a step).
    """

    name: str
    flops: float
    where: str = "device"
    step: int = -1

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.flops >= 0:
            raise ValueError(f"flops must be >= 0, got {self.flops!r}")
        if self.where not in ("device", "server"):
            raise ValueError(f"where must be 'device' or 'server', got {self.where!r}")


@dataclass(frozen=True)
class Transfer:
    """A transfer phase: ``bits`` over the uplink (device power) or the downlink (BS power).

    Attributes:
        name: One of :data:`PHASE_NAMES`.
        bits: Payload in bits (>= 0).
        direction: ``"uplink"`` or ``"downlink"``.
        step: Local step index, copied into the trace (-1: not part of a step).
    """

    name: str
    bits: float
    direction: str = "uplink"
    step: int = -1

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.bits >= 0:
            raise ValueError(f"bits must be >= 0, got {self.bits!r}")
        if self.direction not in ("uplink", "downlink"):
            raise ValueError(f"direction must be 'uplink' or 'downlink', got {self.direction!r}")


@dataclass(frozen=True)
class DevicePlan:
    """What one device does in a round: its phases in order, with its radio resources.

    Attributes:
        device: Device index in ``[0, num_devices)``.
        phases: :class:`Compute` and :class:`Transfer` phases, run in order.
        bandwidth_hz: Uplink and downlink bandwidth of the device in Hz.
        power_w: Uplink transmit power in W (at most the device's maximum).
        tokens_kept: Token budget, copied into the trace.
        server_state_bits: Bits of the device's server-side state (its copy of the server
            adapters) moved to the new edge server if it changes cell during the round.
    """

    device: int
    phases: tuple
    bandwidth_hz: float
    power_w: float
    tokens_kept: int = 0
    server_state_bits: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        for phase in self.phases:
            if not isinstance(phase, (Compute, Transfer)):
                raise ValueError(f"phases must hold Compute or Transfer, got {phase!r}")
        if not self.bandwidth_hz >= 0:
            raise ValueError(f"bandwidth_hz must be >= 0, got {self.bandwidth_hz!r}")
        if not self.power_w >= 0:
            raise ValueError(f"power_w must be >= 0, got {self.power_w!r}")
        if not self.server_state_bits >= 0:
            raise ValueError(f"server_state_bits must be >= 0, got {self.server_state_bits!r}")
