"""What a user gives besides config fields: seed lists, grids, a Ray address, output paths,
number spellings, cross-field limits, the work a config asks for, and a data folder of damaged
files. Each case is one line on stderr, exit 2, nothing written, within seconds (run in
process, so the time is the validation's, not Python's start-up).

The field-walking suite (``test_validation_fields``) covers each field alone; the disk filling
up mid-run is in ``test_disk_full``.
"""
from __future__ import annotations

import gzip
import re
import shutil
import signal
from pathlib import Path

import pytest

from scenarios.cli import main

from smallrun import small_args

CASE_SECONDS = 20  # a hard limit per case (the machine may be shared); typical times are far below


class _Timeout(BaseException):  # not an Exception: the CLI must not report it as its own error
    pass


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """Import what a run imports once, so each case times its validation, not the imports."""
    import timm  # noqa: F401

    import scenarios.runner  # noqa: F401
    import scenarios.sweep  # noqa: F401
    from scenarios.registry import SCENARIOS, load

    for name in SCENARIOS:
        load(name).default_config()


def _alarm(signum, frame):
    raise _Timeout()


def _refused(argv: list[str], tmp_path: Path, capsys, fragment: str) -> str:
    """Run ``sflsim argv`` in ``tmp_path``: exit 2, one line holding ``fragment``, nothing
    written in ``tmp_path`` (compared before and after); returns the line."""
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        status = main(argv)
    except _Timeout:
        pytest.fail(f"{argv}: took over {CASE_SECONDS} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert status == 2, err
    assert len(lines) == 1 and re.match(r"sflsim: error: ", lines[0]) and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "something was written"
    return lines[0]


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SFLSIM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "mine.txt").write_text("a user's file\n")  # the folder is not empty
    return tmp_path


# (argv, fragment of the one line)
COMMAND_LINE = [
    (["run", "--seeds", "3-1", "--out", "o"], "'3-1' must be a non-negative seed or a range a-b with a <= b"),
    (["run", "--seeds", "a,b", "--out", "o"], "'a' is not a seed"),
    (["run", "--seeds", "0-100000", "--out", "o"], "100001 seeds, more than the 1000 runs"),
    (["run", "--seeds", "0-99999999999999", "--out", "o"], "100000000000000 seeds"),
    (["run", "--seeds", "０-2", "--out", "o"], "is not a seed"),
    (["sweep", "static-cell", "--seeds", "0-100000", "--out", "o"], "100001 seeds"),
    (["sweep", "static-cell", "--seeds", "0-99999999999999", "--out", "o"], "100000000000000 seeds"),
    (["sweep", "static-cell", "--grid", "deadline_s=1,2,3", "--seeds", "0-499", "--out", "o"],
     "would plan 1500 runs (3 deadline_s x 500 seeds)"),
    (["sweep", "static-cell", "--grid", "name=x y,x_y", "--out", "o"],
     "--grid name=x y and name=x_y would share the run directory"),
    (["sweep", "static-cell", "--grid", "name=Cell,cell", "--out", "o"], "would share the run directory"),
    (["sweep", "static-cell", "--grid", "name=" + "n" * 300, "--out", "o"], "more than the 255"),
    (["sweep", "static-cell", "--grid", "deadline_s=1,2", "--ray-address", "256.1.1.1:1", "--out", "o"],
     "--ray-address 256.1.1.1:1: cannot reach a Ray head there within 5 s"),
    (["sweep", "static-cell", "--grid", "deadline_s=1,2", "--ray-address", "127.0.0.1:1", "--out", "o"],
     "--ray-address 127.0.0.1:1: cannot reach"),
    (["sweep", "static-cell", "--grid", "deadline_s=1,2", "--ray-address", "head", "--out", "o"],
     "expected local, auto or HOST:PORT"),
    (["run", "--out", "o" * 300], "a folder name of 300 bytes, more than the 255"),
    (["run", "--out", "/".join(["d" * 200] * 25)], "more than the 4096 a path may have"),
    (["run", "--out", "run-\udcff"], "not valid UTF-8 text"),
    (["run", "--set", "rounds=0_1", "--out", "o"], "rounds: expected an integer, got '0_1' (plain ASCII digits"),
    (["run", "--set", "devices=３", "--out", "o"], "devices: expected an integer, got '３'"),
    (["run", "--set", "deadline_s=1_0", "--out", "o"], "deadline_s: expected a number, got '1_0'"),
    (["run", "--seed", "３", "--out", "o"], "argument --seed: invalid int value: '３' (plain ASCII digits only"),
    (["run", "--threads", "1_0", "--out", "o"], "argument --threads: invalid int value: '1_0'"),
    (["run", "--set", "world.coherence_s=1e-12", "--out", "o"], "coherence_s must be >= 6.25e-05 s"),
    (["run", "--set", "world.coherence_s=5e-5", "--out", "o"], "coherence_s must be >= 6.25e-05 s"),
    (["run", "--set", "rounds=100000", "--set", "world.coherence_s=1e-4", "--out", "o"],
     "channel updates (rounds=100000 x deadline_s="),
    (["run", "--set", "learner.local_steps=100000", "--out", "o"],
     "training samples (rounds=10 x devices=20 x learner.local_steps=100000"),
    (["run", "static-cell", "--set", "rounds=20000", "--set", "learner.eval_samples=10000", "--out", "o"],
     "2e+08 evaluation samples (20002 evaluations x learner.eval_samples=10000)"),
    (["run", "static-cell", "--set", "policy=asfl", "--set", "asfl.min_cut=100", "--out", "o"], "asfl.min_cut=100: must be <= the model's depth"),
    (["run", "static-cell", "--set", "policy=asfl", "--set", "asfl.min_cut=7", "--out", "o"],
     "asfl.min_cut=7: must be <= the model's depth"),
    (["run", "static-cell", "--set", "cache_dir=mine.txt", "--out", "o"], "cache_dir=mine.txt: exists and is not a folder"),
]


@pytest.mark.parametrize("argv, fragment", COMMAND_LINE, ids=[" ".join(a)[:60] for a, _ in COMMAND_LINE])
def test_command_line_input_is_refused_in_one_line(argv, fragment, here, capsys):
    _refused(argv, here, capsys, fragment)


def test_toml_boolean_for_an_integer_is_refused(here, capsys):
    (here / "c.toml").write_text("rounds = true\n")
    _refused(["run", "--config", "c.toml", "--out", "o"], here, capsys, "rounds: expected an integer, got True")


def test_force_runs_past_the_work_bound(here, capsys):
    argv = ["run", "--set", "rounds=100000", "--set", "world.coherence_s=1e-4", "--out", "o", "--dry-run"]
    assert main(argv + ["--force"]) == 0, capsys.readouterr().err
    assert not (here / "o").exists()


def test_default_runs_are_far_below_the_work_bounds():
    from scenarios.registry import SCENARIOS, load
    from scenarios.work import MAX_CHANNEL_UPDATES, MAX_EVAL_SAMPLES, MAX_TRAIN_SAMPLES, estimate

    for name in SCENARIOS:
        work = estimate(load(name).default_config())
        # paper-cell-100 is the paper's scale (100 devices x 100 rounds): within the bound, by less
        room = 3 if name == "paper-cell-100" else 100
        assert work["channel_updates"] < MAX_CHANNEL_UPDATES / room, (name, work)
        assert work["train_samples"] < MAX_TRAIN_SAMPLES / 100, (name, work)
        assert work["eval_samples"] < MAX_EVAL_SAMPLES / 100, (name, work)


def test_eval_samples_above_the_test_set_is_refused(here, fmnist_dir, capsys):
    # the test data of fmnist_dir hold 300 images
    argv = ["run", "static-cell", *small_args(fmnist_dir, here / "cache", **{"learner.eval_samples": 301}),
            "--out", "o"]
    _refused(argv, here, capsys, "learner.eval_samples=301: must be <= the 300 images of the fashion-mnist test set")


def _damage(kind: str, source: Path, target: Path) -> None:
    data = source.read_bytes()
    if kind == "truncated-gz":
        target.write_bytes(data[: len(data) // 2])
    elif kind == "not-gz":
        target.write_bytes(b"garbage, not gzip at all" * 10)
    elif kind == "garbage-idx":
        target.write_bytes(gzip.compress(b"\x13\x37garbage inside a valid gzip"))
    elif kind == "short-header":
        target.write_bytes(gzip.compress(b"\x00\x00\x08\xff\x00\x00"))
    elif kind == "negative-size":
        target.write_bytes(gzip.compress(b"\x00\x00\x08\x01\xff\xff\xff\xff"))
    elif kind == "cut-values":
        raw = gzip.decompress(data)
        target.write_bytes(gzip.compress(raw[: len(raw) - 100]))
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind, fragment", [
    ("truncated-gz", "is damaged, not a readable .gz idx file"),
    ("not-gz", "is damaged, not a readable .gz idx file"),
    ("garbage-idx", "is not an idx file"),
    ("short-header", "idx header of 255 dimensions is cut short"),
    ("negative-size", "idx header has negative sizes"),
    ("cut-values", "header promises"),
])
def test_sflsim_data_of_damaged_idx_files(kind, fragment, here, fmnist_dir, monkeypatch, capsys):
    data = here / "data"
    shutil.copytree(fmnist_dir, data)
    name = "t10k-images-idx3-ubyte.gz"
    _damage(kind, fmnist_dir / name, data / name)
    monkeypatch.setenv("SFLSIM_DATA", str(data))
    args = small_args(fmnist_dir, here / "cache", data_root="")  # empty: found through SFLSIM_DATA
    line = _refused(["run", "static-cell", *args, "--out", "o"], here, capsys, fragment)
    assert name in line
