"""The cluttered scenes of ``fashion-scenes``: how long they take to make, how much of the frame
the item covers, and a grid of examples for the README (not a test).

Prints the generation time of the 60 000 + 10 000 scenes, the share of the 8x8 patch tokens the
item's bounding box touches (mean and quartiles over the devices' 10 000 scenes), and the share
of tokens holding at least one item pixel brighter than the clutter could explain; writes
``docs/figures/scenes_examples.png`` (``--figure``). The last line is a JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from learning.data import DEBIAN_FASHION_MNIST, _fmnist_dir, _fmnist_raw, load_dataset  # noqa: E402
from learning.scenes import GROUPINGS, SceneConfig, item_token_share, make_scenes  # noqa: E402

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "scenes_examples.png"))
    p.add_argument("--grouping", choices=sorted(GROUPINGS), default="garments",
                   help="label groups shown under each class (the default backbone's: garments)")
    args = p.parse_args(argv)
    cfg = SceneConfig()
    start = time.perf_counter()
    train, test = load_dataset("fashion-scenes", scenes=cfg)
    seconds = time.perf_counter() - start
    folder = _fmnist_dir([Path(os.environ["SFLSIM_DATA"])] if os.environ.get("SFLSIM_DATA") else [DEBIAN_FASHION_MNIST])
    items, labels = _fmnist_raw(folder, "train")
    _, boxes = make_scenes(items[:10_000], cfg, "train")
    share = item_token_share(boxes, cfg, 8)
    q = np.quantile(share, [0.25, 0.5, 0.75])
    print(f"made {len(train)} + {len(test)} scenes in {seconds:.1f} s; item box touches "
          f"{share.mean():.3f} of the 64 tokens on average (quartiles {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = {c: name.replace(' and ', ' &\n') for name, members in GROUPINGS[args.grouping] for c in members}
    fig, axes = plt.subplots(2, 10, figsize=(9.0, 2.7))
    device_labels = train.labels.numpy()[:10_000]
    for c in range(10):  # one column per class: two device scenes each
        for row, i in enumerate(np.flatnonzero(device_labels == c)[:2]):
            ax = axes[row, c]
            ax.imshow(train.images[i, 0].numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, c].set_title(f"{CLASSES[c]}\n({group[c]})", fontsize=7)
    fig.suptitle(f"fashion-scenes: two device scenes per class (class; its {args.grouping!r} group, which the backbone was pretrained on)",
                 fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=130)
    print(json.dumps({"scenes": len(train) + len(test), "seconds": round(seconds, 2),
                      "item_token_share_mean": round(float(share.mean()), 4),
                      "item_token_share_quartiles": [round(float(v), 4) for v in q],
                      "figure": str(Path(args.figure).relative_to(ROOT)) if Path(args.figure).is_relative_to(ROOT) else Path(args.figure).name,
                      "loadavg": list(os.getloadavg())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
