"""Why a device stopped (or never started) in a round: one vocabulary for all of netsim.

The World's outcomes and trace rows, the allocation's per-device status and the
mobility-aware selection all speak of the same events, so they use the same strings.
:class:`Reason` is a :class:`enum.StrEnum`: a member *is* its string (``Reason.DEADLINE ==
"deadline"``), so code and files that hold plain strings keep working.

``Reason.COMPLETED`` is the empty string, the value the trace's ``reason`` column has always
held for a phase that ran to its end; being empty it is also falsy, so ``if reason:`` reads
"if the device was stopped". ``Reason.ALLOCATED`` (``"ok"``) is not a stop: it is the status
of a device the allocation serves, before the round runs.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a device stopped in a round, or why it was not part of it."""

    #: Ran every phase to its end (the empty string: nothing stopped it).
    COMPLETED = ""
    #: Status of a device the allocation serves (the round has not run yet).
    ALLOCATED = "ok"
    #: Its deadline came first (in the World), or it cannot meet it even alone with the
    #: whole band at maximum power (in the allocation).
    DEADLINE = "deadline"
    #: Its energy budget for the round is spent, or cannot cover the round.
    ENERGY = "energy"
    #: Its battery is empty, or would be emptied before the phase ends.
    BATTERY = "battery"
    #: It is outside the cell, or would leave it before its round can finish.
    LEFT_CELL = "left-cell"
    #: Feasible alone, but the band cannot serve it together with the others.
    CAPACITY = "capacity"
    #: Left out by the policy's schedule this round.
    NOT_SCHEDULED = "not-scheduled"
    #: Not drawn in the round's random sample of devices.
    NOT_SAMPLED = "not-sampled"
    #: Changed cell during the round and was dropped (handover policy ``drop``).
    HANDOVER = "handover"

