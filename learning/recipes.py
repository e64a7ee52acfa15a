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

import numpy as np
import safetensors.torch
import timm
import torch
import torch.nn.functional as F

from learning.data import ImageDataset
from learning.scenes import GROUPINGS, SceneConfig, coarse_labels
from learning.pretrain import PretrainConfig, StepCallback, pretrain, split_public
from learning.split_vit import SplitViTConfig, create_backbone

#: sha256 of each shipped backbone ``learning/weights/<recipe>.safetensors``, the file its recipe made.
SHIPPED = {
    "default": "bb7fae1c0b61b218c6e8767aa8b3679d8772ea4b12d7555db85f7bd26cf4ba09",
    "scenes": "9828f8340030ee55c04cc4de655abcf6cebd7721cc617ec68a8e8b07de396e6d",
    "scenes-garments": "bae63d962c171c9dddfc264275eecec366b428e319787fb8b243fc20add00505",
    "scenes-garments-64": "fe3aa2ff39c42d54a3614700e563563bca8ebb902f72a9adacda07089634d9d4",
}
SHIPPED_SHA256 = SHIPPED["default"]
SHIPPED_FILE = "default.safetensors"
LABELS = ("fine", *GROUPINGS)
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
        scenes: the scene construction when ``dataset`` is ``fashion-scenes``.
        labels: ``fine`` (the data set's classes) or a grouping of them named in
            :data:`learning.scenes.GROUPINGS` (``coarse``: five groups, ``garments``: seven):
            a related task, not the devices' one.
    """

    name: str
    model: SplitViTConfig
    pretrain: PretrainConfig
    threads: int = 2
    dataset: str = "fashion-mnist"
    scenes: SceneConfig | None = None
    labels: str = "fine"

    def __post_init__(self) -> None:
        if self.threads <= 0:
            raise ValueError(f"threads must be > 0, got {self.threads!r}")
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {self.labels!r}")
        if self.pretrain.source != "own":
            raise ValueError(f"pretrain.source must be 'own' in a recipe, got {self.pretrain.source!r}")

    def as_dict(self) -> dict:
        """The recipe as plain JSON-able values."""
        d = asdict(self)
        d["model"]["lora_targets"] = list(d["model"]["lora_targets"])
        if d["scenes"] is not None:
            d["scenes"]["scale_range"] = list(d["scenes"]["scale_range"])
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
    # Cluttered scenes, pretrained on the five coarse groups of the classes (a related task):
    # the devices then fine-tune on the ten classes with a fresh head. Same geometry as
    # ``default`` but a 5-way head, which the fine task replaces.
    "scenes": Recipe(
        name="scenes",
        model=SplitViTConfig(embed_dim=128, depth=6, num_heads=4, cut=3, stem="conv", num_classes=5),
        pretrain=PretrainConfig(
            source="own", public_samples=50_000, epochs=3.0, batch_size=128, lr=2e-3,
            weight_decay=0.05, warmup_steps=200, eval_samples=10_000, seed=0, keep_head=False,
        ),
        threads=2,
        dataset="fashion-scenes",
        scenes=SceneConfig(),
        labels="coarse",
    ),
}
# The same scenes, pretrained longer (5 epochs) on the seven garment groups of
# :data:`learning.scenes.GARMENT_GROUPS`: the tops and the footwear split once each, so the
# features keep more of what the ten classes need; fine-tuning still has three pairs to separate.
RECIPES["scenes-garments"] = replace(
    RECIPES["scenes"], name="scenes-garments", model=replace(RECIPES["scenes"].model, num_classes=7),
    pretrain=replace(RECIPES["scenes"].pretrain, epochs=5.0), labels="garments",
)
# The garment task on the full 64 px canvas, for 12 epochs: 8 px patches keep the 8x8 = 64 tokens,
# but the model sees the item at 28 px instead of 14 (``scenes-garments`` resizes the canvas to 32).
# The conv stem gains one stride-2 layer.
RECIPES["scenes-garments-64"] = replace(
    RECIPES["scenes-garments"], name="scenes-garments-64",
    model=replace(RECIPES["scenes-garments"].model, img_size=64, patch_size=8),
    scenes=replace(RECIPES["scenes-garments"].scenes, output_px=64),
    pretrain=replace(RECIPES["scenes-garments"].pretrain, epochs=12.0),
)


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
    if recipe.labels != "fine":
        public = coarse(public, recipe.labels)
        test_set = coarse(test_set, recipe.labels) if test_set is not None else None
    state, info = pretrain(recipe.model, recipe.pretrain, public, test_set, on_step=on_step)
    return state, {**info, "threads": torch.get_num_threads()}


def coarse(data: ImageDataset, grouping: str = "coarse") -> ImageDataset:
    """``data`` with its labels replaced by their groups (``learning.scenes.GROUPINGS[grouping]``)."""
    labels = torch.from_numpy(coarse_labels(data.labels.numpy(), grouping))
    return ImageDataset(data.images, labels, len(GROUPINGS[grouping]), data.mean, data.std)


@torch.no_grad()
def pre_logit_features(model: torch.nn.Module, data: ImageDataset, n: int, batch_size: int = 500) -> torch.Tensor:
    """Pre-logit features (final norm of [CLS]) of the first ``n`` images, ``float32 [n, D]``."""
    model.eval()
    out = []
    for i in range(0, n, batch_size):
        x, _ = data.batch(np.arange(i, min(i + batch_size, n)))
        out.append(model.forward_head(model.forward_features(x), pre_logits=True))
    return torch.cat(out)


def linear_probe(state: dict[str, torch.Tensor], recipe: Recipe, fit: ImageDataset, test: ImageDataset,
                 samples: int = 10_000, weight_decay: float = 1e-4) -> float:
    """Test accuracy of a logistic-regression probe on the frozen backbone's features, fine labels.

    The probe is fitted (L-BFGS, full batch, L2 ``weight_decay``) on the first ``samples``
    images of ``fit`` and scored on the first ``samples`` of ``test``: how much of the fine
    task the backbone's features already separate linearly.
    """
    model = create_backbone(recipe.model, 0)
    model.load_state_dict(state)
    n_fit, n_test = min(samples, len(fit)), min(samples, len(test))
    f_fit, f_test = pre_logit_features(model, fit, n_fit), pre_logit_features(model, test, n_test)
    mu, sd = f_fit.mean(0), f_fit.std(0).clamp_min(1e-6)
    f_fit, f_test = (f_fit - mu) / sd, (f_test - mu) / sd
    return fit_logistic(f_fit, fit.labels[:n_fit], f_test, test.labels[:n_test], fit.num_classes, weight_decay)


def fit_logistic(f_fit: torch.Tensor, y_fit: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor,
                 num_classes: int, weight_decay: float = 1e-4) -> float:
    """Test accuracy of logistic regression on ``f_fit`` (L-BFGS, full batch, zero start, L2)."""
    probe = torch.nn.Linear(f_fit.shape[1], num_classes)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    opt = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(f_fit), y_fit) + weight_decay * probe.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((probe(f_test).argmax(1) == y_test).float().mean())


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
    scenes = r.pop("scenes", None)
    scenes = SceneConfig(**{**scenes, "scale_range": tuple(scenes["scale_range"])}) if scenes else None
    return Recipe(model=SplitViTConfig(**model), pretrain=PretrainConfig(**r.pop("pretrain")), scenes=scenes, **r)


def _shipped_recipe(name: str) -> Recipe:
    if name not in SHIPPED:
        raise ValueError(f"pretrain.recipe must name a shipped backbone, one of {sorted(SHIPPED)}, got {name!r}")
    return RECIPES[name]


def shipped_path(name: str = "default") -> Path:
    """Where the shipped backbone file of recipe ``name`` is installed (package data of :mod:`learning`)."""
    _shipped_recipe(name)
    return Path(str(resources.files("learning") / "weights" / f"{name}.safetensors"))


def shipped_public_samples(name: str = "default") -> int:
    """Training images (the last ones) the shipped backbone of recipe ``name`` saw."""
    return _shipped_recipe(name).pretrain.public_samples


def load_shipped(model_config: SplitViTConfig, name: str = "default",
                 keep_head: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """The shipped backbone of recipe ``name`` for ``model_config``, hash-checked.

    Args:
        model_config: must have the shipped geometry (model name, image and patch size, depth,
            width, heads, stem, and classes when the head is kept); cut and LoRA settings are free.
        name: the recipe whose file to load (a key of :data:`SHIPPED`).
        keep_head: whether the caller keeps the pretraining head (then the classes must match).

    Returns:
        ``(state, {"path", "sha256", "recipe"})``.

    Raises:
        ValueError: file missing, hash mismatch, or a geometry the shipped backbone lacks.
    """
    shipped = _shipped_recipe(name).model
    fields = [f for f in _GEOMETRY if keep_head or f != "num_classes"]
    wrong = [f for f in fields if getattr(model_config, f) != getattr(shipped, f)]
    if wrong:
        f = wrong[0]
        raise ValueError(f"source='shipped' needs model.{f}={getattr(shipped, f)!r} (the shipped "
                         f"{name!r} backbone's), got {getattr(model_config, f)!r}")
    path = shipped_path(name)
    if not path.is_file():
        raise ValueError(f"source='shipped': {str(path)!r} is missing; make it with "
                         f"'sflsim pretrain --recipe {name} --out {path}'")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHIPPED[name]:
        raise ValueError(f"source='shipped': {str(path)!r} has sha256 {digest}, expected {SHIPPED[name]}")
    state, meta = read_weights(data)
    return state, {"path": str(path), "sha256": digest, "recipe": meta["recipe"]["name"]}


def shipped_model_config(name: str = "default", **changes) -> SplitViTConfig:
    """The geometry and default cut of shipped backbone ``name``, with ``changes`` applied."""
    return replace(_shipped_recipe(name).model, **changes)


__all__ = [
    "RECIPES", "Recipe", "SHIPPED", "SHIPPED_SHA256", "coarse", "fit_logistic", "get_recipe",
    "linear_probe", "load_shipped", "pre_logit_features", "read_weights", "recipe_from_metadata",
    "recipe_metadata", "shipped_model_config", "shipped_path", "shipped_public_samples", "train_recipe",
    "weights_bytes",
]
