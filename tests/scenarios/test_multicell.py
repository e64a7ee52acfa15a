"""The multi-cell scenarios from ``sflsim run``: handovers with their cost, per-cell decisions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from netsim.world import World
from scenarios.cells import CELL_EVENT_COLUMNS
from scenarios.cli import main
from scenarios.overrides import ConfigError
from scenarios.registry import load
from scenarios.runner import EVENT_COLUMNS, resolve

from smallrun import small_args


def run(tmp_path, fmnist_dir, scenario, **extra):
    out = tmp_path / scenario
    assert main(["run", scenario, *small_args(fmnist_dir, tmp_path / "cache", **extra), "--out", str(out)]) == 0
    return out


def test_highway_corridor_every_vehicle_hands_over_and_each_handover_says_its_cost(tmp_path, fmnist_dir):
    # A slow edge server makes every round last its 8 s deadline: 8 rounds are over a minute of
    # driving, at least 1 km at 60 km/h, so every vehicle crosses a cell border of the corridor.
    out = run(tmp_path, fmnist_dir, "highway-corridor", rounds=8, devices=6, deadline_s=8.0,
              **{"world.server.flops_per_s": 1e6})
    ev = pd.read_parquet(out / "events.parquet")
    assert list(ev.columns) == [*EVENT_COLUMNS, *CELL_EVENT_COLUMNS]
    ho = ev[ev.phase == "handover"]
    assert set(ho.device) == set(range(6))
    assert (ho.cell != ho.from_cell).all()
    # migrated sessions: the server adapters (and activations in flight) over 1 Gbit/s + 5 ms
    busy = ho[ho.bits > 0]
    assert len(busy) > 0 and (busy.reason == "").all()
    assert np.allclose(busy.end_s - busy.start_s, 0.005 + busy.bits / 1e9, rtol=1e-9, atol=0)
    idle = ho[ho.bits == 0]
    assert (idle.end_s == idle.start_s).all()
    up = ev[ev.phase == "uplink"]
    assert (up.sinr_db <= up.snr_db + 1e-9).all() and (up.interference_w > 0).any()


def test_urban_7_decides_per_cell_and_its_uplinks_meet_interference(tmp_path, fmnist_dir):
    out = run(tmp_path, fmnist_dir, "urban-7", rounds=2, devices=14, deadline_s=30.0, sample_fraction=1.0,
              **{"planning.costs": "two-point", "planning.retention": "probe"})
    ev = pd.read_parquet(out / "events.parquet")
    dec = pd.read_parquet(out / "decisions.parquet")
    cfg = resolve(load("urban-7"), {"devices": 14})
    band = World(cfg.world, seed=0).channel_state().total_bandwidth_hz
    r1 = dec[(dec["round"] == 1) & (dec.status == "ok")].merge(
        ev[(ev["round"] == 1) & (ev.phase == "uplink")][["device", "cell"]].drop_duplicates(), on="device")
    per_cell = r1.groupby("cell").bandwidth_hz.sum()
    assert len(per_cell) == 7 and (per_cell <= band * (1 + 1e-9)).all()
    # one decision for all cells would share one band among the 14 phones
    assert r1.bandwidth_hz.sum() > 1.5 * band
    up = ev[ev.phase == "uplink"]
    assert (up.interference_w > 0).mean() > 0.5 and (up.sinr_db < up.snr_db).any()


@pytest.mark.parametrize("key,value,match", [
    ("world.cells.reuse", "2", "reuse"),
    ("world.cells.layout.num_sites", "5", "num_sites"),
    ("world.cells.handover.policy", "keep", "policy"),
])
def test_bad_multicell_settings_name_the_field(key, value, match):
    with pytest.raises(ConfigError, match=match):
        resolve(load("urban-7"), {key: value})


def test_a_multicell_world_survives_the_run_checkpoint(tmp_path):
    # The runner's checkpoint (tensors plus JSON) holds the multi-cell world's state: restored
    # into a world of the same config, it continues with the same handovers.
    from scenarios import rundir

    cfg = resolve(load("highway-corridor"), {"devices": 6})
    a = World(cfg.world, seed=3)
    a.advance(40.0)
    rundir.save_checkpoint(tmp_path / "ck", {"world": a.state_dict()})
    b = World(cfg.world, seed=11)
    b.load_state_dict(rundir.load_checkpoint(tmp_path / "ck")["world"])
    assert b.handover_log == a.handover_log and len(a.handover_log) > 0
    for w in (a, b):
        w.advance(40.0)
    assert b.handover_log == a.handover_log
    assert np.array_equal(a.channel_state().gain_lin, b.channel_state().gain_lin)


def test_the_cells_figure_shows_every_uplink_and_handover_and_refuses_a_single_cell_run(tmp_path, fmnist_dir,
                                                                                       capsys):
    from analysis.cells_figure import cell_events

    out = run(tmp_path, fmnist_dir, "highway-corridor", rounds=8, devices=6, deadline_s=8.0,
              **{"world.server.flops_per_s": 1e6})
    ev = pd.read_parquet(out / "events.parquet")
    uplinks, handovers = cell_events(out)
    assert len(uplinks) == int(((ev.phase == "uplink") & np.isfinite(ev.sinr_db)).sum()) > 0
    assert len(handovers) == int((ev.phase == "handover").sum()) > 0
    assert main(["plot", str(out), "--kind", "cells", "--out", str(tmp_path / "cells.png")]) == 0
    assert (tmp_path / "cells.png").stat().st_size > 10_000
    # a single-cell run has no cells to show: one line, exit 2, nothing written
    single = tmp_path / "single"
    assert main(["run", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=1), "--out", str(single)]) == 0
    capsys.readouterr()
    assert main(["plot", str(single), "--kind", "cells", "--out", str(tmp_path / "none.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a multi-cell run" in err[0], err
    assert not (tmp_path / "none.png").exists()
    # the decisions figure's refusals are one line too (they once raised a TypeError)
    (single / "decisions.parquet").unlink()
    assert main(["plot", str(single), "--kind", "decisions", "--out", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decisions figure: needs" in err[0], err
