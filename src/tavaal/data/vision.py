"""The paper's image benchmarks from torchvision's on-disk formats, and any image folder.

Every loader returns uint8 (N, C, H, W) tensors; nothing is decoded per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tavaal.data.base import ArrayDataset, Augment, channel_stats
from tavaal.data.cache import common_image_size, decode_cached
from tavaal.errors import TavaalError, first_line

CIFAR_AUGMENT = Augment(pad=2, flip=True)  # 32x32 crop from 36x36 zero-padded (section 4.2)


def _torchvision_datasets():
    """torchvision's dataset readers, imported on first use (the import pulls in torch._dynamo,
    0.9 s here, which no start-up should pay)."""
    from torchvision import datasets

    return datasets


def default_augment(size: int) -> Augment:
    """Small images: CIFAR's padded crop and flip; large ones (already resized): flip only."""
    return CIFAR_AUGMENT if size <= 64 else Augment(pad=0, flip=True)


def _missing(name: str, root: Path, how: str) -> TavaalError:
    return TavaalError(f"{name} was not found under {root.resolve()}; {how}")


def _torchvision(name: str, make: Callable[[bool], object], root: Path, download: bool):
    try:
        return make(True), make(False)
    except (RuntimeError, FileNotFoundError, OSError) as e:
        if download:
            raise TavaalError(f"could not download {name} into {root.resolve()}: {first_line(e)}") from None
        raise _missing(
            name,
            root,
            "pass --download to fetch it there, or --data-dir DIR "
            "pointing at a folder that holds it in torchvision's layout",
        ) from None


def _finish(
    name: str, xtr: np.ndarray, ytr, xte: np.ndarray, yte, classes: list[str], augment: Augment
) -> ArrayDataset:
    xtr_t = torch.from_numpy(np.ascontiguousarray(xtr))
    mean, std = channel_stats(xtr_t)
    return ArrayDataset(
        name,
        xtr_t,
        torch.as_tensor(np.asarray(ytr), dtype=torch.long),
        torch.from_numpy(np.ascontiguousarray(xte)),
        torch.as_tensor(np.asarray(yte), dtype=torch.long),
        list(classes),
        mean,
        std,
        augment,
    )


def load_cifar(name: str, root: Path, download: bool) -> ArrayDataset:
    """CIFAR-10 or CIFAR-100 from the python pickles (``cifar-10-batches-py``)."""
    datasets = _torchvision_datasets()
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    tr, te = _torchvision(name, lambda train: cls(str(root), train=train, download=download), root, download)
    return _finish(
        name,
        tr.data.transpose(0, 3, 1, 2),
        tr.targets,
        te.data.transpose(0, 3, 1, 2),
        te.targets,
        tr.classes,
        CIFAR_AUGMENT,
    )


def load_svhn(root: Path, download: bool) -> ArrayDataset:
    """SVHN from ``train_32x32.mat`` and ``test_32x32.mat`` (no flips: digits are not symmetric)."""
    tr, te = _torchvision(
        "svhn",
        lambda train: _torchvision_datasets().SVHN(
            str(root), split="train" if train else "test", download=download
        ),
        root,
        download,
    )
    return _finish(
        "svhn",
        tr.data,
        tr.labels,
        te.data,
        te.labels,
        [str(i) for i in range(10)],
        Augment(pad=2, flip=False),
    )


def load_fashionmnist(root: Path, download: bool) -> ArrayDataset:
    """Fashion-MNIST from its idx files, as 1x28x28 images."""
    tr, te = _torchvision(
        "fashionmnist",
        lambda train: _torchvision_datasets().FashionMNIST(str(root), train=train, download=download),
        root,
        download,
    )
    return _finish(
        "fashionmnist",
        tr.data.numpy()[:, None],
        tr.targets,
        te.data.numpy()[:, None],
        te.targets,
        list(tr.classes),
        Augment(pad=2, flip=True),
    )


def _folder_samples(root: Path) -> tuple[list[str], list[int], list[str]]:
    try:
        folder = _torchvision_datasets().folder
        classes, to_idx = folder.find_classes(str(root))
        samples = folder.make_dataset(str(root), to_idx, extensions=folder.IMG_EXTENSIONS)
    except FileNotFoundError:
        samples = []
    if not samples:
        raise TavaalError(f"no images found under {root}; expected one sub-folder per class holding images")
    return [p for p, _ in samples], [c for _, c in samples], classes


def load_imagefolder(
    train_dir: str,
    test_dir: str,
    image_size: int = 0,
    quiet: bool = True,
    name: str = "imagefolder",
    skip_unreadable: bool = False,
) -> ArrayDataset:
    """Two folders in torchvision's ImageFolder layout (one sub-folder per class), decoded once."""
    if not train_dir or not test_dir:
        raise TavaalError(
            "--dataset imagefolder needs --train-dir DIR and --test-dir DIR, each with one "
            "sub-folder per class"
        )
    for d in (train_dir, test_dir):
        if not Path(d).is_dir():
            raise TavaalError(
                f"image folder {Path(d).resolve()} does not exist; give a folder with one "
                "sub-folder of images per class"
            )
    ptr, ytr, classes = _folder_samples(Path(train_dir))
    pte, yte, classes_te = _folder_samples(Path(test_dir))
    if classes_te != classes:
        raise TavaalError(
            f"the class folders differ between {train_dir} ({len(classes)}) and {test_dir} "
            f"({len(classes_te)}); both need the same class sub-folders"
        )
    size = image_size or common_image_size(ptr)
    xtr, keep_tr = decode_cached(ptr, size, f"decoding {train_dir}", quiet, skip_unreadable)
    xte, keep_te = decode_cached(pte, size, f"decoding {test_dir}", quiet, skip_unreadable)
    ytr, yte = [ytr[i] for i in keep_tr], [yte[i] for i in keep_te]
    return _finish(name, xtr, ytr, xte, yte, classes, default_augment(size))


def load_caltech101(
    root: Path,
    download: bool,
    image_size: int = 224,
    quiet: bool = True,
    test_size: int = 1019,
    seed: int = 0,
    skip_unreadable: bool = False,
) -> ArrayDataset:
    """Caltech-101's 9,144 images (102 folders, background included, as counted in section 4.3),
    resized to ``image_size`` and split 8,125 / 1,019 with a fixed seed."""
    folder = root / "caltech101" / "101_ObjectCategories"
    if not folder.is_dir() and download:
        try:
            _torchvision_datasets().Caltech101(str(root), download=True)
        except Exception as e:  # network or archive errors, reported as one line
            raise TavaalError(
                f"could not download caltech101 into {root.resolve()}: {first_line(e)}"
            ) from None
    if not folder.is_dir():
        raise _missing(
            "caltech101",
            folder,
            "pass --download, or unpack 101_ObjectCategories.tar.gz "
            f"so that {folder} holds one folder per category",
        )
    paths, labels, classes = _folder_samples(folder)
    if test_size >= len(paths):
        raise TavaalError(f"caltech101 under {folder} has only {len(paths)} images")
    x, keep = decode_cached(paths, image_size or 224, "decoding caltech101", quiet, skip_unreadable)
    y = np.asarray(labels)[keep]
    perm = np.random.default_rng(seed).permutation(len(y))
    te, tr = np.sort(perm[:test_size]), np.sort(perm[test_size:])
    return _finish("caltech101", x[tr], y[tr], x[te], y[te], classes, Augment(pad=0, flip=True))
