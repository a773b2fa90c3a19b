"""Dataset registry: every name a run can use, and how to load it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tavaal.data.base import ArrayDataset, Augment, prepare
from tavaal.errors import TavaalError, did_you_mean

DATASETS = [
    "moons",
    "digits",
    "cifar10",
    "cifar100",
    "cifar10-imb10",
    "cifar10-imb100",
    "svhn",
    "fashionmnist",
    "caltech101",
    "imagefolder",
    "cityscapes",
]


def load_dataset(
    name: str,
    data_dir: str = "data",
    download: bool = False,
    train_dir: str = "",
    test_dir: str = "",
    image_size: int = 0,
    imbalance_pattern: str = "paper",
    quiet: bool = True,
) -> ArrayDataset:
    """Load a registered dataset by name into memory (uint8 images, or float vectors)."""
    from tavaal.data import toy, vision

    root = Path(data_dir)
    if name == "moons":
        return toy.load_moons()
    if name == "digits":
        return toy.load_digits_dataset()
    if name in ("cifar10", "cifar100"):
        return vision.load_cifar(name, root, download)
    if name.startswith("cifar10-imb"):
        ratio = {"cifar10-imb10": 10, "cifar10-imb100": 100}.get(name)
        if ratio is None:
            raise did_you_mean("dataset", name, DATASETS)
        return make_imbalanced(vision.load_cifar("cifar10", root, download), ratio, imbalance_pattern, name)
    if name == "svhn":
        return vision.load_svhn(root, download)
    if name == "fashionmnist":
        return vision.load_fashionmnist(root, download)
    if name == "caltech101":
        return vision.load_caltech101(root, download, image_size or 224, quiet)
    if name == "imagefolder":
        return vision.load_imagefolder(train_dir, test_dir, image_size, quiet)
    if name == "cityscapes":
        raise TavaalError(
            "cityscapes (semantic segmentation) is not supported in this version: tavaal has "
            "no segmentation task learner yet; use a classification dataset"
        )
    raise did_you_mean("dataset", name, DATASETS)


def with_crop_pad(ds: ArrayDataset, pad: int) -> ArrayDataset:
    """Set the zero padding of the training crop (``pad`` >= 0) on a dataset whose loader uses a
    padded crop (32x32-class images); -1, or a dataset without one, leaves it as it is."""
    if pad < 0 or not ds.augment.pad or pad == ds.augment.pad:
        return ds
    return dataclasses.replace(ds, augment=Augment(pad=pad, flip=ds.augment.flip))


def make_imbalanced(ds: ArrayDataset, ratio: int, pattern: str, name: str) -> ArrayDataset:
    """Keep the training samples that ``imbalanced_indices`` chooses; the test set is unchanged."""
    import torch

    from tavaal.data.imbalance import imbalanced_indices

    keep = torch.from_numpy(imbalanced_indices(ds.y_train.numpy(), ratio, pattern))
    return ArrayDataset(
        name,
        ds.x_train[keep],
        ds.y_train[keep],
        ds.x_test,
        ds.y_test,
        ds.classes,
        ds.mean,
        ds.std,
        ds.augment,
    )


__all__ = [
    "ArrayDataset",
    "Augment",
    "DATASETS",
    "load_dataset",
    "make_imbalanced",
    "prepare",
    "with_crop_pad",
]
