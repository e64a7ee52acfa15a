"""Cluttered scenes: one Fashion-MNIST item at a random place among fragments of other items.

On plain Fashion-MNIST the item fills the frame, so almost any spread of patch tokens carries
it and dropping tokens costs little. A scene puts the item on a larger canvas among clutter,
so that it covers a minority of the tokens and *which* tokens a device sends matters. The
construction follows cluttered translated MNIST (Mnih, Heess, Graves, Kavukcuoglu, "Recurrent
Models of Visual Attention", NeurIPS 2014, section 4.1; Jaderberg, Simonyan, Zisserman,
Kavukcuoglu, "Spatial Transformer Networks", NeurIPS 2015, section 4.1): random crops of other
images scattered over the canvas, then the item pasted at a uniformly random position (pixel
values combined by maximum, so clutter never hides the item), then the canvas resized.

With the defaults (64 px canvas, six 10 px fragments, the 28 px item, 32 px output) the item
is 14 px wide in the output image; on the default model's 8x8 grid of 4 px patches its bounding
box touches 16-25 of the 64 tokens (``item_token_share`` measures it: 0.29 of the tokens on
average over the device scenes, and many touched tokens hold only a rim of the item).

A scene is a pure function of (seed, split, index): sources are processed in *blocks* of
``block`` consecutive images, the clutter of a scene is cut only from images of its own block,
and each block draws its layout from its own generator ``default_rng([seed, split, block])``.
Splits cut at block boundaries (the devices' first 10 000 training images, the backbone's
last 50 000, the test set) therefore share no source image, clutter included.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

#: Split codes that enter the scene generators' seeds.
SPLITS = {"train": 0, "test": 1}

#: Coarse groups of the ten Fashion-MNIST classes, the task the scenes backbone is pretrained
#: on: tops (T-shirt/top, pullover, coat, shirt), bottoms (trouser), dresses, footwear
#: (sandal, sneaker, ankle boot), bags. Fine-tuning then has to separate the four tops and the
#: three kinds of footwear, which the coarse task never asked for.
COARSE_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("tops", (0, 2, 4, 6)),
    ("bottoms", (1,)),
    ("dresses", (3,)),
    ("footwear", (5, 7, 9)),
    ("bags", (8,)),
)


#: Seven groups of garments: the five coarse groups with the tops split by the garment's
#: weight (shirts: T-shirt/top, shirt; knitwear and coats: pullover, coat) and the footwear by
#: height (low shoes: sandal, sneaker; boots: ankle boot). Fine-tuning then has to separate
#: three pairs (T-shirt from shirt, pullover from coat, sandal from sneaker), which are the
#: classes a Fashion-MNIST classifier confuses most.
GARMENT_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("shirts", (0, 6)),
    ("bottoms", (1,)),
    ("knitwear and coats", (2, 4)),
    ("dresses", (3,)),
    ("low shoes", (5, 7)),
    ("bags", (8,)),
    ("boots", (9,)),
)

#: Label groupings a backbone can be pretrained on (a recipe's ``labels``, besides ``fine``).
GROUPINGS: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "coarse": COARSE_GROUPS,
    "garments": GARMENT_GROUPS,
}


def coarse_labels(labels: np.ndarray | torch.Tensor, grouping: str = "coarse") -> np.ndarray:
    """The group (index into ``GROUPINGS[grouping]``) of each Fashion-MNIST label, ``int64 [N]``."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {sorted(GROUPINGS)}, got {grouping!r}")
    table = np.full(10, -1, dtype=np.int64)
    for g, (_, members) in enumerate(GROUPINGS[grouping]):
        table[list(members)] = g
    return table[np.asarray(labels, dtype=np.int64)]


@dataclass(frozen=True)
class SceneConfig:
    """How a cluttered scene is made (all sizes in pixels of the source or the canvas).

    Attributes:
        canvas_px: side of the square canvas the item and the clutter are placed on.
        fragments: clutter fragments per scene.
        fragment_px: side of a square fragment, cut from another item of the same block.
        scale_range: the item is resized by a factor drawn uniformly in this range before it
            is placed (1.0: the source's 28 px).
        output_px: side of the image the model sees (the canvas is area-resized to it).
        block: source images per block; clutter comes from the scene's own block.
        seed: seed of the layouts (positions, fragment sources and crops).
    """

    canvas_px: int = field(default=64, metadata={"help": "side of the scene canvas before resizing", "unit": "px"})
    fragments: int = field(default=6, metadata={"help": "clutter fragments per scene, cut from other items", "unit": ""})
    fragment_px: int = field(default=10, metadata={"help": "side of a clutter fragment", "unit": "px"})
    scale_range: tuple[float, float] = field(default=(1.0, 1.0), metadata={"help": "item resize factor range (1: 28 px)", "unit": ""})
    output_px: int = field(default=32, metadata={"help": "side of the image the model sees (canvas area-resized)", "unit": "px"})
    block: int = field(default=10_000, metadata={"help": "source images per block; clutter comes from the item's own block", "unit": "images"})
    seed: int = field(default=0, metadata={"help": "seed of the scene layouts", "unit": ""})

    def __post_init__(self) -> None:
        for name in ("canvas_px", "fragment_px", "output_px", "block"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"scenes.{name} must be an integer > 0, got {getattr(self, name)!r}")
        if not isinstance(self.fragments, int) or not 0 <= self.fragments <= 64:
            raise ValueError(f"scenes.fragments must be an integer in [0, 64], got {self.fragments!r}")
        lo, hi = self.scale_range
        if not (0.25 <= lo <= hi <= 4.0):
            raise ValueError(f"scenes.scale_range must satisfy 0.25 <= low <= high <= 4, got {self.scale_range!r}")
        if self.canvas_px > 1024 or self.output_px > self.canvas_px:
            raise ValueError(f"scenes.output_px must be <= canvas_px <= 1024, got output_px={self.output_px!r}, "
                             f"canvas_px={self.canvas_px!r}")
        if not 0 <= self.seed <= 2**63 - 1:
            raise ValueError(f"scenes.seed must be in [0, 2**63 - 1], got {self.seed!r}")
        # plausibility: beyond these a value is a typo
        for name, high in (("fragment_px", 1024), ("block", 10_000_000)):
            if getattr(self, name) > high:
                raise ValueError(f"scenes.{name} must be <= {high}, got {getattr(self, name)!r}")

    def item_px(self, source_px: int = 28) -> int:
        """Largest side the item can take on the canvas, pixels."""
        return int(round(source_px * self.scale_range[1]))

    def check_fits(self, source_px: int = 28) -> None:
        """Refuse a canvas too small for the largest item or a fragment larger than the source."""
        if self.item_px(source_px) > self.canvas_px:
            raise ValueError(f"scenes.canvas_px must hold the item ({self.item_px(source_px)} px at the largest "
                             f"scale), got {self.canvas_px!r}")
        if self.fragment_px > source_px:
            raise ValueError(f"scenes.fragment_px must be <= the {source_px} px source images, got {self.fragment_px!r}")


def _paste_max(canvas: np.ndarray, patches: np.ndarray, top: np.ndarray, left: np.ndarray) -> None:
    """``canvas[n, top+i, left+j] = max(canvas, patches[n, i, j])`` for every scene ``n`` (in place).

    Args:
        canvas: ``uint8 [N, C, C]``.
        patches: ``uint8 [N, h, w]``.
        top, left: ``int [N]`` upper-left corners; patches lie inside the canvas.
    """
    n, h, w = patches.shape
    rows = (top[:, None] + np.arange(h))[:, :, None]
    cols = (left[:, None] + np.arange(w))[:, None, :]
    idx = np.arange(n)[:, None, None]
    canvas[idx, rows, cols] = np.maximum(canvas[idx, rows, cols], patches)


def _resize(images: np.ndarray, side: int) -> np.ndarray:
    """Area-resize ``uint8 [N, H, W]`` to ``[N, side, side]`` (bilinear with antialias when enlarging)."""
    if images.shape[-1] == side:
        return images
    x = torch.from_numpy(images).float()[:, None]
    enlarge = side > images.shape[-1]
    y = F.interpolate(x, size=(side, side), mode="bilinear" if enlarge else "area", align_corners=False if enlarge else None)
    return y[:, 0].round_().clamp_(0, 255).to(torch.uint8).numpy()


def _block_scenes(src: np.ndarray, cfg: SceneConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scenes of one block of sources: ``(uint8 [n, out, out], item boxes int [n, 4])``.

    Boxes are ``(top, left, height, width)`` of the item on the canvas, pixels.
    """
    n, s, _ = src.shape
    c, f = cfg.canvas_px, cfg.fragment_px
    canvas = np.zeros((n, c, c), dtype=np.uint8)
    # clutter: fragment k of scene i is cut from another item of the same block
    for _ in range(cfg.fragments):
        other = (np.arange(n) + rng.integers(1, max(n, 2), size=n)) % n if n > 1 else np.zeros(n, dtype=np.int64)
        cy, cx = rng.integers(0, s - f + 1, size=(2, n))
        rows = (cy[:, None] + np.arange(f))[:, :, None]
        cols = (cx[:, None] + np.arange(f))[:, None, :]
        frag = src[other[:, None, None], rows, cols]
        ty, tx = rng.integers(0, c - f + 1, size=(2, n))
        _paste_max(canvas, frag, ty, tx)
    scale = rng.uniform(cfg.scale_range[0], cfg.scale_range[1], size=n)
    sides = np.maximum(4, np.round(s * scale).astype(np.int64))
    boxes = np.zeros((n, 4), dtype=np.int64)
    for side in np.unique(sides):  # one vectorised paste per item size
        sel = np.flatnonzero(sides == side)
        items = _resize(src[sel], int(side))
        ty = rng.integers(0, c - side + 1, size=len(sel))
        tx = rng.integers(0, c - side + 1, size=len(sel))
        sub = canvas[sel]
        _paste_max(sub, items, ty, tx)
        canvas[sel] = sub
        boxes[sel] = np.stack([ty, tx, np.full_like(ty, side), np.full_like(tx, side)], axis=1)
    return _resize(canvas, cfg.output_px), boxes


def make_scenes(sources: np.ndarray, cfg: SceneConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Scenes built around each source image, in order.

    Args:
        sources: ``uint8 [N, 28, 28]`` items (grey).
        cfg: the scene construction.
        split: ``"train"`` or ``"test"`` (enters the seeds, so the two splits' layouts differ).

    Returns:
        ``(scenes uint8 [N, 1, out, out], boxes int64 [N, 4])``: the item's ``(top, left, height,
        width)`` on the canvas, pixels.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    sources = np.asarray(sources)
    if sources.dtype != np.uint8 or sources.ndim != 3 or sources.shape[1] != sources.shape[2]:
        raise ValueError(f"sources must be uint8 [N, S, S], got {sources.dtype} {sources.shape}")
    cfg.check_fits(sources.shape[1])
    out, boxes = [], []
    for b, start in enumerate(range(0, len(sources), cfg.block)):
        rng = np.random.default_rng([cfg.seed, SPLITS[split], b])
        scenes, bx = _block_scenes(sources[start : start + cfg.block], cfg, rng)
        out.append(scenes)
        boxes.append(bx)
    if not out:
        return np.zeros((0, 1, cfg.output_px, cfg.output_px), np.uint8), np.zeros((0, 4), np.int64)
    return np.concatenate(out)[:, None], np.concatenate(boxes)


def item_token_share(boxes: np.ndarray, cfg: SceneConfig, grid: int) -> np.ndarray:
    """Share of a ``grid x grid`` token layout touched by each item's bounding box, ``float [N]``."""
    cell = cfg.canvas_px / grid
    top, left, h, w = (boxes[:, i].astype(float) for i in range(4))
    rows = np.floor((top + h - 1) / cell) - np.floor(top / cell) + 1
    cols = np.floor((left + w - 1) / cell) - np.floor(left / cell) + 1
    return rows * cols / grid**2


__all__ = ["COARSE_GROUPS", "GARMENT_GROUPS", "GROUPINGS", "SPLITS", "SceneConfig", "coarse_labels", "item_token_share", "make_scenes"]
