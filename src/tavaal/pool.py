"""The labeled / unlabeled split over a dataset's training set."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tavaal.errors import TavaalError


class Pool:
    """Which training indices are labeled, in the order they were labeled."""

    def __init__(self, n: int, labeled: Iterable[int] = ()):
        self.n = int(n)
        self._mask = np.zeros(self.n, dtype=bool)
        self._order: list[int] = []
        self.label(list(labeled))

    @property
    def labeled(self) -> np.ndarray:
        return np.asarray(self._order, dtype=np.int64)

    @property
    def unlabeled(self) -> np.ndarray:
        return np.flatnonzero(~self._mask)

    @property
    def n_labeled(self) -> int:
        return len(self._order)

    def label(self, indices: Iterable[int]) -> None:
        """Mark ``indices`` labeled; repeats, out-of-range or already labeled indices are errors."""
        idx = np.asarray(list(indices), dtype=np.int64)
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self.n:
            raise TavaalError(f"indices must lie in [0, {self.n}); got {idx.min()}..{idx.max()}")
        if np.unique(idx).size != idx.size:
            raise TavaalError("the same index was given twice")
        already = idx[self._mask[idx]]
        if already.size:
            raise TavaalError(f"{already.size} indices are already labeled, e.g. {already[:5].tolist()}")
        self._mask[idx] = True
        self._order.extend(int(i) for i in idx)

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "labeled": list(self._order)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Pool:
        return cls(state["n"], state["labeled"])
