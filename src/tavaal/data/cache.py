"""Decode images once: a uint8 array cached on disk, keyed by source paths, sizes and mtimes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from tavaal.atomic import atomic_write_bytes


def cache_dir() -> Path:
    """``$TAVAAL_CACHE``, else ``$XDG_CACHE_HOME/tavaal``, else ``~/.cache/tavaal``."""
    env = os.environ.get("TAVAAL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tavaal"


def cache_key(paths: Sequence[str], size: int) -> str:
    """Hash of every path with its byte size and mtime, plus the output image size."""
    h = hashlib.sha256(str(size).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def decode_image(path: str, size: int) -> np.ndarray:
    """One file -> (3, size, size) uint8 RGB (resized when it is not already that size)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def first_image_size(path: str) -> int:
    with Image.open(path) as im:
        return int(im.size[1])


def decode_cached(paths: Sequence[str], size: int, desc: str = "decoding", quiet: bool = True) -> np.ndarray:
    """Decode ``paths`` to an (N, 3, size, size) uint8 array, or load it whole from the cache."""
    key = cache_key(paths, size)
    target = cache_dir() / f"images-{key}.npy"
    if target.is_file():
        return np.load(target)
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    from tqdm.auto import tqdm

    def work(i: int) -> None:
        out[i] = decode_image(paths[i], size)

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for _ in tqdm(
            pool.map(work, range(len(paths))), total=len(paths), desc=desc, disable=quiet, leave=False
        ):
            pass
    target.parent.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    np.save(buf, out)
    atomic_write_bytes(target, buf.getvalue())
    (target.with_suffix(".json")).write_text(
        json.dumps({"n": len(paths), "size": size, "first": paths[0] if paths else None})
    )
    return out
