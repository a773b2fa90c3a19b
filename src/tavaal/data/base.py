"""The in-memory dataset every run works on, and batch preparation on the run's device.

Images stay uint8 (N, C, H, W) wherever they live; crops, flips and normalisation run on whole
batches on the device, so the training loop has no per-sample Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

IGNORE = 255  # a segmentation mask's pixel that is not labeled (left out of the loss and the metrics)


@dataclass
class Augment:
    """Training-time augmentation: random crop from a zero-padded image, and horizontal flip."""

    pad: int = 0
    flip: bool = False
    crop: int = 0  # segmentation: a random crop x crop window of image and mask together (0: none)


@dataclass
class ArrayDataset:
    """Train and test tensors plus what is needed to turn a batch into network input.

    ``x_train`` is uint8 (N, C, H, W) for images or float32 (N, D) for vector data.
    ``mean``/``std`` are per channel in [0, 1] units for uint8 images.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    augment: Augment = field(default_factory=Augment)
    task: str = "classification"  # or "segmentation": y holds (N, H, W) uint8 masks, 255 ignored

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_image(self) -> bool:
        return self.x_train.dim() == 4

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device | str) -> ArrayDataset:
        """Move the tensors to ``device`` (the whole uint8 set lives there on CUDA)."""
        dev = torch.device(device)
        if self.x_train.device == dev:
            return self
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(dev),
            y_train=self.y_train.to(dev),
            x_test=self.x_test.to(dev),
            y_test=self.y_test.to(dev),
        )

    @property
    def is_segmentation(self) -> bool:
        return self.task == "segmentation"

    def batch(
        self, idx: torch.Tensor, train: bool, generator: torch.Generator | None = None, split: str = "train"
    ) -> torch.Tensor:
        """Gather rows ``idx`` and return float network input (augmented when ``train``)."""
        if self.is_segmentation:  # a crop must move the mask too
            return self.batch_xy(idx, train, generator, split)[0]
        x = (self.x_train if split == "train" else self.x_test)[idx]
        return prepare(x, self, train, generator)

    def batch_xy(
        self, idx: torch.Tensor, train: bool, generator: torch.Generator | None = None, split: str = "train"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Network input and targets of rows ``idx``: class ids, or for segmentation long masks
        (255 ignored) cropped and flipped together with their images when ``train``."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        if not self.is_segmentation:
            return prepare(x[idx], self, train, generator), y[idx]
        xb, yb = x[idx], y[idx].long()
        if train:
            xb, yb = joint_augment(xb, yb, self.augment, generator)
        return prepare(xb, self, False), yb


def prepare(
    x: torch.Tensor, ds: ArrayDataset, train: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """uint8 or float rows -> normalised float input, with ``ds.augment`` applied when training."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    else:
        x = x.float()
    if train and x.dim() == 4:
        if ds.augment.pad:
            x = random_crop(x, ds.augment.pad, generator)
        if ds.augment.flip:
            x = random_flip(x, generator)
    if ds.mean:
        mean, std = _norm_tensors(ds.mean, ds.std, x.dim(), x.device)
        x = (x - mean) / std
    return x


_NORM_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _norm_tensors(
    mean: tuple[float, ...], std: tuple[float, ...], dim: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean/std as device tensors, made once: a host-to-device copy per batch would stall CUDA."""
    key = (mean, std, dim, str(device))
    if key not in _NORM_CACHE:
        shape = (1, -1, 1, 1) if dim == 4 else (1, -1)
        _NORM_CACHE[key] = (
            torch.tensor(mean, device=device).view(shape),
            torch.tensor(std, device=device).view(shape),
        )
    return _NORM_CACHE[key]


def _rand(n: int, high: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Draw on the generator's device, then move: no host synchronisation on CUDA.
    dev = generator.device if generator is not None else x.device
    return torch.randint(0, high, (n,), generator=generator, device=dev).to(x.device)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop each image at a random offset from its copy zero-padded by ``pad`` on every side."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = _rand(n, 2 * pad + 1, x, generator)
    ox = _rand(n, 2 * pad + 1, x, generator)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # n,1,h,1
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # n,1,1,w
    b = torch.arange(n, device=x.device)[:, None, None, None]
    c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return xp[b, c, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2."""
    flip = _rand(x.shape[0], 2, x, generator).bool()[:, None, None, None]
    return torch.where(flip, x.flip(3), x)


def joint_augment(
    x: torch.Tensor, y: torch.Tensor, aug: Augment, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation: one random crop x crop window per image (``aug.crop``, 0: whole image) and a
    horizontal flip with probability 1/2, applied to image (N, C, H, W) and mask (N, H, W) alike."""
    n, _, h, w = x.shape
    if aug.crop and (aug.crop < h or aug.crop < w):
        ch, cw = min(aug.crop, h), min(aug.crop, w)
        oy = _rand(n, h - ch + 1, x, generator)
        ox = _rand(n, w - cw + 1, x, generator)
        rows = oy[:, None] + torch.arange(ch, device=x.device)  # n, ch
        cols = ox[:, None] + torch.arange(cw, device=x.device)  # n, cw
        b = torch.arange(n, device=x.device)[:, None, None]
        y = y[b, rows[:, :, None], cols[:, None, :]]
        c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = x[b[:, :, :, None], c, rows[:, None, :, None], cols[:, None, None, :]]
    if aug.flip:
        flip = _rand(n, 2, x, generator).bool()
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        y = torch.where(flip[:, None, None], y.flip(2), y)
    return x, y


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 (N, C, H, W) set, in [0, 1] units (chunked)."""
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, x.shape[0], 4096):
        chunk = x[i : i + 4096].to(torch.float64).div(255.0)
        s += chunk.sum(dim=(0, 2, 3)).cpu()
        s2 += chunk.pow(2).sum(dim=(0, 2, 3)).cpu()
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = s / n
    std = (s2 / n - mean.pow(2)).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
