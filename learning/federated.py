"""Federated training of the split ViT: local rounds, aggregation, evaluation.

The :class:`Learner` holds the state of a run (the global adapters, per-device copies,
optimiser states, the round's pending results, every random stream) and trains each device
with real torch steps; what differs between training schemes (split or whole model, averaged
or sequential or local) is its :class:`~learning.strategies.Strategy`, chosen by
``LearnerConfig.strategy``. A round's devices are trained together where they are independent
(:mod:`learning.batched`, ``LearnerConfig.batched``), else one after the other
(:mod:`learning.device_loop`); the simulated parallelism and its timing are the caller's, from
:class:`~learning.costs.StepCost`. A frozen device part's outputs are computed once per sample
in batched rounds (:mod:`learning.sample_cache`), else once per batch
(:mod:`learning.activation_cache`).

Randomness: one ``numpy.random.SeedSequence`` from the run's seed, spawned into streams for
model initialisation, per-device data order, per-device token draws (``random`` token
policy), per-device LoRA dropout, probe batches and the evaluation subset. Training touches
only the data, token and dropout streams; retention curves, costs and examples touch none.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch

from learning.activation_cache import ActivationCache
from learning.aggregation import fedavg  # noqa: F401  (re-exported: the FedAvg of this package)
from learning.checkpoint import learner_state, load_learner_state
from learning.costs import StepCost, measure_step_cost
from learning.quantize import FLOAT_BITS
from learning.learner_config import DeviceReport, LearnerConfig
from learning.data import ImageDataset
from learning.batched import batch_blocker, train_batched
from learning.device_loop import train_one_by_one
from learning.evaluation import evaluate_state
from learning.split_step import TokenOptions, device_select
from learning.sample_cache import SampleCache
from learning.split_vit import SplitViT, SplitViTConfig
from learning.strategies import strategy as make_strategy
from learning.streams import DataStream, seed_of
from learning.tokens import patch_importance, retention_curve

State = dict[str, torch.Tensor]


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
        if learner_config.token_policy == "semantic" and model_config.cut == 0 and learner_config.split:
            raise ValueError("model_config.cut must be >= 1 for token_policy='semantic', got 0")
        self.model_config = model_config
        self.config = learner_config
        self.strategy = make_strategy(learner_config.strategy)
        self.train_set = train_set
        self.test_set = test_set
        self.partitions = [np.asarray(p, dtype=np.int64) for p in partitions]
        self.seed = seed
        self.num_devices = len(partitions)
        self.num_patches = model_config.num_patches

        root = np.random.SeedSequence(seed)
        init_ss, data_ss, token_ss, dropout_ss, probe_ss, eval_ss = root.spawn(6)
        lora_everywhere = not self.strategy.split or learner_config.per_device_cut
        self.device = torch.device(learner_config.resolved_device)
        self.model = SplitViT(model_config, seed_of(init_ss), backbone_state, lora_everywhere=lora_everywhere)
        self.model.to(self.device)
        frozen = self.strategy.split and not learner_config.per_device_cut and not self.model.trains_device_part()
        self.activations = ActivationCache(self.model, model_config.cut) if (  # a frozen part at one cut
            frozen and learner_config.activation_cache and model_config.cut > 0) else None
        self.samples = SampleCache(self.model, model_config.cut, train_set, learner_config.sample_cache_mb << 20) if (
            self.activations is not None) else None  # the batched round's once-per-sample device part
        self._param_names = self.model.trainable_names()
        self._streams = [DataStream(p, seed_of(s)) for p, s in zip(self.partitions, data_ss.spawn(self.num_devices))]
        self._token_gens = [torch.Generator().manual_seed(seed_of(s)) for s in token_ss.spawn(self.num_devices)]
        self._dropout_gens = [torch.Generator().manual_seed(seed_of(s)) for s in dropout_ss.spawn(self.num_devices)]
        self._probe = [
            np.sort(np.random.default_rng(s).choice(p, min(learner_config.probe_samples, len(p)), replace=False))
            for p, s in zip(self.partitions, probe_ss.spawn(self.num_devices))
        ]
        n_eval = min(learner_config.eval_samples, len(test_set))
        self._eval_index = np.sort(np.random.default_rng(eval_ss).choice(len(test_set), n_eval, replace=False))
        self.global_state = self.model.trainable_state()
        self.device_states: dict[int, dict[str, torch.Tensor]] = {}
        self.device_results: dict[int | None, tuple[float, float]] = {}  # (accuracy, loss); None: global
        self.opt_states: dict[int | str, dict] = {}
        self.pending: dict[int, tuple[dict[str, torch.Tensor], dict | None]] = {}
        self.pending_cuts: dict[int, int] = {}
        self.order: list[int] = []
        self._cost_cache: dict[tuple, StepCost] = {}
        self._retention_cache: dict[int, np.ndarray] = {}
        self._batch_blocker = batch_blocker(self)

    # -- budgets and costs -----------------------------------------------------------------
    def _budget(self, k: int | None, field: str = "tokens") -> int:
        if k is None:
            return self.num_patches
        if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= self.num_patches:
            raise ValueError(f"{field} must be in [1, {self.num_patches}], got {k!r}")
        if not self.strategy.split or self.config.token_policy == "all":
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

    def _width(self, bits: int | None) -> int:
        """Uplink bits per value: ``None`` is the configured width; 32 means float32."""
        if bits is None:
            bits = self.config.uplink_bits_per_value or FLOAT_BITS
        if isinstance(bits, bool) or int(bits) != bits or not (1 <= int(bits) <= 16 or int(bits) == FLOAT_BITS):
            raise ValueError(f"bits must be in [1, 16] or {FLOAT_BITS} (float32), got {bits!r}")
        return int(bits)

    def _per_device(self, devices: list[int], values, name: str, check) -> list[int]:
        if values is None or np.ndim(values) == 0:
            return [check(values) for _ in devices]
        if len(values) != len(devices):
            raise ValueError(f"{name} must have one entry per device ({len(devices)}), got {len(values)}")
        return [check(v) for v in values]

    def label_histograms(self) -> np.ndarray:
        """``int64 [num_devices, num_classes]`` label counts of each device's data."""
        labels = np.asarray(self.train_set.labels)
        return np.stack([np.bincount(labels[p], minlength=self.train_set.num_classes) for p in self.partitions])

    def batch_size_of(self, device: int) -> int:
        """Samples per local step of ``device`` (all of its data when it holds fewer than a batch)."""
        return min(self.config.batch_size, len(self.partitions[device]))

    def next_batch(self, device: int, batch_size: int) -> torch.Tensor:
        """``int64 [batch_size]`` indices into ``train_set`` of ``device``'s next batch (consumed)."""
        return self._streams[device].next(batch_size)

    def token_generator(self, device: int) -> torch.Generator:
        """The generator of ``device``'s token draws (the ``random`` policy)."""
        return self._token_gens[device]

    @property
    def trainable_names(self) -> list[str]:
        """Names of the model's trainable parameters, in ``named_parameters`` order."""
        return list(self._param_names)

    def trainable_params(self) -> list[torch.nn.Parameter]:
        params = dict(self.model.named_parameters())
        return [params[n] for n in self._param_names]

    def hold(self, device: int, state: State, opt_state: dict | None, cut: int) -> None:
        """Keep ``device``'s result of this round (adapters, optimiser state, cut) until :meth:`aggregate`."""
        self.pending[device] = (state, opt_state)
        self.pending_cuts[device] = cut
        self.order.append(device)

    @property
    def batched(self) -> bool:
        """Whether rounds run batched (:mod:`learning.batched`): asked for (``None``: when torch
        computes on CUDA) and applicable."""
        wanted = self.device.type == "cuda" if self.config.batched is None else self.config.batched
        return wanted and self._batch_blocker is None

    def step_cost(self, tokens: int | None = None, batch_size: int | None = None, cut: int | None = None,
                  bits: int | None = None) -> StepCost:
        """Cost of one local step with a budget of ``tokens`` patch tokens (cached per shape).

        Args:
            tokens: patch tokens kept, in ``[1, num_patches]`` (``None``: all); ignored
                when every token is sent (whole-model strategies, the ``all`` token policy).
            batch_size: samples per step (default ``LearnerConfig.batch_size``).
            cut: blocks on the device (default: the configured cut; any cut with
                ``per_device_cut``); ignored by whole-model strategies.
            bits: uplink bits per value (``None``: the configured width; 32: float32).

        Returns:
            The :class:`~learning.costs.StepCost`; its FLOPs do not depend on the weights.
        """
        k = self._budget(tokens)
        b = self.config.batch_size if batch_size is None else int(batch_size)
        if b <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
        cut = self.model.check_cut(cut) if self.strategy.split else None
        width = self._width(bits)
        key = (k, b, cut, width)
        if key not in self._cost_cache:
            self._cost_cache[key] = measure_step_cost(
                self.model, b, k, self.token_options(width), self.strategy.split, self.strategy.shares, cut
            )
        return self._cost_cache[key]

    def token_options(self, width: int) -> TokenOptions:
        """The configured token options with an uplink width of ``width`` bits per value (32: float32)."""
        return replace(self.config.token_options, uplink_bits_per_value=None if width == FLOAT_BITS else width)

    def device_activations(self, index: np.ndarray, need_attention: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The device part's ``(tokens, cls_attn)`` of training batch ``index`` at the configured
        cut: once per sample in batched rounds (:mod:`learning.sample_cache`), else from the
        activation cache when it serves the current model, else forwarded."""
        if self.samples is not None and self.batched and self.activations.usable():
            return self.samples.forward(index)
        images = lambda: self.train_set.batch(index)[0].to(self.device)  # noqa: E731
        if self.activations is not None and self.activations.usable():
            return self.activations.forward(self.train_set, index, images, need_attention)
        return self.model.device_forward(images(), need_attention=need_attention)

    # -- training ----------------------------------------------------------------------------
    def train_round(self, devices: Sequence[int], tokens: int | Sequence[int] | None = None,
                    cuts: int | Sequence[int] | None = None,
                    bits: int | Sequence[int] | None = None) -> list[DeviceReport]:
        """Run ``local_steps`` steps on each device, from the global (or its own) adapters.

        The results are held until :meth:`aggregate`; devices are trained in the order given
        (which matters for the ``split-sequential`` strategy only).

        Args:
            devices: device indices, distinct.
            tokens: patch tokens each device sends per sample: one int for all, one per
                device, or ``None`` for all tokens. Split strategies use budgets below
                ``num_patches``; whole-model strategies and the ``all`` token policy check them
                and send everything.
            cuts: each device's cut (one int, one per device, or ``None``: the configured
                cut); other cuts than the configured one need ``per_device_cut``.
            bits: each device's uplink bits per value (one int, one per device, or ``None``:
                the configured width); 32 is float32, else in ``[1, 16]``.

        Returns:
            One :class:`DeviceReport` per device, in order.
        """
        devices = self._check_devices(devices)
        budgets = self._budgets(devices, tokens)
        split = self.strategy.split
        cut_of = self._per_device(devices, cuts, "cuts", self.model.check_cut if split else lambda v: self.model.cut)
        width_of = self._per_device(devices, bits, "bits", self._width)
        if self.batched and devices:
            return train_batched(self, devices, budgets, cut_of, width_of)
        return train_one_by_one(self, devices, budgets, cut_of, width_of)

    def aggregate(self, devices: Sequence[int]) -> None:
        """Fold the round's results of ``devices`` into the model; the others are discarded.

        How is the strategy's (:meth:`learning.strategies.Strategy.aggregate`). An empty
        ``devices`` leaves the model unchanged.

        Args:
            devices: devices whose update arrived (trained this round).
        """
        devices = self._check_devices(devices)
        missing = [d for d in devices if d not in self.pending]
        if missing:
            raise ValueError(f"devices must have been trained this round, got untrained {missing!r}")
        if devices:
            self.strategy.aggregate(self, devices)
        self.pending.clear()
        self.pending_cuts.clear()
        self.order.clear()

    # -- evaluation and probes ---------------------------------------------------------------
    def evaluate_state(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        """Accuracy and loss of ``state`` (:func:`learning.evaluation.evaluate_state`)."""
        return evaluate_state(self, state)

    def evaluate(self) -> tuple[float, float]:
        """Accuracy and mean cross-entropy on the fixed evaluation subset of the test set.

        Of the global model, or as the strategy says (the ``local`` strategy reports the mean
        over devices of each device model's accuracy and loss).

        Returns:
            ``(accuracy in [0, 1], loss in nats)``.
        """
        return self.strategy.evaluate(self)

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
        # a frozen device part and a fixed probe batch: one curve per device, computed once
        frozen = self.strategy.split and not self.model_config.device_trainable and not self.config.per_device_cut
        for i, d in enumerate(devices):
            if self.model_config.cut == 0:
                out[i] = np.arange(self.num_patches + 1) / self.num_patches
                continue
            if frozen and d in self._retention_cache:
                out[i] = self._retention_cache[d]
                continue
            self.model.load_trainable_state(self.strategy.model_of(self, d))
            x, _ = self.train_set.batch(self._probe[d])
            tokens, cls_attn = self.model.device_forward(x.to(self.device))
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
        self.model.load_trainable_state(self.strategy.model_of(self, device))
        self.model.eval()
        x, _ = self.train_set.batch(index)
        sel, _ = device_select(self.model, x.to(self.device), k, self.config.token_options,
                               torch.Generator().manual_seed(self.seed))
        g = self.model_config.grid_size
        kept = torch.zeros(n, g * g, dtype=torch.bool).scatter_(1, sel.kept.cpu(), True).reshape(n, g, g)
        return {"images": self.train_set.rgb_uint8(index), "kept": kept.numpy(), "tokens": np.full(n, k, dtype=np.int64)}

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit for bit (:func:`learning.checkpoint.learner_state`)."""
        return learner_state(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` of a learner built with the same configs and data."""
        load_learner_state(self, state)
        self.device_results.clear()
