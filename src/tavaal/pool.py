"""The labeled / unlabeled split over a dataset's training set: the one place labels live."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tavaal.errors import TavaalError

SampleId = str | int  # a sample's name: an int, a string or a path relative to an image folder


class Pool:
    """The samples of a training set by id, which are labeled, in the order they were labeled, and
    with which label. A learner's training targets are derived from it; a simulation that reads its
    labels from the dataset keeps the order only (``values`` left out)."""

    def __init__(self, n: int, labeled: Iterable[int] = (), ids: Sequence[SampleId] | None = None):
        self.n = int(n)
        self.ids: list[SampleId] = list(range(self.n)) if ids is None else list(ids)
        if len(self.ids) != self.n:
            raise TavaalError(f"the pool has {self.n} samples but {len(self.ids)} ids")
        self._index = {i: k for k, i in enumerate(self.ids)}
        self._mask = np.zeros(self.n, dtype=bool)
        self._order: list[int] = []
        self._values: dict[int, Any] = {}
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

    def is_labeled(self, index: int) -> bool:
        return bool(self._mask[index])

    def value(self, index: int) -> Any:
        """The label given to position ``index`` (None when the pool keeps the order only)."""
        return self._values.get(int(index))

    @property
    def values(self) -> list[Any]:
        """The labels in the order given."""
        return [self._values.get(n) for n in self._order]

    @property
    def labels(self) -> dict[SampleId, Any]:
        """Every label given, by id, in the order given."""
        return {self.ids[n]: self._values.get(n) for n in self._order}

    def label(self, indices: Iterable[int], values: Sequence[Any] | None = None) -> None:
        """Mark ``indices`` labeled (with ``values``, one each, when given); repeats, out-of-range or
        already labeled indices are errors, and nothing is recorded then."""
        idx = np.asarray(list(indices), dtype=np.int64)
        if values is not None and len(values) != idx.size:
            raise TavaalError(f"{idx.size} indices but {len(values)} labels; give one label per index")
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
        if values is not None:
            self._values.update(zip((int(i) for i in idx), values))

    def indices_of(self, ids: Sequence[SampleId]) -> np.ndarray:
        """Positions of ``ids``; unknown or repeated ids are an error."""
        ids = list(ids)
        out = np.empty(len(ids), dtype=np.int64)
        unknown = []
        for k, i in enumerate(ids):
            key = i.item() if isinstance(i, np.generic) else (str(i) if not isinstance(i, (int, str)) else i)
            n = self._index.get(key)
            if n is None:
                unknown.append(i)
            else:
                out[k] = n
        if unknown:
            raise TavaalError(
                f"{len(unknown)} unknown id(s), e.g. {unknown[:5]}; ids must name samples of the pool"
            )
        if np.unique(out).size != out.size:
            dup = [ids[k] for k in range(len(ids)) if (out == out[k]).sum() > 1][:5]
            raise TavaalError(f"ids given twice in one call: {dup}")
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "labeled": list(self._order)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Pool:
        return cls(state["n"], state["labeled"])
