"""The default scenario, scenes-cell: paper-cell's cell and radio on the cluttered-scenes task."""
from __future__ import annotations

import dataclasses

from scenarios import registry
from scenarios.paper_cell import Config as PaperCell
from scenarios.scenes_cell import Config as ScenesCell


def test_scenes_cell_is_the_default_and_changes_only_the_task():
    assert registry.DEFAULT == "scenes-cell"
    scenes, paper = ScenesCell(), PaperCell()
    # the cell, radio, devices, deadline and planning are paper-cell's, field for field
    for name in ("world", "planning", "devices", "sample_fraction", "deadline_s", "learner", "rounds",
                 "partition", "dirichlet_alpha", "train_samples_per_device"):
        assert getattr(scenes, name) == getattr(paper, name), name
    # the task: cluttered scenes, the garment-pretrained backbone with a fresh head, cut after block 1
    assert scenes.dataset == "fashion-scenes"
    assert (scenes.pretrain.source, scenes.pretrain.recipe, scenes.pretrain.keep_head) == ("shipped", "scenes-garments", False)
    assert dataclasses.replace(scenes.model, cut=paper.model.cut) == paper.model
    assert scenes.model.cut == 1


def test_scenes_cell_validates_and_names_its_shipped_backbone(tmp_path, capsys):
    from scenarios.cli import main

    assert main(["run", "scenes-cell", "--dry-run", "--out", str(tmp_path / "r")]) == 0
    assert not (tmp_path / "r").exists()
    status = main(["run", "scenes-cell", "--dry-run", "--set", "pretrain.recipe=nope", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "pretrain.recipe=nope" in err[0]


def test_scenes_cell_64_changes_only_the_resolution_and_the_backbone():
    from learning.recipes import RECIPES
    from scenarios.scenes_cell_64 import Config as ScenesCell64

    hi, lo = ScenesCell64(), ScenesCell()
    assert hi.name == "scenes-cell-64" and lo.name == "scenes-cell"
    # the whole 64 px canvas, 8 px patches: the token grid (so the payload per token) is unchanged
    assert (hi.scenes.output_px, hi.scenes.canvas_px, hi.model.img_size, hi.model.patch_size) == (64, 64, 64, 8)
    assert hi.model.img_size // hi.model.patch_size == lo.model.img_size // lo.model.patch_size == 8
    assert dataclasses.replace(hi.scenes, output_px=lo.scenes.output_px) == lo.scenes
    assert dataclasses.replace(hi.model, img_size=lo.model.img_size, patch_size=lo.model.patch_size) == lo.model
    assert dataclasses.replace(hi.pretrain, recipe=lo.pretrain.recipe) == lo.pretrain
    for f in dataclasses.fields(lo):
        if f.name not in ("name", "scenes", "model", "pretrain"):
            assert getattr(hi, f.name) == getattr(lo, f.name), f.name
    # its backbone is scenes-garments on that geometry, trained 12 epochs instead of 5
    r64, r32 = RECIPES[hi.pretrain.recipe], RECIPES["scenes-garments"]
    assert (r64.model.img_size, r64.model.patch_size, r64.scenes.output_px, r64.pretrain.epochs) == (64, 8, 64, 12.0)
    assert dataclasses.replace(r64, name=r32.name, model=r32.model, scenes=r32.scenes,
                               pretrain=dataclasses.replace(r64.pretrain, epochs=r32.pretrain.epochs)) == r32


def test_scenes_cell_64_validates_against_its_shipped_backbone(tmp_path, capsys):
    from scenarios.cli import main

    assert main(["run", "scenes-cell-64", "--dry-run", "--out", str(tmp_path / "r")]) == 0
    # the 32 px geometry does not fit the 64 px backbone: refused before anything is written
    status = main(["run", "scenes-cell-64", "--dry-run", "--set", "model.img_size=32", "--set", "model.patch_size=4",
                   "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "img_size" in err[0], err
    assert not (tmp_path / "r").exists()
