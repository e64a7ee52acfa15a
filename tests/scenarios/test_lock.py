"""One writer per run directory: a second writer is refused naming the first; a dead one's
lock does not block a resume; the first run's files are those of an undisturbed run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenarios import rundir
from scenarios.lock import LOCK_FILE, DirectoryLock, holder
from scenarios.overrides import ConfigError

from smallrun import small_args

FILES = (rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL, rundir.TOKEN_MAPS)


def _cmd(fmnist_dir: Path, cache: Path, out: Path, *extra: str, rounds: int = 6) -> list[str]:
    return [sys.executable, "-m", "scenarios.cli", "run", *small_args(fmnist_dir, cache, rounds=rounds),
            "--threads", "1", "--quiet", "--out", str(out), *extra]


def _wait_for_rounds(out: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while len(list(rundir.parts_dir(out, rundir.ROUNDS).glob("part-*.parquet"))) < n:
        assert proc.poll() is None, "the run ended too soon"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_lock_in_process(tmp_path):
    assert holder(tmp_path) is None
    with DirectoryLock(tmp_path):
        who = holder(tmp_path)
        assert who is not None and f"pid {os.getpid()}" in who
        with pytest.raises(ConfigError, match=rf"run directory {tmp_path} is in use by pid {os.getpid()} on "):
            DirectoryLock(tmp_path).acquire()
    assert holder(tmp_path) is None
    info = json.loads((tmp_path / LOCK_FILE).read_text())
    assert info["pid"] == os.getpid()


def test_second_writer_is_refused_and_first_run_is_intact(tmp_path, fmnist_dir):
    # Long enough that the first run is still going while the second starts (a few seconds).
    rounds = 80
    ref = tmp_path / "ref"
    subprocess.run(_cmd(fmnist_dir, tmp_path / "cache", ref, rounds=rounds), cwd=tmp_path, check=True,
                   capture_output=True, timeout=900)
    out = tmp_path / "run"
    first = subprocess.Popen(_cmd(fmnist_dir, tmp_path / "cache", out, rounds=rounds), cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_rounds(out, 2, first)
        # The first writer is paused while the others try, so it still holds the directory
        # however long their start-up takes (a run can otherwise finish first on a fast machine).
        os.kill(first.pid, signal.SIGSTOP)
        try:
            seconds = [subprocess.Popen(_cmd(fmnist_dir, tmp_path / "cache", out, *extra, rounds=rounds),
                                        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for extra in ((), ("--resume",))]
            for second in seconds:
                _, err = second.communicate(timeout=300)
                assert second.returncode == 2, err
                lines = err.strip().splitlines()
                assert len(lines) == 1, err
                assert f"run directory {out} is in use by pid {first.pid} on " in lines[0], lines[0]
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert first.poll() is None, "the first run ended before the second tried: not tested"
        assert first.wait(timeout=900) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    for name in FILES:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_a_killed_writer_does_not_block_resume(tmp_path, fmnist_dir):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(fmnist_dir, tmp_path / "cache", out), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_rounds(out, 2, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (out / LOCK_FILE).exists()  # the stale file stays; the kernel dropped the lock
    assert holder(out) is None
    done = subprocess.run(_cmd(fmnist_dir, tmp_path / "cache", out, "--resume"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / rundir.ROUNDS).is_file()
