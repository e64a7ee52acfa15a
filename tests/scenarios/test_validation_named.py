"""Named bad inputs a new user tried: each is one line on stderr, exit 2, nothing written.

Also damaged files (a truncated or corrupted checkpoint, config file, table part, cached
backbone) and checkpoints that would run code when unpickled.
"""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scenarios import rundir
from scenarios.cli import main
from scenarios.runner import execute, prepare, resolve
from scenarios.registry import load

from smallrun import small_args

MARKER = "pwned-marker"


class Exploit:
    """Unpickling this creates a marker file (what a hostile checkpoint could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _one_line(capsys, status: int, fragment: str = "") -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert re.match(r"sflsim( plot)?: error: ", lines[0]) and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]
    return lines[0]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# (argv after `sflsim` and before `--out out`, fragment of the one line)
NAMED = [
    (["run", "static-cell", "--set", "model.img_size=64"], "model.img_size=64: the fashion-mnist images are 32x32"),
    (["run", "static-cell", "--set", "model.num_heads=5"], "num_heads"),
    (["run", "static-cell", "--set", "model.embed_dim=100"], "embed_dim"),
    (["run", "--set", "world.channel.rician_k_db=1e6"], "rician_k_db must be in [-30, 40] dB"),
    (["run", "--set", "world.ofdma.bs_noise_figure_db=1e6"], "bs_noise_figure_db must be in [0, 30]"),
    (["run", "--set", "world.device.energy_budget_j=0"], "energy_budget_j must be in (0, 1e9] J, got 0.0"),
    (["run", "--set", "token_maps=100000"], "token_maps"),
    (["run", "--set", "token_maps=100"], "token_maps=100: must be <= learner.probe_samples"),
    (["run", "--set", "world.ofdma.bs_tx_power_dbm=1e6"], "bs_tx_power_dbm must be in [-10, 70]"),
    (["run", "--set", "learner.batch_size=100000"], "learner.batch_size=100000"),
    (["run", "--set", "learner.batch_size=1000", "--set", "train_samples_per_device=999"],
     "learner.batch_size=1000: must be <= train_samples_per_device"),
    (["run", "--set", "pretrain.source=file", "--set", "pretrain.checkpoint=/etc/passwd"],
     "pretrain.checkpoint=/etc/passwd: not a torch state dict"),
    (["run", "--set", "pretrain.checkpoint=/etc/passwd", "--set", "pretrain.source=file"],
     "pretrain.checkpoint=/etc/passwd: not a torch state dict"),
    (["run", "--set", "pretrain.checkpoint=x.pt"], "is read only with pretrain.source=file"),
    (["run", "--config", "."], "--config . is a directory"),
    (["run", "static-cell", "--set", "cache_dir=/sys/cache"], "/sys is a kernel file system"),
]


@pytest.mark.parametrize("argv, fragment", NAMED, ids=[" ".join(a[1:]) for a, _ in NAMED])
def test_named_bad_input(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SFLSIM_CACHE", str(tmp_path / "cache"))
    assert main([*argv, "--out", "out"]) == 2
    _one_line(capsys, 2, fragment)
    assert not any(tmp_path.iterdir())


def test_outputs_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    before = _tree(tmp_path)
    for argv, fragment in (
        (["run", "--out", "afile/run"], "cannot be created, " + str(tmp_path / "afile") + " is a file"),
        (["run", "--out", "afile"], "exists and is not a directory"),
        (["run", "--out", "/sys/run"], "/sys is a kernel file system"),
        (["run", "--out", "/proc/self/run"], "/proc is a kernel file system"),
        (["plot", str(tmp_path), "--out", "afile"], "--out afile exists and is not a directory"),
        (["sweep", "--grid", "devices=2,3", "--out", "afile"], "afile"),
    ):
        assert main(argv) == 2, argv
        _one_line(capsys, 2, fragment)
    assert _tree(tmp_path) == before
    monkeypatch.setenv("SFLSIM_CACHE", str(tmp_path / "afile"))
    assert main(["run", "static-cell", "--out", "out"]) == 2  # its backbone is pretrained and cached
    _one_line(capsys, 2, f"SFLSIM_CACHE={tmp_path / 'afile'}: exists and is not a folder")
    assert _tree(tmp_path) == before


def test_both_orders_of_source_and_checkpoint_are_accepted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "w.pt"
    torch.save({"x": torch.zeros(2)}, weights)
    for pair in (["pretrain.source=file", f"pretrain.checkpoint={weights}"],
                 [f"pretrain.checkpoint={weights}", "pretrain.source=file"]):
        assert main(["run", "--set", pair[0], "--set", pair[1], "--out", "out", "--dry-run"]) == 0
        assert "would write out" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_file_holding_a_pickled_object_is_refused_unrun(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / MARKER
    torch.save({"w": torch.zeros(1), "evil": Exploit(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Exploit(marker)))
    for name in ("evil.pt", "evil.pkl"):
        assert main(["run", "--set", "pretrain.source=file", "--set", f"pretrain.checkpoint={name}",
                     "--out", "out"]) == 2
        _one_line(capsys, 2, f"pretrain.checkpoint={name}: not a torch state dict")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_scenario_whose_build_raises_is_one_line(tmp_path, fmnist_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "boom.py").write_text(
        '"""A scenario whose build step fails."""\n'
        "from dataclasses import dataclass\n"
        "from scenarios.base import ScenarioConfig\n\n"
        "@dataclass(frozen=True)\nclass Config(ScenarioConfig):\n    name: str = 'boom'\n\n"
        "def build(config, status=None):\n    raise RuntimeError('the cell has no antenna')\n")
    assert main(["run", "boom.py", *small_args(fmnist_dir, tmp_path / "cache"), "--out", "out"]) == 2
    _one_line(capsys, 2, "build step failed: RuntimeError: the cell has no antenna")
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--set", "devices=0", "--out", "out", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("sflsim: error: devices=0")


# ------------------------------------------------------------------------- damaged run directories
@pytest.fixture(scope="module")
def finished(tmp_path_factory, fmnist_dir) -> Path:
    base = tmp_path_factory.mktemp("finished")
    out = base / "run"
    assert main(["run", "static-cell", *small_args(fmnist_dir, base / "cache", rounds=2), "--threads", "1", "--quiet",
                 "--out", str(out)]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _resume(fmnist_dir, tmp_path, out: Path) -> int:
    return main(["run", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=2), "--threads", "1", "--quiet",
                 "--out", str(out), "--resume"])


@pytest.mark.parametrize("damage", ["truncated", "bit-flip", "empty", "pickle", "old-pickle-name"])
def test_damaged_or_hostile_checkpoint_is_refused_whole(damage, finished, fmnist_dir, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    ckpt = out / rundir.CHECKPOINT
    data = ckpt.read_bytes()
    marker = tmp_path / MARKER
    if damage == "truncated":
        ckpt.write_bytes(data[: len(data) // 2])
    elif damage == "bit-flip":
        ckpt.write_bytes(data[:-100] + bytes([data[-100] ^ 0x10]) + data[-99:])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "pickle":
        ckpt.write_bytes(pickle.dumps({"round": Exploit(marker)}))
    else:
        ckpt.unlink()
        torch.save({"round": Exploit(marker)}, out / rundir.OLD_CHECKPOINT)
    before = _tree(out)
    assert _resume(fmnist_dir, tmp_path, out) == 2
    line = _one_line(capsys, 2)
    assert re.search(r"damaged|not loaded", line), line
    assert not marker.exists()
    assert _tree(out) == before


def test_damaged_config_json_is_one_line(finished, fmnist_dir, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    (out / rundir.CONFIG).write_text('{"config": {"rounds": 2')
    before = _tree(out)
    assert _resume(fmnist_dir, tmp_path, out) == 2
    _one_line(capsys, 2, "config.json is damaged")
    assert _tree(out) == before


def test_damaged_table_file_is_one_line_for_plot(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    data = (out / rundir.ROUNDS).read_bytes()
    (out / rundir.ROUNDS).write_bytes(data[: len(data) // 3])
    assert main(["plot", str(out)]) == 2
    # the recorded content hash catches the cut file first (issue 24, finding 7)
    _one_line(capsys, 2, "rounds.parquet differs from what the run wrote")
    assert not (out / "figures").exists()


def test_unfinished_run_with_a_damaged_part_is_refused(fmnist_dir, tmp_path, capsys):
    """A run stopped after round 1 (parts + checkpoint), one part then damaged: --resume refuses."""
    scenario = load("static-cell")
    values = dict(a.split("=", 1) for a in small_args(fmnist_dir, tmp_path / "cache", rounds=2)[1::2])
    cfg = resolve(scenario, values)
    out = tmp_path / "run"

    def stop(row, total):
        if row["round"] == 1:
            raise KeyboardInterrupt

    torch.set_num_threads(1)
    with pytest.raises(KeyboardInterrupt):
        execute(prepare(scenario, cfg, out), on_round=stop)
    part = rundir.part_path(out, rundir.EVENTS, 1)
    assert part.is_file() and not (out / rundir.EVENTS).exists()
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")
    before = _tree(out)
    assert _resume(fmnist_dir, tmp_path, out) == 2
    _one_line(capsys, 2, "content hash mismatch")
    assert _tree(out) == before


@pytest.mark.parametrize("damage", ["truncated", "bit-flip"])
def test_a_damaged_backbone_cache_entry_is_rebuilt(damage, fmnist_dir, tmp_path, capsys):
    args = small_args(fmnist_dir, tmp_path / "cache", rounds=1, **{"pretrain.source": "own",
                      "pretrain.public_samples": 200, "pretrain.epochs": 0.2, "pretrain.eval_samples": 0})
    assert main(["run", "static-cell", *args, "--threads", "1", "--quiet", "--out", str(tmp_path / "a")]) == 0
    (entry,) = (tmp_path / "cache").glob("backbone-*.pt")
    good = torch.load(entry, weights_only=True)["state"]
    assert entry.with_name(entry.name + ".sha256").is_file()
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    else:  # one bit inside a weight: torch would load it without a word
        i = len(data) // 2
        entry.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    capsys.readouterr()
    assert main(["run", "static-cell", *args, "--threads", "1", "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert "was damaged" in capsys.readouterr().err
    rebuilt = torch.load(entry, weights_only=True)["state"]  # same recipe, same weights
    assert rebuilt.keys() == good.keys() and all(torch.equal(rebuilt[k], good[k]) for k in good)
    for name in (rundir.ROUNDS, rundir.EVENTS):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# ------------------------------------------------------------------------------ through the real CLI
@pytest.mark.parametrize("argv, fragment", [
    (["run", "--set", "world.ofdma.bs_noise_figure_db=1e6"], "bs_noise_figure_db must be in [0, 30]"),
    (["run", "--set", "pretrain.source=file", "--set", "pretrain.checkpoint=/etc/passwd"], "not a torch state dict"),
    (["run", "--config", "."], "is a directory"),
    (["run", "--out", "/sys/x"], "/sys is a kernel file system"),
])
def test_real_cli_subprocess(argv, fragment, tmp_path):
    if "--out" not in argv:
        argv = [*argv, "--out", "out"]
    proc = subprocess.run([sys.executable, "-m", "scenarios.cli", *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "SFLSIM_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not any(tmp_path.iterdir())
