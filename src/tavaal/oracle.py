"""The simulated annotator: a dataset's own labels (or masks), read where they live."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tavaal.data.base import ArrayDataset


def oracle_rows(oracle: ArrayDataset, idx: np.ndarray) -> np.ndarray:
    """The dataset's own labels (or masks) of rows ``idx``, gathered where they live, then copied:
    never the whole label tensor (Cityscapes' masks are gigabytes on the device)."""
    y = oracle.y_train
    return y[torch.as_tensor(np.asarray(idx, dtype=np.int64), device=y.device)].cpu().numpy()


def oracle_labels(oracle: ArrayDataset, idx: np.ndarray) -> list[Any]:
    """The dataset's own labels of rows ``idx``: class indices, or masks for segmentation."""
    rows = oracle_rows(oracle, idx)
    return list(rows) if oracle.is_segmentation else rows.tolist()


def class_counts(y: np.ndarray, k: int) -> list[int]:
    """Samples per class, or for masks pixels per class (ignored pixels left out)."""
    flat = y.reshape(-1)
    return np.bincount(flat[flat < k].astype(np.int64), minlength=k).tolist()
