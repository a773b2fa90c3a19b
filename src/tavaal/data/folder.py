"""Image folders: which files under a folder are images."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from tavaal.errors import TavaalError


def list_images(pool: Path) -> list[str]:
    """Every image file below ``pool``, as sorted paths relative to it."""
    if not pool.is_dir():
        raise TavaalError(
            f"pool folder {pool} does not exist; give the folder that holds your unlabeled images"
        )
    found = sorted(
        str(p.relative_to(pool))
        for p in pool.rglob("*")
        if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS
    )
    if not found:
        raise TavaalError(f"no images found under {pool}")
    return found
