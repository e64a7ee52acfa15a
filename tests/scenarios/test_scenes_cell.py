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
