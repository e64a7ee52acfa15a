"""Issue 24: no code from data, no user file touched. One test (at least) per numbered finding,
named after it; each goes through the command line (``scenarios.cli.main``) with real runs.

"Unchanged" is checked byte for byte: every entry of the folder (hidden ones included; links
as links, not followed), its kind, permission bits and content, before and after.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import sys
from pathlib import Path

import pytest
import torch

from scenarios import rundir
from scenarios.cli import main
from scenarios.lock import LOCK_FILE, DirectoryLock
from scenarios.overrides import ConfigError
from scenarios.sweep import point_dir

from smallrun import small_args

sys.path.insert(0, str(Path(__file__).parents[1] / "learning"))
from test_safe_pickle import _hostile_batches, _write_official_cifar10  # noqa: E402


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` (not following links): kind, mode and bytes or target."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            st = os.lstat(path)
            rel = str(path.relative_to(folder))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
            else:
                out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
    return out


def cli(capsys, *argv: str) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``sflsim argv`` (stops a hang after 120 s)."""
    def hang(signum, frame):
        raise TimeoutError(f"sflsim {' '.join(argv)} blocked")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    try:
        code = main(list(argv))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, capsys.readouterr().err.strip().splitlines()


def run_args(fmnist_dir: Path, cache: Path, out: Path | str | None, *extra: str, rounds: int = 2) -> list[str]:
    tail = ["--out", str(out)] if out is not None else []
    return ["run", *small_args(fmnist_dir, cache, rounds=rounds), "--threads", "1", "--quiet", *tail, *extra]


def refused(code: int, err: list[str], *needles: str) -> None:
    assert code == 2, err
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, fmnist_dir) -> Path:
    base = tmp_path_factory.mktemp("finished")
    assert main(run_args(fmnist_dir, base / "cache", base / "run")) == 0
    return base / "run"


def copy_run(run: Path, where: Path) -> Path:
    return Path(shutil.copytree(run, where / "run", symlinks=True))


def user_folder(where: Path) -> Path:
    """A user's folder holding names a run also writes (the fault-injection case)."""
    folder = where / "mine"
    (folder / "events.parquet.parts").mkdir(parents=True)
    (folder / ".draft.tmp").write_text("my draft")
    (folder / "events.parquet.parts" / "part-000007.parquet").write_bytes(b"my part")
    (folder / "token_maps.npz").write_bytes(b"my maps")
    (folder / "notes.txt").write_text("notes")
    return folder


# ---------------------------------------------------------------------------------- finding 1
def test_finding_1_hostile_cifar_folder_runs_no_code_one_line_exit_2(tmp_path, capsys):
    _write_official_cifar10(tmp_path / "data")
    marker = tmp_path / "marker"
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_2").write_bytes(
        _hostile_batches(marker)["os.system in a dict"])
    code, err = cli(capsys, "run", *small_args(tmp_path / "data", tmp_path / "cache", dataset="cifar10"),
                    "--threads", "1", "--quiet", "--out", str(tmp_path / "out"))
    refused(code, err, "data_batch_2 was refused, not loaded: it asks for posix.system")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- finding 2
@pytest.mark.parametrize("resume", [True, False])
def test_finding_2_resume_on_a_user_folder_changes_no_byte(tmp_path, fmnist_dir, capsys, resume):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", folder), *(["--resume"] if resume else []))
    refused(code, err, f"--out {folder} is not empty", "is not a run directory")
    assert snapshot(folder) == before


@pytest.mark.parametrize("out", ["", "."])
def test_finding_2_resume_in_the_current_folder_changes_no_byte(tmp_path, fmnist_dir, capsys, monkeypatch, out):
    folder = user_folder(tmp_path)
    monkeypatch.chdir(folder)
    before = snapshot(folder)
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", out), "--resume")
    refused(code, err, "the current folder is not empty")
    assert snapshot(folder) == before


def test_finding_2_resume_on_a_sweep_folder_changes_no_byte(tmp_path, fmnist_dir, finished_run, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(finished_run, sweep / "policy=st-sflora")
    (sweep / "sweep.parquet").write_bytes((finished_run / rundir.ROUNDS).read_bytes())
    before = snapshot(sweep)
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", sweep), "--resume")
    refused(code, err, "is not a run directory")
    assert snapshot(sweep) == before


def test_finding_2_a_config_json_sflsim_did_not_write_is_not_a_run(tmp_path, fmnist_dir, capsys):
    folder = user_folder(tmp_path)
    (folder / "config.json").write_text('{"my": "settings"}')
    before = snapshot(folder)
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", folder), "--resume")
    refused(code, err, "its config.json was not written by sflsim")
    assert snapshot(folder) == before


@pytest.mark.parametrize("resume", [True, False])
def test_finding_2_sweep_on_a_user_folder_changes_no_byte(tmp_path, fmnist_dir, capsys, resume):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    code, err = cli(capsys, "sweep", *small_args(fmnist_dir, tmp_path / "cache"), "--grid", "policy=equal,sflora",
                    "--threads", "1", "-q", "--out", str(folder), *(["--resume"] if resume else []))
    refused(code, err, "is not a sweep directory")
    assert snapshot(folder) == before


def test_finding_2_reproduce_on_a_user_folder_changes_no_byte(tmp_path, capsys):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    code, err = cli(capsys, "reproduce", "st-sflora", "--quick", "-q", "--out", str(folder))
    refused(code, err, "is not a reproduction directory")
    assert snapshot(folder) == before


def test_a_run_killed_before_its_first_checkpoint_still_resumes(tmp_path, fmnist_dir, finished_run, capsys):
    # What a run has written before its first checkpoint: config.json and round 0's parts.
    out = tmp_path / "early"
    out.mkdir()
    shutil.copy(finished_run / rundir.CONFIG, out / rundir.CONFIG)
    record = json.loads((out / rundir.CONFIG).read_text())
    record.pop("files")
    (out / rundir.CONFIG).write_text(json.dumps(record))
    rundir.parts_dir(out, rundir.ROUNDS).mkdir()
    rundir.part_path(out, rundir.ROUNDS, 0).write_bytes(b"half a round")
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", out), "--resume")
    assert code == 0, err
    for name in (rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL, rundir.TOKEN_MAPS):
        assert (out / name).read_bytes() == (finished_run / name).read_bytes(), name


# ---------------------------------------------------------------------------------- finding 3
def test_finding_3_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path, fmnist_dir, finished_run, capsys):
    target = tmp_path / "someone_elses_file"
    target.write_text("precious")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / LOCK_FILE).symlink_to(target)
    resumed = copy_run(finished_run, tmp_path)
    (resumed / LOCK_FILE).unlink(missing_ok=True)
    (resumed / LOCK_FILE).symlink_to(target)
    for out, extra in ((fresh, ()), (resumed, ("--resume",))):
        before = snapshot(out)
        code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", out), *extra)
        refused(code, err, f"{out / LOCK_FILE} is a symbolic link")
        assert snapshot(out) == before
    assert target.read_text() == "precious"


def test_finding_3_lock_refuses_pipes_hard_links_and_foreign_content(tmp_path):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    os.mkfifo(pipe / LOCK_FILE)
    hard = tmp_path / "hard"
    hard.mkdir()
    (tmp_path / "other").write_text("other")
    os.link(tmp_path / "other", hard / LOCK_FILE)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / LOCK_FILE).write_text("my own notes")
    for folder, why in ((pipe, "not a regular file"), (hard, "hard link"), (foreign, "not overwritten")):
        with pytest.raises(ConfigError, match=why):
            DirectoryLock(folder).acquire()
    assert (tmp_path / "other").read_text() == "other"
    assert (foreign / LOCK_FILE).read_text() == "my own notes"


# ---------------------------------------------------------------------------------- finding 4
def test_finding_4_sweep_never_replaces_a_users_sweep_parquet(tmp_path, fmnist_dir, capsys):
    args = ["sweep", *small_args(fmnist_dir, tmp_path / "cache", rounds=1), "--grid", "policy=equal",
            "--threads", "1", "-q"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sweep.parquet").write_bytes(b"my own table")
    before = snapshot(mine)
    code, err = cli(capsys, *args, "--out", str(mine))
    refused(code, err, "sweep.parquet was not written by this sweep")
    assert snapshot(mine) == before
    # A sweep's own table is replaced on a rerun; a user's file put in its place is not.
    ours = tmp_path / "ours"
    assert cli(capsys, *args, "--out", str(ours))[0] == 0
    assert cli(capsys, *args, "--out", str(ours), "--resume")[0] == 0
    (ours / "sweep.parquet").write_bytes(b"my own table")
    before = snapshot(ours)
    code, err = cli(capsys, *args, "--out", str(ours), "--resume")
    refused(code, err, "sweep.parquet was not written by this sweep")
    assert snapshot(ours) == before


# ---------------------------------------------------------------------------------- finding 5
@pytest.mark.parametrize("name", [rundir.CONFIG, rundir.CHECKPOINT])
def test_finding_5_a_named_pipe_as_config_or_checkpoint_is_refused_at_once(tmp_path, fmnist_dir, finished_run,
                                                                           capsys, name):
    out = copy_run(finished_run, tmp_path)
    (out / name).unlink()
    os.mkfifo(out / name)
    before = snapshot(out)
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", out), "--resume")
    refused(code, err, f"{out / name} is a named pipe, not a regular file")
    assert snapshot(out) == before


def test_finding_5_a_named_pipe_as_a_table_is_refused_by_plot(tmp_path, finished_run, capsys):
    out = copy_run(finished_run, tmp_path)
    (out / rundir.ROUNDS).unlink()
    os.mkfifo(out / rundir.ROUNDS)
    code, err = cli(capsys, "plot", str(out), "--out", str(tmp_path / "figs"))
    refused(code, err, "rounds.parquet is a named pipe")


# ---------------------------------------------------------------------------------- finding 6
def test_finding_6_a_writer_that_loses_the_lock_race_removes_nothing(tmp_path, fmnist_dir, monkeypatch):
    from scenarios import runner

    out = tmp_path / "run"
    scenario = runner.load(None)
    cfg = runner.resolve(scenario, dict(a.split("=", 1) for a in small_args(fmnist_dir, tmp_path / "cache")[1::2]))
    prepared = runner.prepare(scenario, cfg, out)  # out is absent now
    assert not out.exists()
    held = []

    class RacingLock(DirectoryLock):
        def acquire(self):
            # The first writer creates the folder, writes into it and takes its lock right
            # before this one tries: the interleaving the finding describes.
            (self.directory / "first_writers_file").write_text("first")
            held.append(DirectoryLock(self.directory).acquire())
            return super().acquire()

    monkeypatch.setattr(runner, "DirectoryLock", RacingLock)
    try:
        with pytest.raises(ConfigError, match="is in use by"):
            runner.execute(prepared)
    finally:
        for lock in held:
            lock.release()
    assert (out / "first_writers_file").read_text() == "first"


# ---------------------------------------------------------------------------------- finding 7
def test_finding_7_a_flipped_byte_in_a_finished_table_is_refused_by_resume_plot_compare(
        tmp_path, fmnist_dir, finished_run, capsys):
    out = copy_run(finished_run, tmp_path)
    record = json.loads((out / rundir.CONFIG).read_text())
    assert set(record["files"]) == {rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL, rundir.TOKEN_MAPS}
    data = bytearray((out / rundir.EVENTS).read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / rundir.EVENTS).write_bytes(bytes(data))
    before = snapshot(out)
    for argv in (run_args(fmnist_dir, tmp_path / "cache", out) + ["--resume"],
                 ["plot", str(out), "--out", str(tmp_path / "figs")], ["compare", str(out)]):
        code, err = cli(capsys, *argv)
        refused(code, err, f"{out / rundir.EVENTS} differs from what the run wrote")
    assert snapshot(out) == before


@pytest.mark.parametrize("recorded", [True, False])
def test_finding_7_plot_refuses_a_rounds_table_holding_the_channel_table(tmp_path, finished_run, capsys, recorded):
    out = copy_run(finished_run, tmp_path)
    shutil.copy(out / rundir.CHANNEL, out / rundir.ROUNDS)
    if not recorded:  # a run from before the hashes: the schema still tells the tables apart
        record = json.loads((out / rundir.CONFIG).read_text())
        record.pop("files")
        (out / rundir.CONFIG).write_text(json.dumps(record))
    code, err = cli(capsys, "plot", str(out), "--out", str(tmp_path / "figs"))
    refused(code, err, str(out / rundir.ROUNDS), "content hash mismatch" if recorded else "is not a run's rounds table")


# ---------------------------------------------------------------------------------- finding 8
def test_finding_8_resume_with_another_thread_count_is_refused(tmp_path, fmnist_dir, finished_run, capsys):
    record = json.loads((finished_run / rundir.CONFIG).read_text())
    assert record["machine"] == {"torch_threads": 1, "torch": torch.__version__,
                                 "torch_git": torch.version.git_version,
                                 "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    out = copy_run(finished_run, tmp_path)
    before = snapshot(out)
    args = [a for a in run_args(fmnist_dir, tmp_path / "cache", out) if a != "--threads"]
    args.remove("1")  # the value of --threads (small_args has no bare "1")
    code, err = cli(capsys, *args, "--threads", "2", "--resume")
    refused(code, err, "was run with torch_threads=1, now 2", "--threads 1")
    assert snapshot(out) == before
    assert cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", out), "--resume")[0] == 0
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------- finding 9
def test_finding_9_a_name_that_escapes_runs_is_refused(tmp_path, fmnist_dir, capsys, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, err = cli(capsys, *run_args(fmnist_dir, tmp_path / "cache", None), "--set", "name=../../escaped")
    refused(code, err, "name='../../escaped'", "inside the chosen folder")
    code, err = cli(capsys, "sweep", *small_args(fmnist_dir, tmp_path / "cache"), "--grid", "name=ok,../../escaped",
                    "--out", "sw", "-q")
    refused(code, err, "name='../../escaped'")
    assert sorted(p.name for p in tmp_path.rglob("*escaped*")) == []
    assert not (work / "sw").exists() and not (work / "runs").exists()
    with pytest.raises(ConfigError, match="--grid data_root='../x'"):
        point_dir(Path("sw"), {"data_root": "../x"})
