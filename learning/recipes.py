"""Named pretraining recipes and the backbone the package ships.

A recipe is everything that makes a backbone file: the model geometry, the pretraining
settings (public split, epochs, batch, learning rate, seed) and the torch thread count (CPU
reductions are split by thread, so the bits depend on it). Training a recipe returns the
weights; :func:`weights_bytes` turns them into a safetensors file whose metadata holds the
recipe as JSON, and :func:`load_shipped` reads the committed file back, checking its sha256.
Nothing here writes files: the command line does (``sflsim pretrain --recipe NAME --out FILE``).

The ``default`` recipe: a ViT of width 128, depth 6, 4 heads, on 32x32 inputs cut into an
8x8 grid of patch tokens by a convolutional stem (:mod:`learning.stem`), trained on the last
50 000 Fashion-MNIST training images (the devices get the first 10 000) for 6 epochs, AdamW
at lr 2e-3, batch 128, 200 warm-up steps then cosine decay, no augmentation, 2 threads. It
scored 0.8881 on all 10 000 test images. The recipe records cut 3, but the cut does not enter
the weights: a scenario may cut the shipped backbone after any block (``model.cut``). How the
accuracy falls with the tokens kept at each cut is measured by ``bench/token_curve.py``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

import safetensors.torch
import timm
import torch

from learning.data import ImageDataset
from learning.pretrain import PretrainConfig, StepCallback, pretrain, split_public
from learning.split_vit import SplitViTConfig

#: sha256 of ``learning/weights/default.safetensors``, the file the ``default`` recipe made.
SHIPPED_SHA256 = "bb7fae1c0b61b218c6e8767aa8b3679d8772ea4b12d7555db85f7bd26cf4ba09"
SHIPPED_FILE = "default.safetensors"
_METADATA_KEY = "sflsim_recipe"
_GEOMETRY = ("model_name", "img_size", "patch_size", "depth", "embed_dim", "num_heads", "num_classes", "stem")


@dataclass(frozen=True)
class Recipe:
    """How a shipped backbone is made.

    Attributes:
        name: registry name.
        model: geometry (``cut`` is the default cut the backbone is meant for).
        pretrain: training settings; ``public_samples`` are the last images of the training set.
        threads: torch CPU threads; the same seed, torch version and thread count give the
            same bytes.
        dataset: the data set trained on (a :data:`learning.data.DATASETS` name).
    """

    name: str
    model: SplitViTConfig
    pretrain: PretrainConfig
    threads: int = 2
    dataset: str = "fashion-mnist"

    def __post_init__(self) -> None:
        if self.threads <= 0:
            raise ValueError(f"threads must be > 0, got {self.threads!r}")
        if self.pretrain.source != "own":
            raise ValueError(f"pretrain.source must be 'own' in a recipe, got {self.pretrain.source!r}")

    def as_dict(self) -> dict:
        """The recipe as plain JSON-able values."""
        d = asdict(self)
        d["model"]["lora_targets"] = list(d["model"]["lora_targets"])
        return d


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        name="default",
        model=SplitViTConfig(embed_dim=128, depth=6, num_heads=4, cut=3, stem="conv"),
        pretrain=PretrainConfig(
            source="own", public_samples=50_000, epochs=6.0, batch_size=128, lr=2e-3,
            weight_decay=0.05, warmup_steps=200, eval_samples=10_000, seed=0, keep_head=True,
        ),
        threads=2,
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe registered as ``name``."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}")
    return RECIPES[name]


def train_recipe(
    recipe: Recipe,
    train_set: ImageDataset,
    test_set: ImageDataset | None,
    on_step: StepCallback | None = None,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Train ``recipe``'s backbone on the public split of ``train_set``.

    The caller sets ``torch.set_num_threads(recipe.threads)`` first (library code leaves
    global torch state alone); the thread count in effect is recorded in the info.

    Args:
        recipe: what to train.
        train_set: the *full* training set; the last ``recipe.pretrain.public_samples`` are used.
        test_set: where the accuracy is measured (first ``eval_samples`` images, all tokens).
        on_step: progress callback.

    Returns:
        ``(state, info)``: the timm state dict (head included) and ``{"seconds", "steps",
        "samples", "train_loss", "accuracy", "threads"}``.
    """
    public, _ = split_public(train_set, recipe.pretrain)
    state, info = pretrain(recipe.model, recipe.pretrain, public, test_set, on_step=on_step)
    return state, {**info, "threads": torch.get_num_threads()}


def recipe_metadata(recipe: Recipe) -> dict:
    """What the weights file records about how it was made (no timings: the bytes stay fixed)."""
    return {
        "recipe": recipe.as_dict(),
        "torch": torch.__version__.split("+")[0],
        "timm": timm.__version__,
    }


def weights_bytes(state: dict[str, torch.Tensor], recipe: Recipe) -> bytes:
    """The safetensors file of ``state``, with :func:`recipe_metadata` as JSON in its metadata."""
    tensors = {k: v.detach().contiguous() for k, v in sorted(state.items())}
    meta = json.dumps(recipe_metadata(recipe), sort_keys=True)
    # one metadata key, so the header's byte order cannot depend on map ordering
    return safetensors.torch.save(tensors, metadata={_METADATA_KEY: meta})


def read_weights(data: bytes) -> tuple[dict[str, torch.Tensor], dict]:
    """Inverse of :func:`weights_bytes`: ``(state, metadata)``."""
    state = safetensors.torch.load(data)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__", {}).get(_METADATA_KEY)
    if meta is None:
        raise ValueError("weights file holds no sflsim recipe metadata")
    return state, json.loads(meta)


def recipe_from_metadata(meta: dict) -> Recipe:
    """Rebuild the :class:`Recipe` recorded in a weights file."""
    r = dict(meta["recipe"])
    model = dict(r.pop("model"))
    model["lora_targets"] = tuple(model["lora_targets"])
    return Recipe(model=SplitViTConfig(**model), pretrain=PretrainConfig(**r.pop("pretrain")), **r)


def shipped_path() -> Path:
    """Where the shipped backbone file is installed (package data of :mod:`learning`)."""
    return Path(str(resources.files("learning") / "weights" / SHIPPED_FILE))


def shipped_public_samples() -> int:
    """Training images (the last ones) the shipped backbone saw."""
    return RECIPES["default"].pretrain.public_samples


def load_shipped(model_config: SplitViTConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """The shipped backbone for ``model_config``, hash-checked.

    Args:
        model_config: must have the shipped geometry (model name, image and patch size, depth,
            width, heads, classes, stem); cut and LoRA settings are free.

    Returns:
        ``(state, {"path", "sha256", "recipe"})``.

    Raises:
        ValueError: file missing, hash mismatch, or a geometry the shipped backbone lacks.
    """
    shipped = RECIPES["default"].model
    wrong = [f for f in _GEOMETRY if getattr(model_config, f) != getattr(shipped, f)]
    if wrong:
        f = wrong[0]
        raise ValueError(f"source='shipped' needs model.{f}={getattr(shipped, f)!r} (the shipped "
                         f"backbone's), got {getattr(model_config, f)!r}")
    path = shipped_path()
    if not path.is_file():
        raise ValueError(f"source='shipped': {str(path)!r} is missing; make it with "
                         f"'sflsim pretrain --recipe default --out {path}'")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHIPPED_SHA256:
        raise ValueError(f"source='shipped': {str(path)!r} has sha256 {digest}, expected {SHIPPED_SHA256}")
    state, meta = read_weights(data)
    return state, {"path": str(path), "sha256": digest, "recipe": meta["recipe"]["name"]}


def shipped_model_config(**changes) -> SplitViTConfig:
    """The shipped backbone's geometry and default cut, with ``changes`` applied."""
    return replace(RECIPES["default"].model, **changes)


__all__ = [
    "RECIPES", "Recipe", "SHIPPED_SHA256", "get_recipe", "load_shipped", "read_weights",
    "recipe_from_metadata", "recipe_metadata", "shipped_model_config", "shipped_path",
    "shipped_public_samples", "train_recipe", "weights_bytes",
]
