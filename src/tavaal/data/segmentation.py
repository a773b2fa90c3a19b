"""Street-scene segmentation data: CamVid in SegNet's layout and Cityscapes in torchvision's, decoded
once into the cache as uint8 images (N, 3, H, W) and uint8 masks (N, H, W) with 255 = ignore.

    CamVid/{train,val,test}/*.png  CamVid/{train,val,test}annot/*.png   (ids 0-10, 11 = unlabelled)
    cityscapes/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
    cityscapes/gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png      (34 ids -> 19 train classes)

Cityscapes' test labels are not public: its val split is the test set, as in the paper.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from tavaal.data.base import IGNORE, ArrayDataset, Augment, channel_stats
from tavaal.data.cache import cache_dir, write_cache
from tavaal.errors import TavaalError, first_line

CAMVID_CLASSES = [
    "sky", "building", "pole", "road", "pavement", "tree",
    "sign/symbol", "fence", "car", "pedestrian", "bicyclist",
]  # fmt: skip
CITYSCAPES_CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
]  # fmt: skip
# Cityscapes labelIds -> train ids (cityscapesScripts' labels.py); every other id is ignored.
CITYSCAPES_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def camvid_lut() -> np.ndarray:
    """CamVid ids 0-10 are classes, 11 ("unlabelled") is ignored, any other id is an error (-1)."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[:11] = np.arange(11)
    lut[11] = IGNORE
    return lut


def cityscapes_lut() -> np.ndarray:
    """labelIds 0-33 (and -1 as 255: license plate) map to 19 classes or ignore; others are errors."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[:34] = IGNORE
    lut[255] = IGNORE
    for k, v in CITYSCAPES_TRAIN_ID.items():
        lut[k] = v
    return lut


def _size(image_size: int, w: int, h: int) -> tuple[int, int]:
    """(width, height) for a target height ``image_size`` (0: as stored), keeping the aspect ratio."""
    if not image_size or image_size == h:
        return w, h
    return max(1, round(w * image_size / h)), image_size


def decode_pair(image: Path, mask: Path, image_size: int, lut: np.ndarray, n_classes: int):
    """One image and its mask: (3, H, W) uint8 and (H, W) uint8 class ids (255 ignored)."""
    try:
        with Image.open(image) as im:
            im = im.convert("RGB")
            w, h = im.size
            with Image.open(mask) as mk:
                if mk.size != im.size:
                    raise TavaalError(
                        f"mask {mask} is {mk.size[0]}x{mk.size[1]} but its image {image} is {w}x{h}; "
                        "a mask must have its image's size"
                    )
                m = np.asarray(mk if mk.mode in ("L", "P", "I", "I;16") else mk.convert("L"))
                size = _size(image_size, w, h)
                if size != (w, h):
                    im = im.resize(size, Image.BILINEAR)
                    m = np.asarray(Image.fromarray(m.astype(np.uint8)).resize(size, Image.NEAREST))
            x = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (OSError, SyntaxError, ValueError) as e:
        raise TavaalError(f"cannot read {image} or {mask}: {first_line(e)}") from None
    if m.ndim != 2:
        raise TavaalError(f"mask {mask} has {m.shape[-1]} channels; a mask is one channel of class ids")
    m = m.astype(np.int64)
    mapped = lut[np.clip(m, 0, 255)]
    if ((m < 0) | (m > 255) | (mapped < 0)).any():
        bad = sorted({int(v) for v in np.unique(m) if not (0 <= v < 256) or lut[int(v)] < 0})[:8]
        raise TavaalError(
            f"mask {mask} holds class ids {bad} outside the {n_classes} declared classes (and the ignore id)"
        )
    return x, mapped.astype(np.uint8)


def _cache_path(pairs: list[tuple[Path, Path]], image_size: int, tag: str) -> Path:
    h = hashlib.sha256(f"{tag}\0{image_size}".encode())
    for a, b in pairs:
        for p in (a, b):
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return cache_dir() / f"seg-{h.hexdigest()[:24]}.npz"


def decode_split(
    pairs: list[tuple[Path, Path]], image_size: int, lut: np.ndarray, n_classes: int, tag: str, quiet: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of a split, decoded once and cached: (N, 3, H, W) images, (N, H, W) masks."""
    target = _cache_path(pairs, image_size, tag)
    if target.is_file():
        with np.load(target) as z:
            return z["x"], z["y"]
    xs, ys = [], []
    for a, b in tqdm(pairs, desc=f"decoding {tag}", disable=quiet, leave=False):
        x, y = decode_pair(a, b, image_size, lut, n_classes)
        if xs and x.shape != xs[0].shape:
            raise TavaalError(
                f"{a} is {x.shape[2]}x{x.shape[1]} but {pairs[0][0]} is {xs[0].shape[2]}x{xs[0].shape[1]}; "
                "the images of a split must share one size (or pass --image-size H to resize them)"
            )
        xs.append(x)
        ys.append(y)
    x, y = np.stack(xs), np.stack(ys)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    write_cache(target, buf.getvalue())
    return x, y


def _pairs(
    images: list[Path], mask_of: Callable[[Path], Path], split: str, root: Path
) -> list[tuple[Path, Path]]:
    if not images:
        raise TavaalError(f"the {split} split under {root} holds no images; check the folder layout")
    pairs = []
    for im in images:
        m = mask_of(im)
        if not m.is_file():
            raise TavaalError(f"{im} has no annotation: expected {m}")
        pairs.append((im, m))
    return pairs


def segmentation_dataset(name: str, train: tuple, test: tuple, classes: list[str], crop: int) -> ArrayDataset:
    (xtr, ytr), (xte, yte) = train, test
    xtr_t = torch.from_numpy(xtr)
    mean, std = channel_stats(xtr_t)
    return ArrayDataset(
        name,
        xtr_t,
        torch.from_numpy(ytr),
        torch.from_numpy(xte),
        torch.from_numpy(yte),
        classes,
        mean,
        std,
        Augment(pad=0, flip=True, crop=crop),
        task="segmentation",
    )


def find_camvid(root: Path) -> Path:
    for cand in (root / "CamVid", root / "camvid", root):
        if (cand / "train").is_dir() and (cand / "trainannot").is_dir():
            return cand
    raise TavaalError(
        f"CamVid was not found under {root.resolve()}; give --data-dir a folder holding CamVid/ in "
        "SegNet's layout (train/, trainannot/, test/, testannot/), e.g. unzip camvid-half.zip there"
    )


def load_camvid(root: Path, image_size: int = 0, crop: int = 0, quiet: bool = True) -> ArrayDataset:
    """CamVid (SegNet's layout) at any resolution: train is the pool, test the test set."""
    base = find_camvid(root)
    lut = camvid_lut()
    splits = []
    for split in ("train", "test"):
        images = sorted(p for p in (base / split).glob("*.png"))
        pairs = _pairs(images, lambda p, s=split: base / f"{s}annot" / p.name, split, base)
        splits.append(decode_split(pairs, image_size, lut, 11, f"camvid-{split}", quiet))
    return segmentation_dataset("camvid", splits[0], splits[1], CAMVID_CLASSES, crop)


def load_cityscapes(root: Path, image_size: int = 0, crop: int = 0, quiet: bool = True) -> ArrayDataset:
    """Cityscapes (torchvision's layout), 19 training classes; its val split is the test set."""
    base = root / "cityscapes" if (root / "cityscapes" / "leftImg8bit").is_dir() else root
    if not (base / "leftImg8bit").is_dir() or not (base / "gtFine").is_dir():
        raise TavaalError(
            f"Cityscapes was not found under {root.resolve()}; give --data-dir a folder holding "
            "leftImg8bit/ and gtFine/ (download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip "
            "from cityscapes-dataset.com, which needs a login)"
        )
    lut = cityscapes_lut()

    def mask_of(p: Path, split: str) -> Path:
        stem = p.name.replace("_leftImg8bit.png", "")
        return base / "gtFine" / split / p.parent.name / f"{stem}_gtFine_labelIds.png"

    splits = []
    for split in ("train", "val"):
        images = sorted((base / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        pairs = _pairs(images, lambda p, s=split: mask_of(p, s), split, base / "leftImg8bit")
        splits.append(decode_split(pairs, image_size, lut, 19, f"cityscapes-{split}", quiet))
    return segmentation_dataset("cityscapes", splits[0], splits[1], CITYSCAPES_CLASSES, crop)
