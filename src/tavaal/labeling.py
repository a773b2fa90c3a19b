"""Human-in-the-loop labeling: "which images should I label next?" over a folder of images.

The pool is every image under a folder; ``labels.csv`` (columns ``path,label``, paths relative to
the folder) holds the labels given so far. ``query`` trains the task learner (and what the method
needs) on the labeled images and returns the ``budget`` unlabeled images the method picks, with
their scores. The user labels them, appends rows to ``labels.csv``, and asks again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tavaal.atomic import atomic_write_text
from tavaal.config import RunConfig
from tavaal.cycle import build_and_train, check_model, derive_seed, draw_candidates
from tavaal.data import with_crop_pad
from tavaal.data.base import ArrayDataset, channel_stats
from tavaal.data.cache import decode_cached, first_image_size
from tavaal.data.vision import default_augment
from tavaal.device import setup_device
from tavaal.errors import TavaalError
from tavaal.strategies import check_budget, get_strategy


def list_images(pool: Path) -> list[str]:
    """Every image file below ``pool``, as sorted paths relative to it."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    if not pool.is_dir():
        raise TavaalError(
            f"pool folder {pool} does not exist; give the folder that holds your unlabeled images"
        )
    found = sorted(
        str(p.relative_to(pool))
        for p in pool.rglob("*")
        if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS
    )
    if not found:
        raise TavaalError(f"no images found under {pool}")
    return found


def read_labels(path: Path, known: set[str]) -> dict[str, str]:
    """``path,label`` rows; every problem is reported with its line number."""
    if not path.is_file():
        raise TavaalError(
            f"labels file {path} does not exist; create it with the header 'path,label' and one "
            "row per labeled image"
        )
    try:  # utf-8-sig: spreadsheet programs start the file with a byte-order mark
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise TavaalError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as CSV UTF-8"
        ) from None
    first = text.splitlines()[0] if text.strip() else ""
    # Spreadsheets in some locales separate with ';' (or export tabs); line ends may be CRLF.
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows or [c.strip().lower() for c in rows[0]] != ["path", "label"]:
        raise TavaalError(f"{path}: line 1 must be the header 'path,label'")
    labels: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise TavaalError(f"{path}: line {n} must be 'path,label' with both filled in, got {row!r}")
        p, lab = row[0].strip(), row[1].strip()
        if p not in known:
            raise TavaalError(f"{path}: line {n} names {p!r}, which is not an image in the pool folder")
        if p in labels and labels[p] != lab:
            raise TavaalError(f"{path}: line {n} labels {p!r} {lab!r} but an earlier line says {labels[p]!r}")
        labels[p] = lab
    return labels


@dataclass
class Suggestion:
    path: str
    score: float | None
    rank: int


def query(
    pool: Path, labels_file: Path, method: str, budget: int, cfg: RunConfig, progress: bool = False
) -> list[Suggestion]:
    """Train on the labeled images and return the ``budget`` unlabeled ones ``method`` picks."""
    device = setup_device(cfg)
    paths = list_images(pool)
    labels = read_labels(labels_file, set(paths))
    classes = sorted(set(labels.values()))
    if len(classes) < 2:
        raise TavaalError(f"{labels_file} must label images of at least two classes (found {len(classes)})")
    files = [str(pool / p) for p in paths]
    size = cfg.data.image_size or first_image_size(files)
    x, keep = decode_cached(files, size, "decoding pool", not progress, cfg.data.skip_unreadable)
    x, paths = torch.from_numpy(x), [paths[i] for i in keep]
    unlabeled = np.array([i for i, p in enumerate(paths) if p not in labels])
    labeled = np.array([i for i, p in enumerate(paths) if p in labels])
    query_cfg = cfg.replace(budget=budget)  # the subset is sized by this query's budget
    check_budget(budget, min(len(unlabeled), query_cfg.protocol.n_candidates))
    to_idx = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([to_idx[labels[p]] if p in labels else -1 for p in paths], dtype=torch.long)
    mean, std = channel_stats(x[torch.from_numpy(labeled)])
    ds = with_crop_pad(
        ArrayDataset("pool", x, y, x[:0], y[:0], classes, mean, std, default_augment(size)), cfg.data.crop_pad
    )
    check_model(cfg, ds)
    ds = ds.to(device)
    seed = derive_seed(cfg.protocol.seed, len(labeled))
    candidates = draw_candidates(unlabeled, query_cfg, seed)
    strategy = get_strategy(method, cfg)
    ctx, _ = build_and_train(
        cfg,
        strategy,
        ds,
        labeled,
        candidates,
        device,
        seed,
        progress,
        desc=f"{method} on {len(labeled)} labels",
    )
    sel = strategy.select(ctx, budget)
    score_of = dict(zip(candidates.tolist(), sel.scores.tolist())) if sel.scores is not None else {}
    return [Suggestion(paths[i], score_of.get(int(i)), r + 1) for r, i in enumerate(sel.indices)]


def write_suggestions(path: Path, suggestions: list[Suggestion]) -> None:
    """``rank,path,score,label`` with an empty label column to fill in, written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "path", "score", "label"])
    for s in suggestions:
        w.writerow([s.rank, s.path, "" if s.score is None else f"{s.score:.6g}", ""])
    atomic_write_text(path, buf.getvalue())
