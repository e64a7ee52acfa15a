"""Bad input: one line naming what is wrong, exit status 2, no traceback, no run directory."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from scenarios.cli import main

from smallrun import small_args

# (argv after `sflsim`, a fragment the one-line message must contain)
CASES = [
    (["run", "no-such-scenario"], "unknown scenario 'no-such-scenario'; choose one of"),
    (["run", "missing_file.py"], "scenario file not found: missing_file.py"),
    (["run", "--set", "nope=1"], "unknown key 'nope'; sflsim show lists every key"),
    (["run", "--set", "deadline=1"], "unknown key 'deadline'; did you mean deadline_s?"),
    (["run", "--set", "tsflora.tokens=4"], "unknown key 'tsflora.tokens': policy tsflora is not the chosen policy"),
    (["run", "--set", "policy=tsflora", "--set", "tsflora.tokns=4"], "did you mean tsflora.tokens"),
    (["run", "--set", "world.nope=1"], "unknown key 'world.nope'"),
    (["run", "--set", "world.channel.nope=1"], "unknown key 'world.channel.nope'"),
    (["run", "--set", "devices"], "--set expects key=value, got 'devices'"),
    (["run", "--set", "devices=abc"], "devices: expected an integer, got 'abc'"),
    (["run", "--set", "rounds=2.5"], "rounds: expected an integer, got '2.5'"),
    (["run", "--set", "deadline_s=fast"], "deadline_s: expected a number, got 'fast'"),
    (["run", "--set", "deadline_s=nan"], "deadline_s: expected a finite number, got 'nan'"),
    (["run", "--set", "deadline_s=inf"], "deadline_s: expected a finite number, got 'inf'"),
    (["run", "--set", "deadline_s=-1"], "deadline_s must be a finite number > 0, got -1.0"),
    (["run", "--set", "deadline_s=0"], "deadline_s must be a finite number > 0, got 0.0"),
    (["run", "--set", "devices=0"], "devices must be a positive integer, got 0"),
    (["run", "--set", "rounds=-3"], "rounds must be a positive integer, got -3"),
    (["run", "--set", "train_samples_per_device=0"], "train_samples_per_device must be a positive integer, got 0"),
    (["run", "--set", "policy=fastest"], "policy must be one of "),
    (["run", "--set", "dataset=mnist"], "dataset must be one of fashion-mnist, fashion-scenes, cifar10"),
    (["run", "--set", "partition=skewed"], "partition must be one of dirichlet, iid, got 'skewed'"),
    (["run", "--set", "dirichlet_alpha=0"], "dirichlet_alpha must be a finite number > 0, got 0.0"),
    (["run", "--set", "sample_fraction=1.5"], "sample_fraction must be in (0, 1], got 1.5"),
    (["run", "--set", "keep_ratio=0"], "keep_ratio must be in (0, 1], got 0.0"),
    (["run", "--set", "world.cell_radius_m=-5"], "cell_radius_m must be > 0, got -5.0"),
    (["run", "--set", "world.channel.pathloss_model=hata"], "pathloss_model must be one of"),
    (["run", "--set", "world.channel.fading=nakagami"], "fading must be one of"),
    (["run", "--set", "world.ofdma.channel_bandwidth_hz=0"], "world.ofdma.channel_bandwidth_hz=0"),
    (["run", "--set", "world.device.kappa=-1e-28"], "kappa"),
    (["run", "--set", "world.device.max_tx_power_dbm=nan"], "max_tx_power_dbm: expected a finite number"),
    (["run", "--set", "world.mobility.inner_radius_m=-1"], "inner_radius_m must be >= 0, got -1.0"),
    (["run", "--set", "world.num_devices=5"], "world.num_devices follows devices; set devices instead"),
    (["run", "--set", "learner.strategy=local"], "learner.strategy follows policy; set policy instead"),
    (["run", "--set", "learner.lr=-0.1"], "lr must be > 0, got -0.1"),
    (["run", "--set", "learner.batch_size=0"], "batch_size must be > 0, got 0"),
    (["run", "--set", "learner.uplink_bits_per_value=64"], "uplink_bits_per_value must be in [1, 16] or None, got 64"),
    (["run", "--set", "learner.token_policy=best"], "token_policy must be one of"),
    (["run", "--set", "model.cut=9"], "cut must be in [0, depth=6], got 9"),
    (["run", "--set", "model.patch_size=5"], "patch_size must divide img_size=32, got 5"),
    (["run", "--set", "model.model_name=resnet50"], "model_name must be a timm ViT"),
    (["run", "--set", "pretrain.source=hub"], "source must be one of"),
    (["run", "--set", "pretrain.source=file"], "checkpoint must name a file when source='file'"),
    (["run", "--config", "missing.toml"], "--config file not found: missing.toml"),
    (["run", "--threads", "0"], "--threads must be > 0, got 0"),
    (["run", "--seed", "-1"], "seed must be a non-negative integer, got -1"),
    (["run", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["sweep", "--out", "sw", "--grid", "policy="], "--grid policy= needs at least one value"),
    (["sweep", "--out", "sw", "--grid", "policy=st-sflora,bogus"], "policy must be one of"),
    (["sweep", "--out", "sw", "--grid", "speed=1,2"], "unknown key 'speed'"),
    (["sweep", "--out", "sw", "--grid", "devices=2", "--workers", "0"], "--workers must be > 0, got 0"),
    (["sweep", "--out", "sw", "--grid", "devices=2,2"], "--grid devices=2,2: 2 given twice"),
    (["sweep", "--out", "sw", "--grid", "devices=2", "--grid", "devices=3"], "--grid devices is given 2 times"),
    (["sweep", "--out", "sw", "--grid", "seed=0,1", "--seed", "3"], "--grid seed=... and --seed 3 cannot be combined"),
    (["plot", "not-a-run"], "not-a-run"),
]


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_and_status_2(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "run":
        argv = [*argv, "--out", "out"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert re.match(r"sflsim( plot| compare)?: error: ", lines[0]), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "sw").exists()
    assert not (tmp_path / "runs").exists()


def test_config_file_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text("rounds = = 3\n")
    (tmp_path / "typed.toml").write_text('devices = "many"\n')
    (tmp_path / "unknown.toml").write_text("[world]\ncell_size = 3\n")
    for name, fragment in (("bad.toml", "is not valid TOML"), ("typed.toml", "devices: expected an integer"),
                           ("unknown.toml", "unknown key 'world.cell_size'")):
        assert main(["run", "--config", name, "--out", "out"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()


def test_scenario_file_without_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.py").write_text('"""Nothing here."""\n')
    (tmp_path / "broken.py").write_text("import no_such_module_at_all\n")
    assert main(["run", "empty.py", "--out", "out"]) == 2
    assert "must define `Config`" in capsys.readouterr().err
    assert main(["run", "broken.py", "--out", "out"]) == 2
    assert "failed to import: ModuleNotFoundError" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_impossible_deadline_and_missing_data(tmp_path, fmnist_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = small_args(fmnist_dir, tmp_path / "cache", deadline_s=1e-9)
    assert main(["run", *args, "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "deadline_s=1e-09 is impossible" in err, err
    (tmp_path / "empty").mkdir()
    args = small_args(tmp_path / "empty", tmp_path / "cache", dataset="cifar10")
    assert main(["run", *args, "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cifar10" in err and "not found" in err, err
    args = small_args(tmp_path / "nowhere", tmp_path / "cache", dataset="cifar10")
    assert main(["run", *args, "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data_root=" in err and "not an existing folder" in err, err
    assert not (tmp_path / "out").exists()


def test_existing_run_directory_needs_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    # the record a run writes (a config.json sflsim did not write is no run: issue 24)
    (out / "config.json").write_text('{"scenario": "static-cell", "config": {}, "versions": {"sflsim": "0.1.0"}}')
    assert main(["run", "--out", "out"]) == 2
    assert "holds a run already; pass --resume" in capsys.readouterr().err
    (out / "config.json").write_text("{}")
    assert main(["run", "--out", "out"]) == 2
    assert "its config.json was not written by sflsim" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["run", "--out", "afile"]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_console_script_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", "--set", "devices=-1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sflsim: error: devices=-1: devices must be a positive integer, got -1"
    assert not (tmp_path / "runs").exists()
