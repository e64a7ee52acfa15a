"""The disk fills up in the middle of a run: one line, exit 2, and a run directory that
``--resume`` finishes into the same files as a run that never stopped.

Two ways to fill it: a writer that refuses bytes past a budget (``ENOSPC`` from ``write``, as
a full disk gives; runs everywhere), and a real small tmpfs where the machine lets the test
mount one (root with CAP_SYS_ADMIN; skipped otherwise).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
from pathlib import Path

import pytest

import analysis.files
from scenarios import rundir
from scenarios.cli import main

from smallrun import small_args

COMPARED = (rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL, rundir.TOKEN_MAPS, rundir.CHECKPOINT)


def _argv(fmnist_dir: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "static-cell", *small_args(fmnist_dir, cache, rounds=4), "--threads", "1", "--quiet",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fmnist_dir) -> Path:
    base = tmp_path_factory.mktemp("full-ref")
    assert main(_argv(fmnist_dir, base / "cache", base / "run")) == 0
    return base / "run"


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class _Disk:
    """Bytes left on a pretend disk shared by every atomic write."""

    def __init__(self, free_bytes: int) -> None:
        self.free = free_bytes

    def writer(self, original):
        disk = self

        class Limited:
            def __init__(self, fh) -> None:
                self.fh = fh

            def write(self, data) -> int:
                if len(data) > disk.free:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.free -= len(data)
                return self.fh.write(data)

            def __getattr__(self, name):
                return getattr(self.fh, name)

        @contextlib.contextmanager
        def limited_writer(path):
            with original(path) as fh:
                yield Limited(fh)

        return limited_writer


def _check_one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and re.match(r"sflsim: error: .*No space left on device", lines[0]), err
    assert "Traceback" not in err
    return lines[0]


def _resumes_to_reference(fmnist_dir, cache: Path, out: Path, reference: Path) -> None:
    assert main(_argv(fmnist_dir, cache, out, "--resume")) == 0
    for name in COMPARED:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not list(out.glob(".*.tmp")), "no temporary file is left behind"


@pytest.mark.parametrize("share", [0.05, 0.4, 0.8])
def test_disk_full_mid_run_then_resume(share, tmp_path, fmnist_dir, reference, monkeypatch, capsys):
    disk = _Disk(int(share * _size(reference)))
    monkeypatch.setattr(analysis.files, "atomic_writer", disk.writer(analysis.files.atomic_writer))
    out = tmp_path / "run"
    assert main(_argv(fmnist_dir, tmp_path / "cache", out)) == 2
    line = _check_one_line(capsys)
    assert str(out) in line, "the line says where"
    assert not list(out.glob(".*.tmp")), "a failed write leaves no temporary file"
    monkeypatch.undo()  # space is freed
    _resumes_to_reference(fmnist_dir, tmp_path / "cache", out, reference)


def test_real_tmpfs_fills_then_resume(tmp_path, fmnist_dir, reference, capsys):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    size_kib = max(64, int(0.5 * _size(reference)) // 1024)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("this machine does not let the test mount a tmpfs")
    try:
        out = mount / "run"
        assert main(_argv(fmnist_dir, tmp_path / "cache", out)) == 2
        _check_one_line(capsys)
        subprocess.run(["mount", "-o", f"remount,size={size_kib * 8}k", str(mount)], check=True)
        _resumes_to_reference(fmnist_dir, tmp_path / "cache", out, reference)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
