"""TA-VAAL from Python with a torchvision model tavaal does not ship (torchvision's ImageNet-style
ResNet-18), on a 5,000-image subset of CIFAR-10 read straight from the shared zip; three query
rounds on CPU in a few minutes.

    python examples/cifar_torchvision.py [--zip ../shared/data/cifar10-jpeg.zip] [--method tavaal]

The oracle is the folder name of each image: in real use a person (or Label Studio) answers.
To fit a CPU's minutes, the VAE is the MLP one (``vae_kind="mlp"``) instead of VAAL's 1024-channel
convolutional VAE, which costs about 100 s per VAE epoch on 2 cores; on a GPU drop that line.
"""

from __future__ import annotations

import argparse
import io
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.models import resnet18

from tavaal import ActiveLearner


def read_subset(zip_path: Path, split: str, per_class: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``per_class`` random images of each class of ``split`` as (N, 32, 32, 3) uint8, and their paths."""
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(n for n in z.namelist() if n.startswith(f"{split}/") and n.endswith(".jpg"))
        by_class: dict[str, list[str]] = {}
        for n in names:
            by_class.setdefault(n.split("/")[1], []).append(n)
        rng = np.random.default_rng(seed)
        paths = [p for c in sorted(by_class) for p in rng.choice(by_class[c], per_class, replace=False)]
        x = np.stack([np.asarray(Image.open(io.BytesIO(z.read(p))).convert("RGB")) for p in paths])
    return x, paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zip", type=Path, default=Path(__file__).parents[2] / "shared/data/cifar10-jpeg.zip")
    ap.add_argument("--method", default="tavaal")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=100, help="labels per round (scores 10x as many)")
    ap.add_argument("--out", default="runs/example-learner")
    args = ap.parse_args()
    if not args.zip.is_file():
        raise SystemExit(f"{args.zip} not found: pass --zip PATH/TO/cifar10-jpeg.zip")
    x, paths = read_subset(args.zip, "train", 500)  # the pool: 5,000 images
    x_test, test_paths = read_subset(args.zip, "test", 100)
    oracle = {p: p.split("/")[1] for p in paths}  # who answers "what is this?"
    y_test = [p.split("/")[1] for p in test_paths]
    t0 = time.perf_counter()

    # --- the lines that matter --------------------------------------------------------------
    learner = ActiveLearner(
        args.method,
        lambda: resnet18(num_classes=10),  # a fresh network every round
        x,
        ids=paths,
        feature_layers=["layer1", "layer2", "layer3", "layer4"],  # what the Ranker reads
        embedding_layer="avgpool",
        preset="cifar10",
        epochs=args.epochs,
        lr=0.01,
        lr_milestones=(),
        vae_kind="mlp",  # CPU minutes: see above
    )
    first = [paths[i] for i in np.random.default_rng(0).choice(len(paths), 500, replace=False)]
    learner.label(first, [oracle[p] for p in first])
    for round_ in range(3):
        picks = learner.query(args.per_round)  # trains on the labels so far, then ranks the pool
        acc = learner.evaluate(x_test, y_test)
        print(
            f"round {round_}: {len(learner.labeled_ids)} labels, test accuracy {acc:.1%}, "
            f"first picks {picks.ids[:2]} ({time.perf_counter() - t0:.0f} s)"
        )
        learner.label(picks.ids, [oracle[p] for p in picks.ids])
    learner.save(args.out)  # networks (T, R, VAE, D), pool, labels, seeds
    # -------------------------------------------------------------------------------------------
    print(f"saved to {args.out}; ActiveLearner.load({args.out!r}, model=...) resumes it")


if __name__ == "__main__":
    main()
