"""learner.device (auto, cpu, cuda) and the activation cache, on real runs through the CLI."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from learning.learner_config import LearnerConfig
from scenarios.cli import main

from smallrun import small_args

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@no_cuda
def test_auto_resolves_to_cpu_without_a_gpu():
    assert LearnerConfig().device == "cpu"
    assert LearnerConfig(device="auto").resolved_device == "cpu"
    assert LearnerConfig(device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        LearnerConfig(device="tpu")


@no_cuda
def test_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, fmnist_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = small_args(fmnist_dir, tmp_path / "cache", **{"learner.device": "cuda"})
    assert main(["run", *args, "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "device='cuda'" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def _tables(out):
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in ("rounds", "decisions", "events")}


@no_cuda
def test_config_records_the_resolved_device_and_the_cache_changes_no_result(tmp_path, fmnist_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the default scenario (paper-cell: frozen device part, retention from the round's batches)
    extra = {"devices": 4, "learner.eval_samples": 96, "learner.eval_batch_size": 32,
             "planning.retention": "round"}
    args = small_args(fmnist_dir, tmp_path / "cache", **extra)
    assert main(["run", *args, "--quiet", "--out", "on"]) == 0
    assert main(["run", *args, "--set", "learner.activation_cache=false", "--quiet", "--out", "off"]) == 0
    record = json.loads((tmp_path / "on" / "config.json").read_text())
    assert record["config"]["learner"]["device"] == "cpu"
    on, off = _tables(tmp_path / "on"), _tables(tmp_path / "off")
    for name in on:
        pd.testing.assert_frame_equal(on[name].drop(columns=["wall_s"], errors="ignore"),
                                      off[name].drop(columns=["wall_s"], errors="ignore"), check_exact=True)
    assert (on["decisions"]["status"] == "ok").any()
