"""analysis.traces: reading run directories, validation, labels."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.traces import (NotARunError, coerce, config_value, expand_run_dirs, load_run,
                             load_runs, make_labels)
from conftest import write_fake_run


def test_load_run_reads_all_five_files(one_run):
    run = load_run(one_run)
    assert run.config["policy"] == "st-sflora"
    assert set(run.events["phase"]) == {"device_forward", "uplink", "server", "downlink",
                                        "device_backward", "adapter_uplink", "adapter_downlink"}
    assert run.rounds["round"].tolist() == list(range(7))
    assert run.channel is not None and len(run.channel) == 6 * 4
    assert run.token_maps["kept"].dtype == bool and run.token_maps["images"].shape == (3, 32, 32, 3)


def test_optional_files_may_be_absent(tmp_path):
    run = load_run(write_fake_run(tmp_path / "r", channel=False, token_maps=False))
    assert run.channel is None and run.token_maps is None


@pytest.mark.parametrize("remove", ["config.json", "events.parquet", "rounds.parquet"])
def test_missing_required_file_names_path_and_file(one_run, tmp_path, remove):
    broken = tmp_path / "broken"
    shutil.copytree(one_run, broken)
    (broken / remove).unlink()
    with pytest.raises(NotARunError) as err:
        load_run(broken)
    assert str(broken) in str(err.value) and remove in str(err.value)
    assert isinstance(err.value, ValueError)


def test_not_a_directory_or_missing(tmp_path):
    with pytest.raises(NotARunError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotARunError, match="is a file"):
        load_run(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotARunError, match="config.json, events.parquet, rounds.parquet"):
        load_run(empty)


def test_bad_json_and_corrupt_parquet(one_run, tmp_path):
    broken = tmp_path / "b"
    shutil.copytree(one_run, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(NotARunError, match="config.json"):
        load_run(broken)
    (broken / "config.json").write_text("[1, 2]")
    with pytest.raises(NotARunError, match="JSON object"):
        load_run(broken)
    (broken / "config.json").write_text("{}")
    (broken / "rounds.parquet").write_bytes(b"garbage")
    with pytest.raises(NotARunError, match="rounds.parquet"):
        load_run(broken)


def test_load_runs_labels_and_tidy_frames(sweep_dirs):
    runs = load_runs(sweep_dirs)
    assert len(runs) == 9 and len(set(runs.labels)) == 9
    assert runs.labels[0] == "ST-SFLora (deadline_s=0.45)"
    assert runs.varying_keys() == ["policy", "deadline_s"]
    for frame in (runs.events, runs.rounds, runs.channel):
        assert {"run", "label", "scenario", "policy", "deadline_s"} <= set(frame.columns)
    # Each run's rows carry that run's label and swept value, and nothing is lost.
    for i, path in enumerate(sweep_dirs):
        cfg = json.loads((path / "config.json").read_text())
        ev = runs.events[runs.events["run"] == i]
        assert len(ev) == len(pd.read_parquet(path / "events.parquet"))
        assert set(ev["label"]) == {runs.labels[i]}
        # Swept values are stored as strings; the frames hold them as numbers.
        assert np.all(ev["deadline_s"] == float(cfg["sweep"]["deadline_s"]))
    assert list(runs.meta.columns[:6]) == ["run", "label", "scenario", "policy", "seed", "path"]


def test_labels_fall_back_to_differing_config_then_dir_name(tmp_path):
    a = write_fake_run(tmp_path / "a", deadline_s=0.5, rounds=2)
    b = write_fake_run(tmp_path / "b", deadline_s=0.9, rounds=2)
    c = write_fake_run(tmp_path / "c", deadline_s=0.9, rounds=2)
    # No sweep dict: the config value that differs tells them apart, then the directory.
    assert load_runs([a, b]).labels == ["ST-SFLora (deadline_s=0.5)", "ST-SFLora (deadline_s=0.9)"]
    assert load_runs([b, c]).labels == ["ST-SFLora [b]", "ST-SFLora [c]"]


def test_make_labels_grouping_and_scenarios():
    cfgs = [{"policy": "st-sflora", "policy_label": "ST-SFLora", "scenario": "a", "sweep": {"deadline_s": 1}},
            {"policy": "st-sflora", "policy_label": "ST-SFLora", "scenario": "b", "sweep": {"deadline_s": 2}},
            {"policy": "my-policy", "scenario": "a", "sweep": {"deadline_s": 2}}]  # no label: the name
    assert make_labels(cfgs) == ["a / ST-SFLora (deadline_s=1)", "b / ST-SFLora (deadline_s=2)",
                                 "a / my-policy (deadline_s=2)"]
    same = make_labels(cfgs[:1] * 2, exclude=["deadline_s"], disambiguate=False)
    assert same == ["ST-SFLora", "ST-SFLora"]


def test_load_runs_needs_a_path():
    with pytest.raises(ValueError, match="at least one"):
        load_runs([])


def test_config_value_reads_the_nested_layout_and_sweep_strings(one_run):
    run = load_run(one_run)
    assert run.value("deadline_s") == 0.7            # under "config"
    assert run.value("world.bandwidth_hz") == 5e6    # dotted path
    assert run.value("max_power_w") == 0.2           # unique leaf name
    assert run.value("policy") == "st-sflora"        # top level
    assert run.value("nope", "dflt") == "dflt"
    assert config_value({"deadline_s": 3}, "deadline_s") == 3  # a flat config works too
    assert [coerce(v) for v in ("2", "0.5", "true", "st-sflora", 7)] == [2, 0.5, True,
                                                                          "st-sflora", 7]


def test_sweep_directory_stands_for_its_runs(sweep_dirs, tmp_path):
    root = sweep_dirs[0].parent
    assert expand_run_dirs([root]) == sorted(sweep_dirs)
    assert len(load_runs([root])) == 9
    (tmp_path / "sub").mkdir()
    assert expand_run_dirs([tmp_path]) == [tmp_path]  # no runs inside: left for the error
    # A seeded sweep nests <point>/seed=<n>: every run below is found, at any depth.
    nested = [tmp_path / "seeded" / f"point={p}" / f"seed={n}" for p in "ab" for n in (0, 1)]
    for src, dst in zip(sweep_dirs, nested):
        shutil.copytree(src, dst)
    assert expand_run_dirs([tmp_path / "seeded"]) == nested
