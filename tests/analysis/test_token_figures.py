"""The token-curve and kept-token figures (analysis/token_curve.py, analysis/token_maps.py)."""
import json

import numpy as np
import pytest
from analysis.metrics import MissingDataError
from analysis.token_curve import read_token_curve, token_curve_figure
from analysis.token_maps import DROPPED_FADE, PAGE_GREY, faded, kept_outline, token_maps_figure
from conftest import write_fake_run
from scenarios.cli import main


def _curve(cut: int) -> dict:
    ks = ("4", "8", "16", "32", "64")
    acc = {"semantic": (0.7, 0.8, 0.85, 0.88, 0.89), "random": (0.72, 0.81, 0.84, 0.87, 0.89)}
    curve = {name: dict(zip(ks, v)) for name, v in acc.items()}
    diff = {k: {"diff": s - r, "lo": s - r - 0.01, "hi": s - r + 0.01}
            for k, s, r in zip(ks, acc["semantic"], acc["random"])}
    return {"cut": cut, "curve": curve, "semantic_minus_random": diff, "samples": 100}


def test_read_token_curve_takes_the_benchmarks_last_json_line(tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("a table line\n  K semantic\n" + json.dumps(_curve(3)) + "\n")
    assert read_token_curve(f)["cut"] == 3
    (tmp_path / "bad.json").write_text('{"cut": 3}\n')
    with pytest.raises(ValueError, match="no token curve"):
        read_token_curve(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="not found"):
        read_token_curve(tmp_path / "missing.json")


def test_token_curve_figure_has_a_column_per_cut_and_a_line_per_selection():
    fig = token_curve_figure([_curve(2), _curve(4)])
    axes = fig.axes
    assert len(axes) == 4
    top = axes[0]
    assert len(top.lines) == 2  # semantic and random
    # the plotted values are the accuracies in percent, at K on the x axis
    xs, ys = top.lines[0].get_data()
    assert list(xs) == [4, 8, 16, 32, 64] and ys[0] == pytest.approx(70.0)


def test_plot_token_curve_command_writes_a_png(tmp_path):
    files = []
    for cut in (2, 3):
        files.append(tmp_path / f"token_curve_cut{cut}.json")
        files[-1].write_text(json.dumps(_curve(cut)) + "\n")
    out = tmp_path / "curve.png"
    assert main(["plot", "--kind", "token-curve", *map(str, files), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", "--kind", "token-curve", *map(str, files), "--out", str(out)]) == 0  # redrawn in place
    assert main(["plot", "--kind", "token-curve", str(tmp_path / "nope.json"), "--out", str(out)]) == 2


def test_faded_keeps_sent_patches_and_mixes_the_others_towards_the_page():
    image = np.full((4, 4, 3), 255, dtype=np.uint8)
    image[:2, :2] = 0
    kept = np.array([[True, False], [False, True]])
    g = faded(image, kept)
    assert np.all(g[:2, :2] == 0.0)  # kept, black stays black
    assert np.allclose(g[2:, 2:], 1.0)  # kept, white stays white (luma weights sum to 1)
    assert g[0, 3] == pytest.approx((1 - DROPPED_FADE) * 1.0 + DROPPED_FADE * PAGE_GREY)
    with pytest.raises(ValueError, match="tile"):
        faded(np.zeros((5, 5, 3), dtype=np.uint8), kept)


def test_kept_outline_is_the_boundary_of_the_kept_region():
    one = np.zeros((3, 3), dtype=bool)
    one[1, 1] = True
    assert len(kept_outline(one, 1.0, 1.0)) == 4
    two = one.copy()
    two[1, 2] = True  # two side by side: the shared edge is not drawn
    segs = kept_outline(two, 2.0, 2.0)
    assert len(segs) == 6
    assert [(4.0, 2.0), (4.0, 4.0)] not in segs and [(2.0, 2.0), (2.0, 4.0)] in segs
    assert kept_outline(np.zeros((2, 2), dtype=bool), 1.0, 1.0) == []


def test_token_maps_figure_groups_devices_and_budgets(tmp_path):
    run = write_fake_run(tmp_path / "run")
    rng = np.random.default_rng(0)
    kept = rng.random((6, 4, 4)) < 0.5
    np.savez(run / "token_maps.npz", images=rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8), kept=kept,
             round=np.full(6, 3), device=np.array([0, 0, 1, 1, 2, 2]), tokens=np.array([4, 4, 8, 8, 4, 4]))
    fig = token_maps_figure(run)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["device 0, round 3\nK = 4 of 16", "device 1, round 3\nK = 8 of 16",
                      "device 2, round 3\nK = 4 of 16"]
    assert len(fig.axes) == 3 * 2
    out = tmp_path / "maps.png"
    assert main(["plot", "--kind", "token-maps", str(run), "--out", str(out)]) == 0 and out.is_file()


def test_token_maps_figure_needs_token_maps(tmp_path):
    run = write_fake_run(tmp_path / "run", token_maps=False)
    with pytest.raises(MissingDataError):
        token_maps_figure(run)
    assert main(["plot", "--kind", "token-maps", str(run), "--out", str(tmp_path / "x.png")]) == 2
