"""Kill -9 at any moment, then --resume: the same files as a run that was never interrupted.

The tables are written as one part per round while the run goes and joined into one file at
the end; parts are per round, so the final files are compared byte for byte.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from scenarios import rundir
from scenarios.cli import main
from scenarios.lock import LOCK_FILE

from smallrun import small_args

COMPARED = (rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL, rundir.TOKEN_MAPS)


def _cmd(fmnist_dir: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scenarios.cli", "run", *small_args(fmnist_dir, cache, rounds=10),
            "--threads", "1", "--quiet", "--out", str(out), *extra]


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fmnist_dir) -> Path:
    base = tmp_path_factory.mktemp("reference")
    out = base / "run"
    _run(_cmd(fmnist_dir, base / "cache", out), base)
    return out


def _rounds_written(out: Path) -> int:
    """Rounds whose rows are on disk (the checkpoint may still be one behind)."""
    if (out / rundir.ROUNDS).is_file():
        return pq.ParquetFile(out / rundir.ROUNDS).metadata.num_rows - 1
    return len(list(rundir.parts_dir(out, rundir.ROUNDS).glob("part-*.parquet"))) - 1


# Kill points: after round r has been written, plus a fraction of a round's wall time, so the
# kill lands between rounds, inside the training of a round, and inside the writes of a round.
@pytest.mark.parametrize("after_round, fraction", [(0, 0.0), (2, 0.5), (4, 0.9)])
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, fmnist_dir, reference, after_round, fraction):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(fmnist_dir, tmp_path / "cache", out), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        marks = []
        while _rounds_written(out) < after_round + 1:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            if _rounds_written(out) >= after_round and not marks:
                marks.append(time.monotonic())
            time.sleep(0.002)
        round_s = time.monotonic() - marks[0] if marks else 0.0
        time.sleep(fraction * round_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / rundir.ROUNDS).is_file(), "killed too late to test anything"
    # The killed run's tables are folders of parts that pandas reads as one table.
    rounds_at_kill = pd.read_parquet(rundir.parts_dir(out, rundir.ROUNDS))
    assert rounds_at_kill["round"].tolist() == list(range(len(rounds_at_kill)))

    _run(_cmd(fmnist_dir, tmp_path / "cache", out, "--resume"), tmp_path)
    for name in COMPARED:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not list(out.glob(".*.tmp"))
    assert not list(out.glob(f"*{rundir.PARTS_SUFFIX}")), "parts are joined and removed at the end"
    # config.json differs only in the cache folder, which is per test here.
    ours, theirs = (json.loads((d / rundir.CONFIG).read_text()) for d in (out, reference))
    ours["config"].pop("cache_dir"), theirs["config"].pop("cache_dir")
    assert ours == theirs


def test_resume_refuses_another_config(tmp_path, fmnist_dir, reference, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (rundir.CONFIG, rundir.CHECKPOINT):
        (copy / name).write_bytes((reference / name).read_bytes())
    args = small_args(fmnist_dir, tmp_path / "cache", rounds=10, deadline_s=10.0)
    assert main(["run", *args, "--out", str(copy), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "was run with a different config (deadline_s: stored 30.0, now 10.0)" in err


def test_resume_of_a_finished_run_changes_nothing(tmp_path, fmnist_dir, reference):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in reference.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.name != LOCK_FILE}
    assert main(["run", *small_args(fmnist_dir, tmp_path / "cache", rounds=10), "--threads", "1",
                 "--quiet", "--out", str(copy), "--resume"]) == 0
    after = {p.name: p.read_bytes() for p in copy.iterdir() if p.name != LOCK_FILE}
    assert before == after
