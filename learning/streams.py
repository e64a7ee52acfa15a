"""Per-device randomness of the learner: seeds from a SeedSequence and each device's data order."""
from __future__ import annotations

import numpy as np
import torch


def seed_of(ss: np.random.SeedSequence) -> int:
    """A non-negative 63-bit integer seed drawn from ``ss`` (for ``torch.Generator.manual_seed``)."""
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


class DataStream:
    """A device's sample order: reshuffled epochs drawn from its own generator."""

    def __init__(self, indices: np.ndarray, seed: int) -> None:
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(len(self.indices), generator=self.generator)
        self.pos = 0

    def next(self, batch_size: int) -> torch.Tensor:
        """The next ``batch_size`` sample indices; a new epoch starts when too few are left."""
        if self.pos + batch_size > len(self.perm):
            self.perm = torch.randperm(len(self.indices), generator=self.generator)
            self.pos = 0
        out = self.indices[self.perm[self.pos : self.pos + batch_size]]
        self.pos += batch_size
        return out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])
