"""Which patches a device sent, drawn over its images.

Reads ``token_maps.npz`` of a run directory (``images`` uint8 ``[M, H, W, 3]``, ``kept`` bool
``[M, gh, gw]``, and ``round``, ``device``, ``tokens`` ``[M]`` to label the panels; format in
``docs/interfaces.md``). Each example is drawn as a grey image on a light page; the patches
not sent are faded towards the page colour, the sent ones get a light tint, and the outline of
the kept region is drawn in one strong colour, so the kept area reads at a glance both on the
dark background of a Fashion-MNIST image and on a white garment. Examples are grouped into columns by (round, device, K), with the
images of a group stacked in the column, so several devices and budgets sit side by side.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from analysis.files import atomic_writer
from analysis.metrics import MissingDataError
from analysis.style import PAGE_WIDTH_IN, RC_PARAMS
from analysis.traces import Run, load_run

PAGE_GREY = 0.96  # light page colour (0 black, 1 white)
DROPPED_FADE = 0.8  # share of the page colour mixed into a patch that was not sent
KEPT_COLOR = "#D55E00"
KEPT_TINT = 0.18  # opacity of the colour laid over sent patches


def grey(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` or ``[H, W]`` -> float ``[H, W]`` in [0, 1] (ITU-R BT.601 luma weights)."""
    img = np.asarray(image, dtype=np.float64) / 255.0
    return img if img.ndim == 2 else img[..., :3] @ np.array([0.299, 0.587, 0.114])


def faded(image: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The grey image with every patch not in ``kept`` mixed towards the page colour.

    Args:
        image: ``uint8 [H, W, 3]`` (or ``[H, W]``).
        kept: ``bool [gh, gw]``; ``H / gh`` and ``W / gw`` pixels per patch.

    Returns:
        ``float [H, W]`` in [0, 1].
    """
    g = grey(image)
    h, w = g.shape
    gh, gw = kept.shape
    if h % gh or w % gw:
        raise ValueError(f"kept grid {gh}x{gw} does not tile an image of {h}x{w} pixels")
    # [H, W] mask: True where the pixel's patch was sent
    mask = np.kron(kept.astype(np.uint8), np.ones((h // gh, w // gw), dtype=np.uint8)).astype(bool)
    return np.where(mask, g, (1 - DROPPED_FADE) * g + DROPPED_FADE * PAGE_GREY)


def kept_outline(kept: np.ndarray, patch_h: float, patch_w: float) -> list[list[tuple[float, float]]]:
    """Segments of the boundary of the kept region (edges between kept and not-kept cells).

    Args:
        kept: ``bool [gh, gw]``.
        patch_h: patch height in plot units; ``patch_w`` its width.

    Returns:
        ``[[(x0, y0), (x1, y1)], ...]`` in image coordinates (y down).
    """
    gh, gw = kept.shape
    pad = np.zeros((gh + 2, gw + 2), dtype=bool)
    pad[1:-1, 1:-1] = kept
    segs = []
    for r, c in zip(*np.nonzero(kept)):
        x0, x1, y0, y1 = c * patch_w, (c + 1) * patch_w, r * patch_h, (r + 1) * patch_h
        if not pad[r, c + 1]:  # above
            segs.append([(x0, y0), (x1, y0)])
        if not pad[r + 2, c + 1]:  # below
            segs.append([(x0, y1), (x1, y1)])
        if not pad[r + 1, c]:  # left
            segs.append([(x0, y0), (x0, y1)])
        if not pad[r + 1, c + 2]:  # right
            segs.append([(x1, y0), (x1, y1)])
    return segs


def _groups(maps: dict[str, np.ndarray]) -> list[tuple[tuple[int, int, int], list[int]]]:
    m = maps["images"].shape[0]
    rounds = maps["round"] if "round" in maps else np.zeros(m, dtype=int)
    devices = maps["device"] if "device" in maps else np.zeros(m, dtype=int)
    tokens = maps["tokens"] if "tokens" in maps else maps["kept"].reshape(m, -1).sum(1)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i in range(m):
        groups.setdefault((int(rounds[i]), int(devices[i]), int(tokens[i])), []).append(i)
    return sorted(groups.items())


def token_maps_figure(run: Run | str | Path, max_groups: int = 6, max_per_group: int = 3) -> Figure:
    """Kept tokens over the images: one column per (round, device, K), images stacked in it.

    Args:
        run: a run directory (or loaded :class:`analysis.traces.Run`) with ``token_maps.npz``.
        max_groups: most columns drawn (the first ones in (round, device, K) order).
        max_per_group: most images per column.

    Raises:
        MissingDataError: the run has no token maps, or they lack ``images`` / ``kept``.
    """
    run = run if isinstance(run, Run) else load_run(run)
    maps = run.token_maps
    if maps is None:
        raise MissingDataError("token_maps", "token_maps.npz (the run has none)")
    missing = [k for k in ("images", "kept") if k not in maps]
    if missing:
        raise MissingDataError("token_maps", f"token_maps.npz arrays {', '.join(missing)}")
    if maps["images"].shape[0] == 0:
        raise MissingDataError("token_maps", "token_maps.npz examples (it holds none)")
    groups = _groups(maps)[:max_groups]
    rows = min(max_per_group, max(len(ix) for _, ix in groups))
    cols = len(groups)
    with mpl.rc_context(RC_PARAMS):
        panel = min(1.25, PAGE_WIDTH_IN / cols)
        fig = Figure(figsize=(panel * cols, panel * rows + 0.45), layout="constrained", facecolor=str(PAGE_GREY))
        axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
        for j, ((rnd, dev, k), index) in enumerate(groups):
            for r in range(rows):
                ax = axes[r, j]
                ax.set_axis_off()
                if r >= len(index):
                    continue
                i = index[r]
                img, kept = maps["images"][i], maps["kept"][i].astype(bool)
                h, w = img.shape[:2]
                gh, gw = kept.shape
                ax.imshow(faded(img, kept), cmap="gray", vmin=0, vmax=1, extent=(0, w, h, 0),
                          interpolation="nearest")
                # [gh, gw, 4] RGBA: a light tint over the sent patches, so that a sent patch of a
                # white garment still differs from a faded one
                tint = np.zeros((gh, gw, 4))
                tint[..., :3] = mpl.colors.to_rgb(KEPT_COLOR)
                tint[..., 3] = np.where(kept, KEPT_TINT, 0.0)
                ax.imshow(tint, extent=(0, w, h, 0), interpolation="nearest")
                ax.add_collection(LineCollection(kept_outline(kept, h / gh, w / gw), colors=KEPT_COLOR,
                                                 linewidths=1.3, capstyle="projecting"))
                ax.set_xlim(0, w)
                ax.set_ylim(h, 0)
                if r == 0:
                    ax.set_title(f"device {dev}, round {rnd}\nK = {k} of {gh * gw}", fontsize=7)
        fig.suptitle("patches sent (outlined, tinted) and not sent (faded)", fontsize=8)
    return fig


def plot_token_maps(run: Run | str | Path, out: str | Path) -> Path:
    """Draw :func:`token_maps_figure` for ``run`` and save it as ``out`` (PNG or PDF)."""
    fig = token_maps_figure(run)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context(RC_PARAMS):
        with atomic_writer(out) as fh:
            fig.savefig(fh, format=out.suffix.lstrip(".") or "png", facecolor=fig.get_facecolor())
    return out
