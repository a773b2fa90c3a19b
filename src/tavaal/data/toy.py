"""Embedded datasets that need no download: the paper's two-moons toy problem and sklearn digits."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits, make_moons

from tavaal.data.base import ArrayDataset, Augment


def imbalanced_moons(
    n_major: int = 500, n_minor: int = 50, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Section 4.1: make_moons with noise 0.2, 500 samples of class 0 and 50 of class 1 (x10)."""
    # make_moons splits n_samples evenly, so draw enough of both and keep what is needed.
    x, y = make_moons(n_samples=2 * n_major, noise=noise, random_state=seed)
    rng = np.random.default_rng(seed)
    major = np.flatnonzero(y == 0)
    minor = rng.choice(np.flatnonzero(y == 1), size=n_minor, replace=False)
    keep = np.sort(np.concatenate([major[:n_major], minor]))
    return x[keep].astype(np.float32), y[keep].astype(np.int64)


def load_moons(seed: int = 0) -> ArrayDataset:
    """Train set (seed 0) and a test set drawn the same way with another seed.

    Features are kept in the plane's own coordinates (for the figures) and standardised with the
    training set's mean and std when batched, as the paper normalises its images. Unscaled, the
    second coordinate's variance (~0.25) sits at the level below which the VAE's reconstruction
    term no longer pays for a latent dimension (posterior collapse, see docs/fidelity.md).
    """
    xtr, ytr = imbalanced_moons(seed=seed)
    xte, yte = imbalanced_moons(seed=seed + 1)
    mean, std = tuple(float(v) for v in xtr.mean(0)), tuple(float(v) for v in xtr.std(0))
    return ArrayDataset(
        "moons",
        torch.from_numpy(xtr),
        torch.from_numpy(ytr),
        torch.from_numpy(xte),
        torch.from_numpy(yte),
        ["class 0", "class 1"],
        mean,
        std,
    )


def load_digits_dataset(test_size: int = 497, seed: int = 0) -> ArrayDataset:
    """scikit-learn's 1,797 8x8 digits as 1x8x8 uint8 images, split with a fixed seed."""
    bunch = load_digits()
    x = np.clip(np.round(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    te, tr = perm[:test_size], perm[test_size:]
    xt = torch.from_numpy(x[tr])
    # In float64 with NumPy: a float32 torch reduction gives other last bits with other thread
    # counts, and these constants must not depend on the process that loads the data.
    mean = float((x[tr] / 255.0).mean())
    std = float((x[tr] / 255.0).std(ddof=1))
    return ArrayDataset(
        "digits",
        xt,
        torch.from_numpy(y[tr]),
        torch.from_numpy(x[te]),
        torch.from_numpy(y[te]),
        [str(i) for i in range(10)],
        (mean,),
        (std,),
        Augment(pad=1, flip=False),
    )
