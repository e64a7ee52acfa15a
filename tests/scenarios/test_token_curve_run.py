"""``bench/token_curve.py --run DIR`` evaluates the run's own final model (not the backbone)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from scenarios.cli import main
from scenarios.rundir import CHECKPOINT, load_checkpoint

from smallrun import small_args

BENCH = Path(__file__).resolve().parents[2] / "bench" / "token_curve.py"


def _bench():
    spec = importlib.util.spec_from_file_location("token_curve_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_model_carries_the_runs_trained_adapters_head_and_cut(tmp_path, fmnist_dir):
    out = tmp_path / "run"
    assert main(["run", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=2), "--out", str(out)]) == 0
    model, test, path, data = _bench().run_model(out, None)
    trained = load_checkpoint(out / CHECKPOINT)["learner"]["global"]
    params = dict(model.named_parameters())
    assert trained and all(torch.equal(params[k], v) for k, v in trained.items())
    # the head was trained: it is not the freshly initialised one a model without the run has
    fresh = _bench().SplitViT(model.config, seed=0)
    assert not torch.equal(fresh.vit.head.weight, params["vit.head.weight"])
    stored_cut = json.loads((out / "config.json").read_text())["config"]["model"]["cut"]
    assert stored_cut != 0 and model.config.cut == stored_cut and path.name == CHECKPOINT and data == path.read_bytes()
    other = 0  # --cut overrides the run's cut (cut 0 keeps every trained adapter on the server)
    assert _bench().run_model(out, other)[0].config.cut == other
    with pytest.raises(ValueError, match="not a finished run directory"):
        _bench().run_model(tmp_path, None)
