"""Imbalanced CIFAR-10 of section 4.3: reduce the first five classes by a ratio."""

from __future__ import annotations

import numpy as np


def imbalanced_indices(y: np.ndarray, ratio: int, pattern: str = "paper", seed: int = 0) -> np.ndarray:
    """Indices to keep so that (last five classes) / (first five classes) = ``ratio``.

    ``paper`` (section 4.3): classes 0-4 keep ``count / ratio`` samples each, chosen at random
    with ``seed``. ``official``: the authors' code zips ``[count / ratio, count] * 5`` with classes
    0..9, so the even classes (0, 2, 4, 6, 8) are reduced, each to its first samples in file order.
    """
    if ratio < 1:
        raise ValueError(f"imbalance ratio must be >= 1, got {ratio}")
    classes = np.unique(y)
    half = len(classes) // 2
    rng = np.random.default_rng(seed)
    keep = []
    for k, c in enumerate(classes):
        idx = np.flatnonzero(y == c)
        reduce = (k < half) if pattern == "paper" else (k % 2 == 0)
        if reduce:
            n = max(1, int(round(len(idx) / ratio)))
            idx = np.sort(rng.choice(idx, size=n, replace=False)) if pattern == "paper" else idx[:n]
        keep.append(idx)
    return np.sort(np.concatenate(keep))
