"""Settings of the learner: training, token selection, quantisation, evaluation; and what a
device reports after its round."""
from __future__ import annotations

from dataclasses import dataclass, field

from learning.costs import StepCost
from learning.split_step import TokenOptions
from learning.strategies import STRATEGIES
from learning.tokens import RANKINGS, TOKEN_POLICIES

OPTIMIZERS = ("adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``cpu`` or ``cuda`` for ``learner.device`` (``auto``: CUDA when torch sees a GPU).

    Raises:
        ValueError: an unknown name, or ``cuda`` where torch sees no GPU.
    """
    import torch

    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device (use auto or cpu)")
    return name


def _f(default, help: str, unit: str = "", **kw):
    return field(default=default, metadata={"help": help, "unit": unit}, **kw)


@dataclass(frozen=True)
class LearnerConfig:
    """Training, token and evaluation settings of a :class:`learning.federated.Learner` (help and unit of each
    field in its metadata)."""

    strategy: str = _f("split-federated", "learner strategy: split-federated, split-sequential, federated or local")
    local_steps: int = _f(5, "local steps per device per round", "steps")
    batch_size: int = _f(32, "samples per local step (a device with fewer uses them all)", "samples")
    optimizer: str = _f("adamw", "local optimiser: adamw or sgd")
    lr: float = _f(3e-3, "learning rate of the local optimiser")
    weight_decay: float = _f(0.0, "decoupled weight decay (AdamW) or L2 (SGD)")
    momentum: float = _f(0.9, "SGD momentum")
    token_policy: str = _f("semantic", "which patch tokens a device sends: semantic, random, norm or all")
    ranking: str = _f("batch", "token ranking: one kept set per batch or per sample")
    fuse: bool = _f(True, "fuse the dropped tokens into one extra token (EViT)")
    uplink_bits_per_value: int | None = _f(None, "quantisation width of the sent activations (None: float32)", "bit/value")
    downlink_bits_per_value: int | None = _f(None, "quantisation width of the returned gradients (None: float32)", "bit/value")
    eval_samples: int = _f(1000, "test samples of the fixed evaluation subset (1000: standard error <= 1.6 points)", "samples")
    eval_batch_size: int = _f(500, "samples per evaluation forward", "samples")
    eval_tokens: int | None = _f(None, "token budget at evaluation (None: all tokens, unsplit forward)", "tokens")
    probe_samples: int = _f(64, "samples per device in the fixed probe batch of retention curves", "samples")
    device: str = _f("auto", "where torch computes: auto (CUDA when available), cpu or cuda; the run's config "
                             "records the resolved one")
    activation_cache: bool = _f(True, "compute a frozen device part's outputs once per batch and reuse them "
                                      "(same results, less wall time)")
    batched: bool | None = _f(None, "train a round's devices together where they are independent (split-federated, "
                                    "frozen device part): one batched server computation and the device part once "
                                    "per sample; results equal to the per-device loop within float32 rounding. None "
                                    "(default): on when torch computes on CUDA, off on the CPU, where it pays in long "
                                    "runs with many devices per round (paper-cell at 100 devices: 2.16x the loop per "
                                    "device-round in rounds 40-42, 1.20x in rounds 0-2; paper-cell-100 sets true)")
    sample_cache_mb: int = _f(2048, "memory bound of the batched round's once-per-sample device part "
                                    "(34 KB per sample for the default backbone; beyond it samples are "
                                    "forwarded per batch)", "MiB")
    per_device_cut: bool = _f(False, "adapters in every block, so that each device may be cut after its own "
                                     "block each round (follows the policy)")

    def __post_init__(self) -> None:
        choices = {"strategy": tuple(STRATEGIES), "optimizer": OPTIMIZERS, "token_policy": TOKEN_POLICIES,
                   "ranking": RANKINGS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if isinstance(self.sample_cache_mb, bool) or int(self.sample_cache_mb) != self.sample_cache_mb \
                or not 0 <= self.sample_cache_mb <= 1 << 20:
            raise ValueError(f"sample_cache_mb must be an integer in [0, {1 << 20}], got {self.sample_cache_mb!r}")
        for name in ("local_steps", "batch_size", "eval_samples", "eval_batch_size", "probe_samples"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        for name in ("uplink_bits_per_value", "downlink_bits_per_value"):
            v = getattr(self, name)
            if v is not None and not 1 <= v <= 16:
                raise ValueError(f"{name} must be in [1, 16] or None, got {v!r}")
        if self.eval_tokens is not None and self.eval_tokens <= 0:
            raise ValueError(f"eval_tokens must be > 0 or None, got {self.eval_tokens!r}")
        # Plausibility: beyond these a value is a typo (and a batch that size exhausts memory).
        for name, high in (("local_steps", 100_000), ("batch_size", 100_000), ("eval_samples", 10_000_000),
                           ("eval_batch_size", 100_000), ("probe_samples", 100_000), ("lr", 100.0),
                           ("weight_decay", 10.0)):
            if not getattr(self, name) <= high:
                raise ValueError(f"{name} must be <= {high:g}, got {getattr(self, name)!r}")
        # the resolved device is what the run's config records
        object.__setattr__(self, "device", resolve_device(self.device))
        if self.per_device_cut and not self.split:
            raise ValueError(f"per_device_cut needs a split strategy, got strategy={self.strategy!r}")

    @property
    def split(self) -> bool:
        """Whether the model is cut (activations cross the air)."""
        return STRATEGIES[self.strategy].split

    @property
    def resolved_device(self) -> str:
        """``cpu`` or ``cuda`` (``device`` is resolved on construction)."""
        return resolve_device(self.device)

    @property
    def token_options(self) -> TokenOptions:
        """Selection and quantisation settings of the split step."""
        return TokenOptions(self.token_policy, self.ranking, self.fuse, self.uplink_bits_per_value,
                            self.downlink_bits_per_value)


@dataclass(frozen=True)
class DeviceReport:
    """What one device did in a round.

    Attributes:
        device: device index.
        samples: samples the device holds (its FedAvg weight).
        steps: local steps run.
        loss: mean training loss over those steps.
        tokens: patch tokens sent per sample per step (``num_patches`` when all are sent).
        cost: the per-step cost, with bits read from the payloads this device actually sent
            and FLOPs measured for its batch shape and cut.
        cut_layer: blocks the device ran (its cut; the configured one unless chosen per device).
        bits_per_value: quantisation width of its uplink activations (32: float32, unquantised).
    """

    device: int
    samples: int
    steps: int
    loss: float
    tokens: int
    cost: StepCost
    cut_layer: int = 0
    bits_per_value: int = 32
