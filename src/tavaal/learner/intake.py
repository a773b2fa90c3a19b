"""What an ``ActiveLearner`` accepts as a pool: numpy arrays or tensors (vectors, or images as
uint8 or float), a torch ``Dataset`` of ``(x, y)`` pairs, or a folder of images; and the user's ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tavaal.data.base import ArrayDataset, Augment, channel_stats
from tavaal.data.cache import common_image_size, decode_cached
from tavaal.data.folder import list_images
from tavaal.data.vision import default_augment
from tavaal.errors import TavaalError
from tavaal.pool import SampleId


@dataclass
class PoolData:
    """Pool tensors, the ids naming each row, and how to normalise and augment them."""

    x: torch.Tensor
    ids: list[SampleId]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    name: str = "pool"
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    classes: list[str] | None = None
    task: str = "classification"


def as_tensor(x: Any, what: str) -> torch.Tensor:
    """Rows as a tensor: images (N, C, H, W) (N, H, W, C with 1 or 3 channels is transposed; N, H, W
    gets one channel), or vectors (N, D)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":  # object, text, dates: no numbers to learn from
            raise TavaalError(
                f"{what} holds {x.dtype} values, not numbers; give uint8 images or float values "
                "(e.g. np.asarray(x, dtype=np.float32))"
            )
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        raise TavaalError(f"{what} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if t.dtype == torch.float64:
        t = t.float()
    if t.dtype not in (torch.uint8, torch.float32, torch.float16, torch.bfloat16):
        if t.is_floating_point() or t.dtype in (torch.int32, torch.int64):
            t = t.float()
        else:
            raise TavaalError(f"{what} has dtype {t.dtype}; give uint8 images or float values")
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() == 4 and t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.dim() not in (2, 4):
        raise TavaalError(
            f"{what} has shape {tuple(t.shape)}; give vectors (N, D) or images (N, C, H, W), "
            "(N, H, W, C) or (N, H, W)"
        )
    if t.shape[0] == 0:
        raise TavaalError(f"{what} is empty")
    check_finite(t, what)
    return t.contiguous()


def check_finite(t: torch.Tensor, what: str, ids: Sequence[Any] | None = None) -> None:
    """NaN or inf would make every score NaN and the picks arbitrary: an error naming the rows."""
    if not t.is_floating_point():
        return
    bad = ~torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)
    if bad.any():
        rows = torch.nonzero(bad).flatten().tolist()
        names = [ids[i] for i in rows[:5]] if ids is not None else rows[:5]
        raise TavaalError(
            f"{what} has NaN or infinite values in {len(rows)} rows (first: {', '.join(map(str, names))}); "
            "fix or drop those rows"
        )


def from_torch_dataset(dataset: Any, what: str) -> tuple[torch.Tensor, list[Any]]:
    """Stack a map-style ``Dataset`` of ``(x, y)`` (or bare ``x``) items; PIL images are converted."""
    try:
        n = len(dataset)
    except TypeError:
        raise TavaalError(f"{what}: a torch Dataset must have a length (map-style)") from None
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        x, y = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, None)
        if not isinstance(x, (torch.Tensor, np.ndarray)):
            try:
                x = np.asarray(x.convert("RGB")).transpose(2, 0, 1).copy()  # a PIL image
            except AttributeError:
                raise TavaalError(
                    f"{what}: item {i} is a {type(x).__name__}; items must be tensors, arrays or PIL images"
                ) from None
        xs.append(torch.as_tensor(x))
        ys.append(y)
    shapes = {tuple(t.shape) for t in xs}
    if len(shapes) > 1:
        raise TavaalError(
            f"{what}: items have different shapes {sorted(shapes)[:3]}; resize them to one size"
        )
    return as_tensor(torch.stack(xs), what), ys


def from_folder(
    root: Path, image_size: int, quiet: bool, skip_unreadable: bool
) -> tuple[torch.Tensor, list[str]]:
    """Every image below ``root`` (ids: paths relative to it), decoded once into the cache."""
    paths = list_images(root)
    files = [str(root / p) for p in paths]
    size = image_size or common_image_size(files)
    x, keep = decode_cached(files, size, "decoding pool", quiet, skip_unreadable)
    return torch.from_numpy(x), [paths[i] for i in keep]


def check_ids(ids: Sequence[Any], n: int) -> list[SampleId]:
    """Ids as str or int, one per row, none twice."""
    ids = list(ids)
    if len(ids) != n:
        raise TavaalError(f"ids has {len(ids)} entries but the pool has {n} samples; give one id per sample")
    out: list[SampleId] = []
    for i in ids:
        if isinstance(i, (bool, np.bool_)):
            raise TavaalError(f"id {i!r} is a bool; ids are strings, paths or integers")
        if isinstance(i, (int, np.integer)):
            out.append(int(i))
        elif isinstance(i, (str, Path)):
            out.append(str(i))
        else:
            raise TavaalError(f"id {i!r} is a {type(i).__name__}; ids are strings, paths or integers")
    if len(set(out)) != len(out):
        seen: set[SampleId] = set()
        dup = next(i for i in out if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise TavaalError(f"id {dup!r} is given twice; every sample needs its own id")
    return out


def normalisation(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (images) or per-feature (vectors) mean and std over the whole pool (no labels
    needed), in the units ``prepare`` works in ([0, 1] for uint8)."""
    if x.dtype == torch.uint8:
        return channel_stats(x)
    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    mean = x.float().mean(dim=dims)
    std = x.float().std(dim=dims).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def read_pool(
    pool: Any,
    ids: Sequence[Any] | None,
    image_size: int = 0,
    quiet: bool = True,
    skip_unreadable: bool = False,
) -> PoolData:
    """The pool in any accepted form, with its ids (default: a folder's relative paths, else 0..N-1)."""

    if isinstance(pool, ArrayDataset):  # a tavaal dataset: its train split is the pool, its test split kept
        x = pool.x_train  # where it lives: a run's device-resident dataset is not copied
        data = PoolData(
            x,
            [],
            pool.mean,
            pool.std,
            pool.augment,
            pool.name,
            pool.x_test,
            pool.y_test,
            pool.classes,
            pool.task,
        )
    else:
        if isinstance(pool, (str, Path)):
            x, found = from_folder(Path(pool), image_size, quiet, skip_unreadable)
            ids = found if ids is None else ids
        elif isinstance(pool, (np.ndarray, torch.Tensor)):
            x = as_tensor(pool, "pool")
        elif hasattr(pool, "__getitem__"):
            x, _ = from_torch_dataset(pool, "pool")
        else:
            raise TavaalError(
                "pool must be an array, a tensor, a torch Dataset or an image folder, got "
                f"{type(pool).__name__}"
            )
        mean, std = normalisation(x)
        augment = default_augment(x.shape[-1]) if x.dim() == 4 else Augment()
        data = PoolData(x, [], mean, std, augment)
    data.ids = check_ids(range(data.x.shape[0]) if ids is None else ids, data.x.shape[0])
    return data
