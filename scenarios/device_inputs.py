"""What a policy may see besides the radio: hardware, dwell, labels and step costs per cut.

The planner's :class:`scenarios.policies.RoundView` holds the channel, the limits and the
compute costs at the configured cut. Policies that choose a cut per device (adaptive split),
a bit width (quantised uploads) or the participants (dwell time and label skew) need more:
each device's CPU, its capacitance, the server's speed, a downlink rate, how long it stays in
the cell, its label histogram, and the learner's measured step cost at any cut, token budget
and bit width. :func:`with_device_inputs` adds them to every view; what costs something (the
step cost at another cut or width, the label histograms) is computed only when a policy reads it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from learning.costs import StepCost
from learning.federated import Learner
from netsim.ofdma import OfdmaConfig
from netsim.world import ChannelState
from scenarios.costs import CostModel
from scenarios.planning import downlink_rate_estimate, estimated_round_s
from scenarios.policies import RoundView


def with_device_inputs(view: RoundView, state: ChannelState, learner: Learner, costs: CostModel,
                       radio: OfdmaConfig, gain: np.ndarray) -> RoundView:
    """``view`` with the hardware, dwell, label and per-cut cost inputs of its devices.

    Args:
        view: the planner's view of the devices ``view.devices``.
        state: the world's state at the round start.
        learner: the learner (label histograms, measured step costs).
        costs: the round's cost model (for the expected round duration).
        radio: the cell's OFDMA settings.
        gain: ``[N]`` the planned gain of every device.

    Returns:
        A new view (the original is frozen); its ``step_cost_of`` measures on first use (the
        learner caches each shape) and its label histograms are counted on first use.
    """
    idx = view.devices
    strategy = learner.strategy
    expected = estimated_round_s(state, gain, costs, radio, strategy.communicates, strategy.split)
    batch = learner.config.batch_size

    def step_cost_of(tokens: int, cut: int, bits: int | None) -> StepCost:
        return learner.step_cost(tokens, batch, cut=cut, bits=bits)

    return dataclasses.replace(
        view,
        cpu_hz=np.asarray(state.cpu_hz, dtype=float)[idx],
        flops_per_cycle=np.asarray(state.flops_per_cycle, dtype=float)[idx],
        kappa=np.asarray(state.kappa, dtype=float)[idx],
        server_flops_per_s=float(state.server_flops_per_s),
        downlink_rate_bps=downlink_rate_estimate(state, idx, radio),
        local_steps=int(learner.config.local_steps),
        model_cut=int(learner.model_config.cut),
        depth=int(learner.model.depth),
        time_left_s=np.asarray(state.time_left_s, dtype=float)[idx],
        expected_round_s=np.asarray(expected, dtype=float)[idx],
        label_hists_of=learner.label_histograms,
        step_cost_of=step_cost_of,
    )
