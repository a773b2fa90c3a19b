"""Image folders: which files under a folder are images."""

from __future__ import annotations

from pathlib import Path

from tavaal.errors import TavaalError


def image_extensions() -> tuple[str, ...]:
    """The file extensions torchvision's image folders read (.jpg, .png, ...)."""
    # torchvision's import pulls in torch._dynamo (0.9 s here): only on first use, not at start-up
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return IMG_EXTENSIONS


def list_images(pool: Path) -> list[str]:
    """Every image file below ``pool``, as sorted paths relative to it."""
    if not pool.is_dir():
        what = "is not a folder" if pool.exists() else "does not exist"
        raise TavaalError(f"pool folder {pool} {what}; give the folder that holds your unlabeled images")
    found = sorted(
        str(p.relative_to(pool))
        for p in pool.rglob("*")
        if p.is_file() and p.suffix.lower() in image_extensions()
    )
    if not found:
        raise TavaalError(f"no images found under {pool}")
    return found
