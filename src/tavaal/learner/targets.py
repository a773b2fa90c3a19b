"""How a learner's labels become training targets: the class names they map onto, and the checks a
segmentation mask passes. The labels themselves live in the pool (``tavaal.pool.Pool``); the
dataset's targets are derived from them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from tavaal.data.base import IGNORE
from tavaal.errors import TavaalError


def _class_key(c: Any) -> tuple[str, Any]:
    return (type(c).__name__, c)


def _plain(value: Any) -> Any:
    """A numpy scalar or a one-element tensor as the Python value it holds."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


class ClassNames:
    """The classes labels name, in target order: fixed (given, or the pool dataset's), or grown from
    the labels as they come, sorted (strings and ints apart)."""

    def __init__(self, names: Iterable[Any], fixed: bool):
        self.names: list[Any] = list(names)
        self.fixed = fixed
        if len(set(self.names)) != len(self.names):
            raise TavaalError(f"classes {self.names} name a class twice")

    def index(self, value: Any, where: str) -> int:
        """The target of label ``value``: its position among the names, or, when the classes are
        fixed, a class index as a dataset's labels are. -1: a new class (classes not fixed)."""
        value = _plain(value)
        if value in self.names:
            return self.names.index(value)
        if self.fixed and isinstance(value, int) and 0 <= value < len(self.names):
            return value
        if self.fixed:
            raise TavaalError(f"{where}: label {value!r} is not a class; the classes are {self.names}")
        return -1

    def value(self, label: Any, where: str) -> str | int:
        """The label as it is kept: its class name (a class index given for fixed classes becomes the
        name); a string or an int, anything else is an error."""
        k = self.index(label, where)
        value = self.names[k] if k >= 0 else _plain(label)
        if not isinstance(value, (str, int)):
            raise TavaalError(
                f"{where}: label {value!r} is a {type(value).__name__}; labels are strings or ints"
            )
        return value

    def add(self, values: Iterable[Any]) -> bool:
        """Take in the classes of ``values`` (classes not fixed); True when one sorted in before
        others and renumbered them, so every target must be derived again."""
        if self.fixed:
            return False
        names = sorted({*self.names, *values}, key=_class_key)
        renumbered = names[: len(self.names)] != self.names
        self.names = names
        return renumbered

    def targets(self, values: Sequence[Any]) -> torch.Tensor:
        return torch.tensor([self.names.index(v) for v in values], dtype=torch.long)


def checked_masks(ids: Sequence[Any], masks: Sequence[Any], shape: tuple[int, ...], n_classes: int) -> list:
    """Segmentation labels as uint8 tensors: each an (H, W) mask of class ids, ``IGNORE`` where not
    labeled; a wrong shape or an id outside the classes names the sample."""
    out = []
    for i, mask in zip(ids, masks):
        m = torch.as_tensor(np.asarray(mask))
        if tuple(m.shape) != shape:
            raise TavaalError(f"id {i!r}: mask of shape {tuple(m.shape)}, expected {shape}")
        if ((m != IGNORE) & ((m < 0) | (m >= n_classes))).any():
            raise TavaalError(f"id {i!r}: mask holds ids outside the {n_classes} classes")
        out.append(m.to(torch.uint8))
    return out
