"""Federated training of the split ViT: local rounds, FedAvg, evaluation, and the baselines.

Variants (``LearnerConfig.variant``), after the ST-SFLora paper's comparison:

``st-sflora``
    Split federated LoRA with a token budget per device per round (the paper's method).
``sflora``
    The same with all tokens sent.
``split-lora``
    Split learning: devices trained one after another on one shared model (all tokens, one
    optimiser kept across devices and rounds), no FedAvg.
``fed-lora``
    Federated LoRA without a cut: the whole model with LoRA in every block runs on the
    device; FedAvg of the adapters (and head). No activations cross a cut.
``local-lora``
    Each device trains the whole model alone (own adapters and optimiser kept across rounds);
    evaluation is the mean over devices of each device model's accuracy.

Federated variant of the split ones (SFL-V1, Thapa et al., "SplitFed: When Federated Learning
Meets Split Learning", AAAI 2022): within a round every device starts from the global
adapters, and the server keeps a separate copy of the server-side adapters (and head) for
each device, updated at every local step of that device. :meth:`Learner.aggregate` then
averages device-side and server-side copies alike, weighted by the devices' sample counts
(McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017). Local optimisers (AdamW by default) start afresh every round in the FedAvg
variants, as in FedAvg with local Adam; only ``split-lora`` and ``local-lora`` keep theirs.

Devices are trained one after the other in this process; the simulated parallelism and its
timing are the scenario's business, computed from :class:`~learning.costs.StepCost`.

Randomness: one ``numpy.random.SeedSequence`` from the run's seed, spawned into streams for
model initialisation, per-device data order, per-device token draws (``random`` policy),
per-device LoRA dropout, probe batches and the evaluation subset. Training touches only
the data, token and dropout streams; retention curves, costs and examples touch none.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from learning.costs import StepCost, measure_step_cost
from learning.data import ImageDataset
from learning.split_step import TokenOptions, device_select, split_step, whole_step
from learning.split_vit import SplitViT, SplitViTConfig
from learning.tokens import POLICIES, RANKINGS, patch_importance, retention_curve

VARIANTS = ("st-sflora", "sflora", "split-lora", "fed-lora", "local-lora")
OPTIMIZERS = ("adamw", "sgd")
_SPLIT = ("st-sflora", "sflora", "split-lora")
_FEDAVG = ("st-sflora", "sflora", "fed-lora")


@dataclass(frozen=True)
class LearnerConfig:
    """Training, token and evaluation settings of a :class:`Learner`.

    Attributes:
        variant: one of :data:`VARIANTS`.
        local_steps: split (or whole-model) steps per device per round.
        batch_size: samples per step (a device with fewer samples uses them all).
        optimizer: ``adamw`` or ``sgd`` (with ``momentum``).
        lr: learning rate (3e-3 with AdamW: of 1e-3, 3e-3, 1e-2 the one that learned the
            fresh head fastest in the default run).
        weight_decay: decoupled weight decay (AdamW) or L2 (SGD).
        momentum: SGD momentum.
        token_policy: which tokens are sent, one of :data:`learning.tokens.POLICIES`.
        ranking: ``batch`` (one kept set per batch, as the paper) or ``sample``.
        fuse: fuse the dropped tokens into one extra token (EViT).
        uplink_bits: bits per activation value on the uplink, ``None`` for float32.
        downlink_bits: bits per gradient value on the downlink, ``None`` for float32.
        eval_samples: test samples used by :meth:`Learner.evaluate` (a fixed random subset;
            1000 gives a standard error of at most 1.6 points and takes ~3 s on 2 cores for
            the default model, so a run can evaluate every round).
        eval_batch_size: samples per evaluation forward.
        eval_tokens: token budget at evaluation (``None``: all tokens, unsplit forward).
        probe_samples: samples per device in the fixed probe batch of retention curves.
    """

    variant: str = "st-sflora"
    local_steps: int = 5
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    token_policy: str = "semantic"
    ranking: str = "batch"
    fuse: bool = True
    uplink_bits: int | None = None
    downlink_bits: int | None = None
    eval_samples: int = 1000
    eval_batch_size: int = 500
    eval_tokens: int | None = None
    probe_samples: int = 64

    def __post_init__(self) -> None:
        choices = {"variant": VARIANTS, "optimizer": OPTIMIZERS, "token_policy": POLICIES, "ranking": RANKINGS}
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        for field in ("local_steps", "batch_size", "eval_samples", "eval_batch_size", "probe_samples"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        for field in ("uplink_bits", "downlink_bits"):
            v = getattr(self, field)
            if v is not None and not 1 <= v <= 16:
                raise ValueError(f"{field} must be in [1, 16] or None, got {v!r}")
        if self.eval_tokens is not None and self.eval_tokens <= 0:
            raise ValueError(f"eval_tokens must be > 0 or None, got {self.eval_tokens!r}")

    @property
    def split(self) -> bool:
        """Whether the model is cut (activations cross the air)."""
        return self.variant in _SPLIT

    @property
    def token_options(self) -> TokenOptions:
        """Selection and quantisation settings of the split step."""
        return TokenOptions(self.token_policy, self.ranking, self.fuse, self.uplink_bits, self.downlink_bits)


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
            and FLOPs measured for its batch shape.
    """

    device: int
    samples: int
    steps: int
    loss: float
    tokens: int
    cost: StepCost


def fedavg(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Weighted average of parameter dictionaries (FedAvg).

    Args:
        states: ``M`` dicts with the same keys and shapes.
        weights: ``M`` non-negative weights (e.g. sample counts), not all zero.

    Returns:
        ``sum_m w_m * state_m / sum_m w_m`` per key.
    """
    if len(states) != len(weights) or not states:
        raise ValueError(f"states and weights must be non-empty and of equal length, got {len(states)} and {len(weights)}")
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {list(weights)!r}")
    w = w / w.sum()
    return {
        k: sum(wi * s[k].double() for wi, s in zip(w, states)).to(states[0][k].dtype) for k in states[0]
    }


def _seed_of(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


class _DataStream:
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


class Learner:
    """Split federated LoRA fine-tuning of a ViT over ``len(partitions)`` devices.

    Args:
        model_config: model geometry, cut and LoRA settings.
        learner_config: training, token and evaluation settings.
        train_set: the devices' data (the pretraining split excluded by the caller).
        test_set: evaluation data.
        partitions: one index array into ``train_set`` per device (e.g. from
            :func:`learning.data.dirichlet_partition`).
        seed: the run's seed; every random draw derives from it.
        backbone_state: plain timm weights for the backbone (``None``: random init).

    Raises:
        ValueError: inconsistent data, partitions or configs.
    """

    def __init__(
        self,
        model_config: SplitViTConfig,
        learner_config: LearnerConfig,
        train_set: ImageDataset,
        test_set: ImageDataset,
        partitions: Sequence[np.ndarray],
        seed: int,
        backbone_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if train_set.num_classes != model_config.num_classes:
            raise ValueError(
                f"model_config.num_classes must equal the data set's {train_set.num_classes}, got {model_config.num_classes!r}"
            )
        if train_set.image_size != model_config.img_size:
            raise ValueError(f"model_config.img_size must equal the images' {train_set.image_size}, got {model_config.img_size!r}")
        if not partitions:
            raise ValueError("partitions must hold at least one device, got []")
        for d, p in enumerate(partitions):
            p = np.asarray(p)
            if p.ndim != 1 or len(p) == 0 or p.min() < 0 or p.max() >= len(train_set):
                raise ValueError(f"partitions[{d}] must be a non-empty index array into train_set (size {len(train_set)})")
        if learner_config.token_policy == "semantic" and model_config.cut == 0 and learner_config.variant == "st-sflora":
            raise ValueError("model_config.cut must be >= 1 for token_policy='semantic', got 0")
        self.model_config = model_config
        self.config = learner_config
        self.train_set = train_set
        self.test_set = test_set
        self.partitions = [np.asarray(p, dtype=np.int64) for p in partitions]
        self.seed = seed
        self.num_devices = len(partitions)
        self.num_patches = model_config.num_patches

        root = np.random.SeedSequence(seed)
        init_ss, data_ss, token_ss, dropout_ss, probe_ss, eval_ss = root.spawn(6)
        self.model = SplitViT(
            model_config, _seed_of(init_ss), backbone_state, lora_everywhere=not learner_config.split
        )
        self._param_names = self.model.trainable_names()
        self._streams = [_DataStream(p, _seed_of(s)) for p, s in zip(self.partitions, data_ss.spawn(self.num_devices))]
        self._token_gens = [torch.Generator().manual_seed(_seed_of(s)) for s in token_ss.spawn(self.num_devices)]
        self._dropout_gens = [torch.Generator().manual_seed(_seed_of(s)) for s in dropout_ss.spawn(self.num_devices)]
        self._probe = [
            np.sort(np.random.default_rng(s).choice(p, min(learner_config.probe_samples, len(p)), replace=False))
            for p, s in zip(self.partitions, probe_ss.spawn(self.num_devices))
        ]
        n_eval = min(learner_config.eval_samples, len(test_set))
        self._eval_index = np.sort(np.random.default_rng(eval_ss).choice(len(test_set), n_eval, replace=False))
        self._global = self.model.trainable_state()
        self._device_states: dict[int, dict[str, torch.Tensor]] = {}
        self._opt_states: dict[int | str, dict] = {}
        self._pending: dict[int, tuple[dict[str, torch.Tensor], dict | None]] = {}
        self._order: list[int] = []
        self._cost_cache: dict[tuple[int, int], StepCost] = {}
        self._retention_cache: dict[int, np.ndarray] = {}

    # -- budgets and costs -----------------------------------------------------------------
    def _budget(self, k: int | None, field: str = "tokens") -> int:
        if k is None:
            return self.num_patches
        if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= self.num_patches:
            raise ValueError(f"{field} must be in [1, {self.num_patches}], got {k!r}")
        if self.config.variant != "st-sflora" or self.config.token_policy == "all":
            return self.num_patches
        return int(k)

    def _budgets(self, devices: Sequence[int], tokens: int | Sequence[int] | None) -> list[int]:
        if tokens is None or np.ndim(tokens) == 0:
            return [self._budget(tokens) for _ in devices]
        if len(tokens) != len(devices):
            raise ValueError(f"tokens must have one entry per device ({len(devices)}), got {len(tokens)}")
        return [self._budget(k, f"tokens[{i}]") for i, k in enumerate(tokens)]

    def _check_devices(self, devices: Sequence[int]) -> list[int]:
        devices = [int(d) for d in devices]
        for d in devices:
            if not 0 <= d < self.num_devices:
                raise ValueError(f"device must be in [0, {self.num_devices}), got {d!r}")
        if len(set(devices)) != len(devices):
            raise ValueError(f"devices must be distinct, got {devices!r}")
        return devices

    def _shared(self) -> str:
        if self.config.variant == "fed-lora":
            return "all"
        return "device" if self.config.split else "none"

    def _batch_size(self, device: int) -> int:
        return min(self.config.batch_size, len(self.partitions[device]))

    def step_cost(self, tokens: int | None = None, batch_size: int | None = None) -> StepCost:
        """Cost of one local step with a budget of ``tokens`` patch tokens (cached per shape).

        Args:
            tokens: patch tokens kept, in ``[1, num_patches]`` (``None``: all); variants
                that send all tokens, or none, ignore it.
            batch_size: samples per step (default ``LearnerConfig.batch_size``).

        Returns:
            The :class:`~learning.costs.StepCost`; its FLOPs do not depend on the weights.
        """
        k = self._budget(tokens)
        b = self.config.batch_size if batch_size is None else int(batch_size)
        if b <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
        key = (k, b)
        if key not in self._cost_cache:
            self._cost_cache[key] = measure_step_cost(
                self.model, b, k, self.config.token_options, self.config.split, self._shared()
            )
        return self._cost_cache[key]

    # -- training ----------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        params = dict(self.model.named_parameters())
        group = [params[n] for n in self._param_names]
        c = self.config
        if c.optimizer == "adamw":
            return torch.optim.AdamW(group, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(group, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    @contextlib.contextmanager
    def _dropout_rng(self, device: int) -> Iterator[None]:
        # peft's LoRA dropout draws from torch's global generator: run it in a forked global
        # state seeded from the device's own stream, so results depend on the seed only and
        # the caller's global state is left as it was.
        if self.model_config.lora_dropout == 0:
            yield
            return
        seed = int(torch.randint(2**62, (1,), generator=self._dropout_gens[device]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def _start_state(self, device: int) -> tuple[dict[str, torch.Tensor], dict | None]:
        v = self.config.variant
        if v == "local-lora":
            return self._device_states.get(device, self._global), self._opt_states.get(device)
        if v == "split-lora":
            if self._order:  # continue from the previous device of this round
                return self._pending[self._order[-1]]
            return self._global, self._opt_states.get("shared")
        return self._global, None

    def train_round(self, devices: Sequence[int], tokens: int | Sequence[int] | None = None) -> list[DeviceReport]:
        """Run ``local_steps`` steps on each device, from the global (or its own) adapters.

        The results are held until :meth:`aggregate`; devices are trained in the order given
        (which matters for ``split-lora`` only).

        Args:
            devices: device indices, distinct.
            tokens: patch tokens each device sends per sample: one int for all, one per
                device, or ``None`` for all tokens. Only ``st-sflora`` uses budgets below
                ``num_patches``; the other variants check them and send everything.

        Returns:
            One :class:`DeviceReport` per device, in order.
        """
        devices = self._check_devices(devices)
        budgets = self._budgets(devices, tokens)
        c = self.config
        self.model.train()
        reports = []
        for d, k in zip(devices, budgets):
            state, opt_state = self._start_state(d)
            self.model.load_trainable_state(state)
            opt = self._optimizer()
            if opt_state is not None:
                opt.load_state_dict(opt_state)
            b = self._batch_size(d)
            losses, up, down = [], [], []
            for _ in range(c.local_steps):
                x, y = self.train_set.batch(self._streams[d].next(b))
                opt.zero_grad(set_to_none=True)
                with self._dropout_rng(d):
                    if c.split:
                        out = split_step(self.model, x, y, k, c.token_options, self._token_gens[d])
                    else:
                        out = whole_step(self.model, x, y)
                opt.step()
                losses.append(out.loss)
                up.append(out.uplink_bits)
                down.append(out.downlink_bits)
            keep_opt = c.variant in ("split-lora", "local-lora")
            self._pending[d] = (self.model.trainable_state(), copy.deepcopy(opt.state_dict()) if keep_opt else None)
            self._order.append(d)
            cost = replace(self.step_cost(k, b), uplink_bits=float(np.mean(up)), downlink_bits=float(np.mean(down)))
            reports.append(DeviceReport(d, len(self.partitions[d]), c.local_steps, float(np.mean(losses)), k, cost))
        self.model.train(False)
        return reports

    def aggregate(self, devices: Sequence[int]) -> None:
        """Fold the round's results of ``devices`` into the model; the others are discarded.

        FedAvg variants: sample-weighted average of the trained copies of ``devices`` (device-
        and server-side adapters and head). ``split-lora``: the shared model as the last of
        ``devices`` (in training order) left it -- an approximation when an earlier device is
        dropped, since later devices trained on top of its update. ``local-lora``: each device
        in ``devices`` keeps its update. An empty ``devices`` leaves the model unchanged.

        Args:
            devices: devices whose update arrived (trained this round).
        """
        devices = self._check_devices(devices)
        missing = [d for d in devices if d not in self._pending]
        if missing:
            raise ValueError(f"devices must have been trained this round, got untrained {missing!r}")
        v = self.config.variant
        if devices:
            if v in _FEDAVG:
                self._global = fedavg([self._pending[d][0] for d in devices], [len(self.partitions[d]) for d in devices])
            elif v == "split-lora":
                last = max(devices, key=self._order.index)
                self._global, self._opt_states["shared"] = self._pending[last]
            else:
                for d in devices:
                    self._device_states[d], self._opt_states[d] = self._pending[d]
        self._pending.clear()
        self._order.clear()

    # -- evaluation and probes ---------------------------------------------------------------
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        k = self.config.eval_tokens
        if k is None or k >= self.num_patches or not self.config.split:
            return self.model(x)
        sel, _ = device_select(self.model, x, k, self.config.token_options, torch.Generator().manual_seed(0))
        return self.model.server_forward(sel.tokens)

    @torch.no_grad()
    def _evaluate_state(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        self.model.load_trainable_state(state)
        self.model.eval()
        correct, loss_sum = 0, 0.0
        for i in range(0, len(self._eval_index), self.config.eval_batch_size):
            x, y = self.test_set.batch(self._eval_index[i : i + self.config.eval_batch_size])
            logits = self._logits(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
        n = len(self._eval_index)
        return correct / n, loss_sum / n

    def evaluate(self) -> tuple[float, float]:
        """Accuracy and mean cross-entropy on the fixed evaluation subset of the test set.

        ``local-lora``: the mean over all devices of each device model's accuracy and loss.

        Returns:
            ``(accuracy in [0, 1], loss in nats)``.
        """
        if self.config.variant == "local-lora":
            results = [self._evaluate_state(self._device_states.get(d, self._global)) for d in range(self.num_devices)]
            return float(np.mean([r[0] for r in results])), float(np.mean([r[1] for r in results]))
        return self._evaluate_state(self._global)

    def _model_of(self, device: int) -> dict[str, torch.Tensor]:
        if self.config.variant == "local-lora":
            return self._device_states.get(device, self._global)
        return self._global

    @torch.no_grad()
    def retention(self, devices: Sequence[int]) -> np.ndarray:
        """Semantic retention curves f(K), K = 0..num_patches, of each device's probe batch.

        Computed with the current (global, or the device's own) model on a fixed probe batch
        of the device's data, under the configured policy and ranking (see
        :func:`learning.tokens.retention_curve`); no training stream is touched.

        Args:
            devices: device indices.

        Returns:
            ``float64 [len(devices), num_patches + 1]``.
        """
        devices = self._check_devices(devices)
        out = np.empty((len(devices), self.num_patches + 1))
        self.model.eval()
        # A frozen device part never changes, and neither does the probe batch: its curve is
        # computed once per device (cut and LoRA-everywhere variants train the device blocks).
        frozen = self.config.split and not self.model_config.device_trainable
        for i, d in enumerate(devices):
            if self.model_config.cut == 0:
                out[i] = np.arange(self.num_patches + 1) / self.num_patches
                continue
            if frozen and d in self._retention_cache:
                out[i] = self._retention_cache[d]
                continue
            self.model.load_trainable_state(self._model_of(d))
            x, _ = self.train_set.batch(self._probe[d])
            tokens, cls_attn = self.model.device_forward(x)
            imp = patch_importance(cls_attn, self.model.num_prefix_tokens)
            out[i] = retention_curve(imp, self.config.token_policy, self.config.ranking, tokens)
            if frozen:
                self._retention_cache[d] = out[i].copy()
        return out

    @torch.no_grad()
    def token_examples(self, device: int, tokens: int | None, n: int) -> dict[str, np.ndarray]:
        """What ``device`` would send for ``n`` of its probe images with budget ``tokens``.

        Args:
            device: device index.
            tokens: patch tokens kept (``None``: all).
            n: number of examples (at most the probe batch size).

        Returns:
            ``images uint8 [n, H, W, 3]``, ``kept bool [n, grid, grid]``, ``tokens int64 [n]``.
        """
        (device,) = self._check_devices([device])
        k = self._budget(tokens)
        if not 1 <= n <= len(self._probe[device]):
            raise ValueError(f"n must be in [1, {len(self._probe[device])}], got {n!r}")
        index = self._probe[device][:n]
        self.model.load_trainable_state(self._model_of(device))
        self.model.eval()
        x, _ = self.train_set.batch(index)
        sel, _ = device_select(self.model, x, k, self.config.token_options, torch.Generator().manual_seed(self.seed))
        g = self.model_config.grid_size
        kept = torch.zeros(n, g * g, dtype=torch.bool).scatter_(1, sel.kept, True).reshape(n, g, g)
        return {"images": self.train_set.rgb_uint8(index), "kept": kept.numpy(), "tokens": np.full(n, k, dtype=np.int64)}

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit for bit: adapters, optimiser states, RNG states.

        Take it between rounds (after :meth:`aggregate`); results of a round not yet
        aggregated are not included.
        """
        return {
            "variant": self.config.variant,
            "num_devices": self.num_devices,
            "global": {k: v.clone() for k, v in self._global.items()},
            "device_states": copy.deepcopy(self._device_states),
            "opt_states": copy.deepcopy(self._opt_states),
            "streams": [s.state_dict() for s in self._streams],
            "token_gens": [g.get_state() for g in self._token_gens],
            "dropout_gens": [g.get_state() for g in self._dropout_gens],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` of a learner built with the same configs and data."""
        if state["variant"] != self.config.variant or state["num_devices"] != self.num_devices:
            raise ValueError(
                f"state is of variant={state['variant']!r} with {state['num_devices']} devices, "
                f"this learner has variant={self.config.variant!r} with {self.num_devices}"
            )
        self._global = {k: v.clone() for k, v in state["global"].items()}
        self._device_states = copy.deepcopy(state["device_states"])
        self._opt_states = copy.deepcopy(state["opt_states"])
        for s, st in zip(self._streams, state["streams"]):
            s.load_state_dict(st)
        for g, st in zip(self._token_gens, state["token_gens"]):
            g.set_state(st)
        for g, st in zip(self._dropout_gens, state["dropout_gens"]):
            g.set_state(st)
        self._pending.clear()
        self._order.clear()
