"""Cluttered scenes: a pure function of (seed, split, index), clutter from the item's own block."""
from __future__ import annotations

import numpy as np
import pytest

from learning.scenes import COARSE_GROUPS, GROUPINGS, SceneConfig, coarse_labels, item_token_share, make_scenes


def _sources(n: int, value: int, seed: int = 0) -> np.ndarray:
    """``n`` 28 px items whose every pixel is ``value`` inside a 20 px square (0 around it)."""
    x = np.zeros((n, 28, 28), dtype=np.uint8)
    x[:, 4:24, 4:24] = value
    return x


def test_scenes_are_a_pure_function_of_seed_split_and_index():
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    cfg = SceneConfig(block=100)
    a, boxes_a = make_scenes(src, cfg, "train")
    b, boxes_b = make_scenes(src, cfg, "train")
    assert a.shape == (300, 1, 32, 32) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(boxes_a, boxes_b)
    # a block's scenes do not depend on the other blocks: the first block alone gives the same
    first, _ = make_scenes(src[:100], cfg, "train")
    assert np.array_equal(first, a[:100])
    # another seed or split draws other layouts
    assert not np.array_equal(make_scenes(src, SceneConfig(block=100, seed=1), "train")[0], a)
    assert not np.array_equal(make_scenes(src, cfg, "test")[0], a)


def test_clutter_comes_only_from_the_items_own_block():
    # block 0 holds items of value 100, block 1 of value 200: with no resize (output = canvas)
    # a scene of block 0 may hold only 0 and 100, one of block 1 only 0 and 200
    src = np.concatenate([_sources(50, 100), _sources(50, 200)])
    cfg = SceneConfig(canvas_px=64, output_px=64, fragments=8, block=50)
    scenes, _ = make_scenes(src, cfg, "train")
    assert set(np.unique(scenes[:50])) == {0, 100}
    assert set(np.unique(scenes[50:])) == {0, 200}


def test_the_item_is_whole_inside_its_box_and_clutter_never_hides_it():
    rng = np.random.default_rng(2)
    src = rng.integers(1, 256, size=(40, 28, 28), dtype=np.uint8)
    cfg = SceneConfig(canvas_px=64, output_px=64, fragments=10)
    scenes, boxes = make_scenes(src, cfg, "test")
    for i, (top, left, h, w) in enumerate(boxes):
        assert (h, w) == (28, 28) and 0 <= top <= 64 - 28 and 0 <= left <= 64 - 28
        # pixel values combine by maximum: the item's own pixels are there, or brighter clutter
        assert np.all(scenes[i, 0, top : top + h, left : left + w] >= src[i])


def test_item_token_share_counts_the_patches_a_box_touches():
    cfg = SceneConfig(canvas_px=64)
    # an 8x8 grid of 8 px cells on the canvas: a 28 px box at (0, 0) touches 4 x 4 cells;
    # at (4, 4) it spans pixels 4..31, still 4 x 4; at (5, 5) pixels 5..32: 5 x 5
    boxes = np.array([[0, 0, 28, 28], [4, 4, 28, 28], [5, 5, 28, 28]])
    assert item_token_share(boxes, cfg, 8) == pytest.approx([16 / 64, 16 / 64, 25 / 64])


def test_scaled_items_take_sizes_in_the_range():
    rng = np.random.default_rng(3)
    src = rng.integers(0, 256, size=(200, 28, 28), dtype=np.uint8)
    _, boxes = make_scenes(src, SceneConfig(scale_range=(0.5, 1.5)), "train")
    assert boxes[:, 2].min() >= 14 and boxes[:, 2].max() <= 42 and len(np.unique(boxes[:, 2])) > 5


def test_coarse_groups_cover_the_ten_classes_once():
    members = sorted(c for _, group in COARSE_GROUPS for c in group)
    assert members == list(range(10))
    assert coarse_labels(np.arange(10)).tolist() == [0, 1, 0, 2, 0, 3, 0, 3, 4, 3]


@pytest.mark.parametrize("grouping", sorted(GROUPINGS))
def test_every_grouping_partitions_the_ten_classes(grouping):
    members = sorted(c for _, group in GROUPINGS[grouping] for c in group)
    assert members == list(range(10))
    assert len({name for name, _ in GROUPINGS[grouping]}) == len(GROUPINGS[grouping])


def test_garment_groups_split_the_tops_and_the_footwear_once():
    # T-shirt/top, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot
    assert coarse_labels(np.arange(10), "garments").tolist() == [0, 1, 2, 3, 2, 4, 0, 4, 5, 6]
    with pytest.raises(ValueError, match="grouping must be one of"):
        coarse_labels(np.arange(10), "colours")


@pytest.mark.parametrize("changes, field", [
    ({"canvas_px": 0}, "canvas_px"), ({"fragments": -1}, "fragments"), ({"fragment_px": 0}, "fragment_px"),
    ({"scale_range": (1.5, 1.0)}, "scale_range"), ({"output_px": 128}, "output_px"), ({"block": 0}, "block"),
    ({"seed": -1}, "seed"),
])
def test_bad_scene_settings_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=f"scenes.{field}"):
        SceneConfig(**changes)


def test_a_canvas_too_small_for_the_item_is_refused():
    src = np.zeros((4, 28, 28), dtype=np.uint8)
    with pytest.raises(ValueError, match="scenes.canvas_px"):
        make_scenes(src, SceneConfig(canvas_px=24, output_px=24), "train")
