"""Backbone weights: timm's pretrained ones, a local file, or the project's own pretraining.

No pretrained ViT can be installed offline, so by default the project pretrains its own
backbone: central training of the whole timm ViT (all weights, head included) on a *public
split* of the training data -- the last ``public_samples`` images of the training set, which
:func:`split_public` removes from what the devices get. Federated LoRA fine-tuning then starts
from this backbone with a fresh classifier head (``PretrainConfig.keep_head=False``) and
adapts it on the devices' private data, never seen in pretraining. Why a fresh head: with the
pretraining head kept, federated rounds on Dirichlet(0.5) label-skewed devices did not improve
on the centrally trained head in our measurements (client drift pulls the shared head towards
each device's few classes), so round 0 would be the best the run ever gets; with a fresh head
the run measures what federated fine-tuning actually learns, and the pretraining head's
accuracy is still reported as the central reference.

For ``own`` the result can be cached under ``cache_dir`` (default ``$SFLSIM_CACHE`` or
``~/.cache/sflsim``), keyed by a hash of the model geometry, this config, the public data and
the library versions. This module only reads the cache: it hands the bytes to write to the
caller's ``save`` function (the runner writes them atomically), so :mod:`learning` writes no
files. ``shipped`` loads the backbone committed with the package (:mod:`learning.recipes`).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import timm
import torch
import torch.nn.functional as F

from learning.data import ImageDataset
from learning.split_vit import SplitViTConfig, create_backbone

SOURCES = ("own", "timm", "file", "random", "shipped")
_BACKBONE_FIELDS = ("model_name", "img_size", "patch_size", "depth", "embed_dim", "num_heads", "num_classes", "stem")

#: ``on_step(step, total_steps, loss)``, called after every optimiser step (progress bars).
StepCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class PretrainConfig:
    """Where the backbone weights come from and, for ``own``, how they are trained.

    The defaults were chosen by measurement on a shared 2-core CPU (torch 2.14, 2 threads):
    one epoch over 12 000 public Fashion-MNIST images took 61 s (195 samples/s) and reached
    57.4 % test accuracy (2000 test images) with its own head; peak lr 2e-3 on 10 000 images
    reached only 48.4 %, 1e-3 reached 55.4 %.

    Attributes:
        source: ``own`` (central training on the public split), ``timm`` (timm's pretrained
            weights from its cache or the network), ``file`` (``checkpoint``), ``random``,
            ``shipped`` (the backbone committed with the package, hash-checked; its geometry
            must match the model's, see :mod:`learning.recipes`).
        checkpoint: path of a state dict of the plain timm model (``source="file"``).
        public_samples: size of the public split (the last images of the training set).
        epochs: passes over the public split.
        batch_size: samples per step.
        lr: peak AdamW learning rate (linear warm-up, then cosine decay to 0).
        weight_decay: AdamW decoupled weight decay.
        warmup_steps: steps of linear warm-up.
        eval_samples: test samples used to report the backbone's accuracy (0: skip).
        seed: initialisation and data-order seed.
        keep_head: hand the pretraining classifier head on with the backbone. ``False`` (the
            default) drops it, so the federated task starts from a fresh head on pretrained
            features (round 0 is then at chance level), as when a pretrained ViT is
            fine-tuned for a new task; the backbone's own accuracy with its pretraining head
            is reported in the info as the central reference.
    """

    source: str = field(default="own", metadata={"help": 'backbone weights: own (pretrained here, cached), timm, file, shipped or random', "unit": ''})
    checkpoint: str | None = field(default=None, metadata={"help": 'state dict of the plain timm model (source=file)', "unit": ''})
    public_samples: int = field(default=12000, metadata={"help": 'size of the public pretraining split (the last training images)', "unit": 'samples'})
    epochs: float = field(default=1.0, metadata={"help": 'passes over the public split', "unit": 'epochs'})
    batch_size: int = field(default=64, metadata={"help": 'samples per pretraining step', "unit": 'samples'})
    lr: float = field(default=1e-3, metadata={"help": 'peak AdamW learning rate (linear warm-up, cosine decay to 0)', "unit": ''})
    weight_decay: float = field(default=0.05, metadata={"help": 'AdamW decoupled weight decay', "unit": ''})
    warmup_steps: int = field(default=20, metadata={"help": 'steps of linear warm-up', "unit": 'steps'})
    eval_samples: int = field(default=2000, metadata={"help": "test samples for the backbone's reported accuracy (0: skip)", "unit": 'samples'})
    seed: int = field(default=0, metadata={"help": 'initialisation and data-order seed of the pretraining', "unit": ''})
    keep_head: bool = field(default=False, metadata={"help": 'hand the pretraining classifier head on with the backbone', "unit": ''})
    recipe: str = field(default="default", metadata={"help": 'which shipped backbone to load (source=shipped): default, scenes, scenes-garments or scenes-garments-64', "unit": ''})

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if not isinstance(self.recipe, str) or not self.recipe:
            raise ValueError(f"recipe must name a shipped backbone, got {self.recipe!r}")
        if self.source == "file" and not self.checkpoint:
            raise ValueError(f"checkpoint must name a file when source='file', got {self.checkpoint!r}")
        for field in ("public_samples", "batch_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)!r}")
        for field in ("epochs", "lr"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)!r}")
        for field in ("weight_decay", "warmup_steps", "eval_samples"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")
        for field, high in (("public_samples", 10_000_000), ("epochs", 10_000.0), ("batch_size", 100_000),
                            ("lr", 100.0), ("weight_decay", 10.0), ("warmup_steps", 10_000_000),
                            ("eval_samples", 10_000_000), ("seed", 2**63 - 1)):
            if not getattr(self, field) <= high:  # plausibility: beyond this a value is a typo
                raise ValueError(f"{field} must be <= {high:g}, got {getattr(self, field)!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed!r}")


def split_public(train_set: ImageDataset, config: PretrainConfig) -> tuple[ImageDataset, ImageDataset]:
    """Cut the training set into the public pretraining split and the devices' private part.

    Args:
        train_set: the full training set.
        config: ``public_samples`` sets the size of the public split.

    Returns:
        ``(public, private)``: the last ``public_samples`` images, and all the others.
    """
    n = len(train_set)
    if config.public_samples >= n:
        raise ValueError(f"public_samples must be < the training set size {n}, got {config.public_samples!r}")
    cut = n - config.public_samples
    return train_set.subset(np.arange(cut, n)), train_set.subset(np.arange(cut))


def default_cache_dir() -> Path:
    """``$SFLSIM_CACHE``, else ``~/.cache/sflsim``."""
    return Path(os.environ.get("SFLSIM_CACHE", Path.home() / ".cache" / "sflsim"))


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: ImageDataset, samples: int, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on the first ``samples`` images of ``data``."""
    was_training = model.training
    model.eval()
    n = min(samples, len(data))
    correct = 0
    for i in range(0, n, batch_size):
        x, y = data.batch(np.arange(i, min(i + batch_size, n)))
        correct += int((model(x).argmax(1) == y).sum())
    model.train(was_training)
    return correct / n


def pretrain(
    model_config: SplitViTConfig,
    config: PretrainConfig,
    public: ImageDataset,
    test_set: ImageDataset | None = None,
    on_step: StepCallback | None = None,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the whole backbone centrally on ``public`` (no caching; see :func:`pretrained_backbone`).

    AdamW, linear warm-up then cosine decay to 0, plain cross-entropy, no augmentation; the
    sample order comes from ``torch.Generator(seed)``, so with the same torch version and
    thread count the weights are the same bit for bit.

    Args:
        model_config: geometry (cut and LoRA settings are irrelevant here).
        config: training settings.
        public: the public split.
        test_set: where to measure the backbone's accuracy (optional).
        on_step: called after every step (progress display).

    Returns:
        ``(state, info)``: the plain timm state dict and ``{"seconds", "steps", "samples",
        "train_loss", "accuracy"}`` (accuracy ``None`` without ``test_set``).
    """
    start = time.perf_counter()
    model = create_backbone(model_config, config.seed)
    for blk in model.blocks:
        blk.attn.fused_attn = model_config.fused_attention
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(public) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size must be <= public_samples {len(public)}, got {config.batch_size!r}")
    total = max(1, int(round(config.epochs * steps_per_epoch)))

    def lr_factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    gen = torch.Generator().manual_seed(config.seed)
    perm, pos, losses = torch.randperm(len(public), generator=gen), 0, []
    for _ in range(total):
        if pos + config.batch_size > len(perm):
            perm, pos = torch.randperm(len(public), generator=gen), 0
        x, y = public.batch(perm[pos : pos + config.batch_size])
        pos += config.batch_size
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(len(losses), total, losses[-1])
    seconds = time.perf_counter() - start
    acc = accuracy(model, test_set, config.eval_samples) if test_set is not None and config.eval_samples else None
    info = {
        "seconds": seconds,
        "steps": total,
        "samples": total * config.batch_size,
        "train_loss": float(np.mean(losses[-max(1, total // 10) :])),
        "accuracy": acc,
    }
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, info


def cache_key(model_config: SplitViTConfig, config: PretrainConfig, public: ImageDataset) -> str:
    """Hex digest identifying a pretrained backbone: geometry, config, public data, versions."""
    geometry = {f: getattr(model_config, f) for f in _BACKBONE_FIELDS}
    h = hashlib.sha256()
    recipe = {k: v for k, v in asdict(config).items() if k not in ("keep_head", "recipe")}
    h.update(json.dumps({"geometry": geometry, "pretrain": recipe, "torch": torch.__version__.split("+")[0],
                         "timm": timm.__version__, "fused": model_config.fused_attention}, sort_keys=True).encode())
    h.update(public.images.numpy().tobytes())
    h.update(public.labels.numpy().tobytes())
    return h.hexdigest()[:20]


def cache_bytes(state: dict[str, torch.Tensor], info: dict) -> bytes:
    """The cache file's bytes: ``torch.save({"state", "info"})``, read back by :func:`pretrained_backbone`."""
    sink = io.BytesIO()
    torch.save({"state": state, "info": {k: v for k, v in info.items() if k not in ("cached", "path")}}, sink)
    return sink.getvalue()


def pretrained_backbone(
    model_config: SplitViTConfig,
    config: PretrainConfig = PretrainConfig(),
    train_set: ImageDataset | None = None,
    test_set: ImageDataset | None = None,
    cache_dir: str | os.PathLike | None = None,
    return_info: bool = False,
    save: Callable[[Path, bytes], None] | None = None,
    on_step: StepCallback | None = None,
) -> dict[str, torch.Tensor] | tuple[dict[str, torch.Tensor], dict]:
    """The backbone state dict for ``model_config``, from ``config.source``.

    Args:
        model_config: geometry of the plain timm model.
        config: source and, for ``own``, the pretraining recipe.
        train_set: the *full* training set; ``own`` pretrains on its public split
            (:func:`split_public`), so give the devices only the private part.
        test_set: where ``own`` measures the backbone's accuracy (reported in the info).
        cache_dir: cache folder for ``own`` (default :func:`default_cache_dir`).
        return_info: also return ``{"source", "cached", "path", "seconds", "accuracy", ...}``.
        save: ``save(path, data)`` stores a freshly pretrained ``own`` backbone in the cache
            (the caller writes the file; ``None`` keeps it in memory only).
        on_step: progress callback of a fresh ``own`` pretraining.

    Returns:
        The state dict, or ``(state, info)`` with ``return_info``.

    Raises:
        ValueError: missing ``train_set`` for ``own``, unreadable checkpoint, timm weights
            unavailable.
    """
    info: dict = {"source": config.source, "cached": False, "path": None}
    if config.source == "random":
        state = create_backbone(model_config, config.seed).state_dict()
    elif config.source == "file":
        path = Path(config.checkpoint)
        if not path.is_file():
            raise ValueError(f"checkpoint must be an existing file, got {str(path)!r}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state", state) if isinstance(state, dict) else state
        info["path"] = str(path)
    elif config.source == "shipped":
        from learning.recipes import load_shipped

        state, meta = load_shipped(model_config, config.recipe, config.keep_head)
        info.update(path=meta["path"], sha256=meta["sha256"], recipe=meta["recipe"])
    elif config.source == "timm":
        try:
            model = timm.create_model(model_config.model_name, pretrained=True, **model_config.backbone_kwargs())
        except Exception as exc:  # no cached weights and no network
            raise ValueError(
                f"source='timm': pretrained weights of model_name={model_config.model_name!r} unavailable ({exc})"
            ) from exc
        state = model.state_dict()
    else:
        if train_set is None:
            raise ValueError("train_set=None: source='own' pretrains on the public split of the training set")
        public, _ = split_public(train_set, config)
        path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = path / f"backbone-{cache_key(model_config, config, public)}.pt"
        info["path"] = str(path)
        if path.is_file():
            blob = torch.load(path, map_location="cpu", weights_only=True)
            state, info = blob["state"], {**blob["info"], **info, "cached": True}
        else:
            state, train_info = pretrain(model_config, config, public, test_set, on_step=on_step)
            info.update(train_info)
            if save is not None:
                save(path, cache_bytes(state, info))
    if not config.keep_head:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    return (state, info) if return_info else state


def devices_part(train_set: ImageDataset, config: PretrainConfig) -> ImageDataset:
    """The training images the devices may get: all but the public split the backbone saw.

    ``own`` pretrains on the last ``public_samples`` images; ``shipped`` was trained on the
    last ``public_samples`` images of its recipe; other sources saw none of this set.
    """
    if config.source == "own":
        return split_public(train_set, config)[1]
    if config.source == "shipped":
        from learning.recipes import shipped_public_samples

        n = shipped_public_samples(config.recipe)
        if n >= len(train_set):
            raise ValueError(
                f"source='shipped': the shipped backbone saw the last {n} training images, "
                f"more than the {len(train_set)} of this data set"
            )
        return train_set.subset(np.arange(len(train_set) - n))
    return train_set
