"""How long the live loop (``tavaal serve``) takes to retrain and re-rank a pool, with the preset
that ``tavaal serve`` uses on a CPU (``quick``): a pool of real CIFAR-10 images (from the shared
JPEG zip; random images without it), ``--labels`` of them annotated through the webhook, then one
retrain (fit T, R and the method's networks; query), the predicted class of every image, and a
``/predict`` answer for every task.

    python benchmarks/bench_serve.py [--pool-size 1000] [--labels 100] [--method tavaal]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from tavaal.config import make_config
from tavaal.labeling.backend import Backend
from tavaal.labeling.serve import make_app

ZIP = Path(__file__).resolve().parents[1] / "carry" / "cifar10-jpeg.zip"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_pool(root: Path, n: int, zip_path: Path) -> dict[str, str]:
    """``n`` images under ``root``; returns path -> class."""
    truth = {}
    if zip_path.is_file():
        with zipfile.ZipFile(zip_path) as z:
            names = sorted(m for m in z.namelist() if m.startswith("train/") and m.endswith(".jpg"))
            picks = np.random.default_rng(0).choice(len(names), n, replace=False)
            for k in picks:
                name = names[k]
                rel = name.split("/", 1)[1]
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(z.read(name))
                truth[rel] = rel.split("/")[0]
        return truth
    rng = np.random.default_rng(0)
    for i in range(n):
        rel = f"img{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / rel)
        truth[rel] = CLASSES[i % 10]
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool-size", type=int, default=1000)
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--method", default="tavaal")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--budget", type=int, default=50, help="picks per query (tavaal serve's default)")
    ap.add_argument("--zip", type=Path, default=ZIP)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pool"
        root.mkdir()
        os.environ.setdefault("TAVAAL_CACHE", str(Path(tmp) / "cache"))
        truth = make_pool(root, a.pool_size, a.zip)
        source = "CIFAR-10 JPEGs" if a.zip.is_file() else "random images"
        cfg = make_config(a.preset, {"budget": a.budget})
        config = (
            '<View><Image name="image" value="$image"/><Choices name="choice" toName="image">'
            + "".join(f'<Choice value="{c}"/>' for c in CLASSES)
            + "</Choices></View>"
        )
        t0 = time.perf_counter()
        backend = Backend(root, Path(tmp) / "state", a.method, cfg, retrain_every=10**9)
        client = make_app(backend).test_client()
        client.post("/setup", json={"schema": config})
        print(
            f"pool {a.pool_size} {source}, {a.labels} labels, budget {a.budget}, method {a.method}, "
            f"preset {a.preset} "
            f"({cfg.training.model}, {cfg.training.epochs} epochs, VAE {cfg.adversarial.vae_kind}), "
            f"{os.cpu_count()} CPU cores; backend start (decode pool) {time.perf_counter() - t0:.1f} s"
        )
        paths = sorted(truth)
        labeled = [paths[k] for k in np.random.default_rng(1).choice(len(paths), a.labels, replace=False)]
        t0 = time.perf_counter()
        for k, p in enumerate(labeled):
            ann = {"id": k, "result": [{"type": "choices", "from_name": "choice", "to_name": "image",
                                        "value": {"choices": [truth[p]]}}]}  # fmt: skip
            task = {"id": k, "data": {"image": "/data/local-files/?d=" + p}}
            client.post("/webhook", json={"action": "ANNOTATION_CREATED", "annotation": ann, "task": task})
        print(f"{a.labels} webhook events (each saved atomically): {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        ranking = backend.retrain()
        fit, rank = ranking["fit_and_query_seconds"], ranking["rank_seconds"]
        print(
            f"retrain: {time.perf_counter() - t0:.1f} s (fit + query {fit:.1f} s, "
            f"predicted class of all {a.pool_size} images {rank:.1f} s)"
        )
        tasks = [{"id": k, "data": {"image": "/data/local-files/?d=" + p}} for k, p in enumerate(paths)]
        t0 = time.perf_counter()
        results = client.post("/predict", json={"tasks": tasks}).get_json()["results"]
        print(f"/predict for all {len(results)} tasks: {time.perf_counter() - t0:.2f} s")
        backend.close()


if __name__ == "__main__":
    main()
