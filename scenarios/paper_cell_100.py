"""Paper cell at the paper's scale: 100 pedestrians, half active per round, 100 rounds; each device ~100 samples.

Everything as ``paper-cell`` (:mod:`scenarios.paper_cell`: the cell, channel, radio, energy
budgets, planning, backbone and learning settings) except the device count, which is the
ST-SFLora paper's (100), and the number of rounds (100), enough for the learning curve to
settle. The devices share the same private pool of 10 000 Fashion-MNIST training images (the
other 50 000 pretrained the shipped backbone), so a device holds about 100 of them (48-250 by the
Dirichlet(0.5) label split, seed 0) instead of 500; with 2 local steps of 16 a device sees its
data about 16 times over the run, which is where computing the frozen device part once per
sample pays (:mod:`learning.sample_cache`: the pool's rows take 343 MB).

A round's 50 devices are trained together (``learner.batched=true``, :mod:`learning.batched`,
off in the other scenarios): with ~16 passes over each device's data the device part computed
once per sample saves more than the batched server part costs on a CPU. Measured (synthetic
data of the same geometry, 100 devices of 100 samples, 50 per round, 1 torch thread on 2 cores
at load 7-10, CPU time of training per device-round): the per-device loop 122-129 ms every
round; batched 146 ms in round 0, 102 ms in round 7 as samples recur (9 295 forwards for 12 800
served after 8 rounds, 304 MB), the same over the 8 rounds taken together (1.01x); accuracy and
loss equal to 7 digits. The evaluation (1 000 test images, device part cached) costs 1.8-1.9 s
of CPU per round at any device count. The per-device loop (``--set learner.batched=false``) gives the same results to float32
rounding. Wall time: ``bench/paper_scale.py``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from learning.learner_config import LearnerConfig
from netsim.world import WorldConfig
from scenarios import paper_cell


def _world() -> WorldConfig:
    return dataclasses.replace(paper_cell.Config().world, num_devices=100)


@dataclass(frozen=True)
class Config(paper_cell.Config):
    name: str = "paper-cell-100"
    devices: int = 100
    rounds: int = 100
    world: WorldConfig = field(default_factory=_world)
    learner: LearnerConfig = field(default_factory=lambda: dataclasses.replace(paper_cell.Config().learner,
                                                                               batched=True))
