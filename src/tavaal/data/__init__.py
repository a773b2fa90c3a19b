"""Dataset registry: every name a run can use, and how to load it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from tavaal.data.base import ArrayDataset, Augment, prepare
from tavaal.data.imbalance import imbalanced_indices
from tavaal.errors import TavaalError
from tavaal.registry import Registry
from tavaal.settings import Settings, setting


@dataclasses.dataclass
class DataSpec(Settings):
    """Which dataset, where it lives and how it is prepared."""

    section: ClassVar[str] = "data"
    hash_defaults: ClassVar[bool] = True

    dataset: str = "digits"
    data_dir: str = "data"
    train_dir: str = ""
    test_dir: str = ""
    download: bool = False
    image_size: int = setting(
        0, check=(lambda v: v == 0 or v >= 8, "0 (the dataset's own size) or at least 8 pixels"), most=4096
    )
    # "paper": first five classes reduced; "official": the even ones
    imbalance_pattern: str = setting("paper", choices=("paper", "official"))
    # section 4.3 on any classification set (an image folder too): the reduced classes keep 1/ratio
    # of their training samples; 1: as loaded. The test set is never reduced.
    imbalance_ratio: int = setting(
        1, check=(lambda v: v >= 1, "1 (as loaded) or more"), most=10**6, later=True
    )
    skip_unreadable: bool = False  # leave out image files that cannot be decoded, with a warning
    # zero padding of the random crop; -1: the dataset's (2 for 32x32, section 4.2)
    crop_pad: int = setting(-1, check=(lambda v: v >= -1, "-1 (the dataset's) or 0 or more"), most=1024)
    # segmentation: train on random crop_size x crop_size windows; 0: whole images
    crop_size: int = setting(
        0, check=(lambda v: v == 0 or v >= 8, "0 (whole images) or at least 8 pixels"), most=4096, later=True
    )

    def input_folders(self) -> dict[str, str]:
        """{what: folder} of the user's image folders this dataset reads (outputs must stay out of
        them). The torchvision-format datasets read fixed files under --data-dir: not listed."""
        if self.dataset != "imagefolder":
            return {}
        found = {"--train-dir folder": self.train_dir, "--test-dir folder": self.test_dir}
        return {k: v for k, v in found.items() if v}


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """Where and how a loader reads its dataset: the ``DataSpec`` fields loaders use, and ``quiet``."""

    data_dir: str = "data"
    download: bool = False
    train_dir: str = ""
    test_dir: str = ""
    image_size: int = 0
    imbalance_pattern: str = "paper"
    quiet: bool = True
    skip_unreadable: bool = False

    @classmethod
    def of(cls, spec: DataSpec, quiet: bool = True) -> LoadOptions:
        """The options a config's ``data`` section gives (every field a loader reads, by name)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"quiet"}
        return cls(quiet=quiet, **{k: getattr(spec, k) for k in names})

    @property
    def root(self) -> Path:
        return Path(self.data_dir)


DatasetLoader = Callable[[LoadOptions], ArrayDataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")


def _register_builtin() -> None:
    """The loaders live in toy.py and vision.py, imported on first use (torchvision is slow)."""

    def toy(fn_name: str) -> DatasetLoader:
        def load(o: LoadOptions) -> ArrayDataset:
            from tavaal.data import toy as mod

            return getattr(mod, fn_name)()

        return load

    def vision(load_fn: Callable) -> DatasetLoader:
        def load(o: LoadOptions) -> ArrayDataset:
            from tavaal.data import vision as mod

            return load_fn(mod, o)

        return load

    DATASETS.register("moons")(toy("load_moons"))
    DATASETS.register("digits")(toy("load_digits_dataset"))
    for name in ("cifar10", "cifar100"):
        DATASETS.register(name)(vision(lambda m, o, n=name: m.load_cifar(n, o.root, o.download)))
    for name, ratio in (("cifar10-imb10", 10), ("cifar10-imb100", 100)):
        DATASETS.register(name)(
            vision(
                lambda m, o, n=name, r=ratio: make_imbalanced(
                    m.load_cifar("cifar10", o.root, o.download), r, o.imbalance_pattern, n
                )
            )
        )
    DATASETS.register("svhn")(vision(lambda m, o: m.load_svhn(o.root, o.download)))
    DATASETS.register("fashionmnist")(vision(lambda m, o: m.load_fashionmnist(o.root, o.download)))
    DATASETS.register("caltech101")(
        vision(
            lambda m, o: m.load_caltech101(
                o.root, o.download, o.image_size or 224, o.quiet, skip_unreadable=o.skip_unreadable
            )
        )
    )
    DATASETS.register("imagefolder")(
        vision(
            lambda m, o: m.load_imagefolder(
                o.train_dir, o.test_dir, o.image_size, o.quiet, skip_unreadable=o.skip_unreadable
            )
        )
    )

    def segmentation(fn_name: str) -> DatasetLoader:
        def load(o: LoadOptions) -> ArrayDataset:
            from tavaal.data import segmentation as mod

            return getattr(mod, fn_name)(o.root, o.image_size, 0, o.quiet)

        return load

    DATASETS.register("camvid")(segmentation("load_camvid"))
    DATASETS.register("cityscapes")(segmentation("load_cityscapes"))


_register_builtin()


def load_dataset(name: str, **options: Any) -> ArrayDataset:
    """Load a registered dataset by name into memory (uint8 images, or float vectors); ``options``
    are ``LoadOptions`` fields (``data_dir``, ``download``, ``image_size``...)."""
    return DATASETS.get(name)(LoadOptions(**options))


def load_data(spec: DataSpec, quiet: bool = True) -> ArrayDataset:
    """The dataset a config's ``data`` section names, with every one of its fields applied."""
    ds = DATASETS.get(spec.dataset)(LoadOptions.of(spec, quiet))
    if spec.imbalance_ratio > 1:
        ds = _reduced(ds, spec)
    return with_crop_size(with_crop_pad(ds, spec.crop_pad), spec.crop_size)


def _reduced(ds: ArrayDataset, spec: DataSpec) -> ArrayDataset:
    """``imbalance_ratio`` applied to a loaded classification set (section 4.3's construction)."""
    if ds.is_segmentation:
        raise TavaalError(
            f"imbalance_ratio (--imbalance-ratio) reduces classes of a classification set; {spec.dataset} "
            "is a segmentation set: leave it at 1"
        )
    if spec.dataset.startswith("cifar10-imb"):
        raise TavaalError(
            f"{spec.dataset} is already imbalanced; for another ratio use --dataset cifar10 "
            f"--imbalance-ratio {spec.imbalance_ratio}"
        )
    return make_imbalanced(
        ds, spec.imbalance_ratio, spec.imbalance_pattern, f"{ds.name}-imb{spec.imbalance_ratio}"
    )


def with_crop_size(ds: ArrayDataset, crop: int) -> ArrayDataset:
    """Segmentation: train on random ``crop`` x ``crop`` windows of image and mask (0: whole images)."""
    if not ds.is_segmentation or crop == ds.augment.crop:
        return ds
    return dataclasses.replace(ds, augment=dataclasses.replace(ds.augment, crop=crop))


def with_crop_pad(ds: ArrayDataset, pad: int) -> ArrayDataset:
    """Set the zero padding of the training crop (``pad`` >= 0) of 32x32 images, the size both the
    paper (pad 2) and the authors' code (pad 4) crop; -1, or another size, leaves it as it is (4
    pixels of padding would be half of an 8x8 digit)."""
    if pad < 0 or not ds.is_image or ds.input_shape[-1] != 32 or pad == ds.augment.pad:
        return ds
    return dataclasses.replace(ds, augment=Augment(pad=pad, flip=ds.augment.flip))


def make_imbalanced(ds: ArrayDataset, ratio: int, pattern: str, name: str) -> ArrayDataset:
    """Keep the training samples that ``imbalanced_indices`` chooses; the test set is unchanged."""
    keep = torch.from_numpy(imbalanced_indices(ds.y_train.numpy(), ratio, pattern))
    return dataclasses.replace(ds, name=name, x_train=ds.x_train[keep], y_train=ds.y_train[keep])


__all__ = [
    "ArrayDataset",
    "Augment",
    "DATASETS",
    "load_dataset",
    "make_imbalanced",
    "prepare",
    "with_crop_pad",
]
