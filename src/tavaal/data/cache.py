"""Decode images once: a uint8 array cached on disk, keyed by source paths, sizes and mtimes."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from tavaal.atomic import atomic_write_bytes
from tavaal.errors import TavaalError, first_line
from tavaal.memory import check_fits

logger = logging.getLogger("tavaal")


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


# What PIL raises on a truncated, corrupt or foreign file.
_UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def to_8bit(im: Image.Image) -> Image.Image:
    """A 16-bit or 32-bit single-channel image as 8 bits, scaled by its range (PIL's own
    ``convert`` clips every value above 255 to white): 16-bit integers by the format's range
    (65535 -> 255, so images keep their brightness relative to one another), 32-bit integers
    when they fit 16 bits the same way, else by their own maximum; floats by their own min..max."""
    if im.mode not in ("I", "F") and not im.mode.startswith("I;16"):
        return im
    a = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
    else:
        top = 65535.0 if a.max(initial=0) <= 65535 else float(a.max())
        a = np.clip(a, 0, None) / top * 255
    return Image.fromarray(np.nan_to_num(a).round().astype(np.uint8), mode="L")


def decode_image(path: str, size: int) -> np.ndarray:
    """One file -> (3, size, size) uint8 RGB (resized when it is not already that size)."""
    with Image.open(path) as im:
        im = to_8bit(im).convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def common_image_size(paths: Sequence[str]) -> int:
    """The size a folder's images are decoded to when none is given: the most common height among
    them (the smaller on a tie; the median when every height differs), read from the file
    headers. One very large image (a panorama among thumbnails) does not decide the size of all."""
    heights: Counter[int] = Counter()
    for p in paths:
        try:
            with Image.open(p) as im:  # reads the header only
                heights[int(im.size[1])] += 1
        except _UNREADABLE:
            continue
    if not heights:
        raise TavaalError(f"none of the {len(paths)} images (first: {paths[0]}) can be read")
    top = max(heights.values())
    if top == 1 and len(heights) > 2:
        return int(np.median(sorted(heights)))
    return min(h for h, c in heights.items() if c == top)


def _unreadable_error(bad: list[tuple[str, str]]) -> TavaalError:
    listed = "; ".join(f"{p} ({reason})" for p, reason in bad[:5]) + (
        f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    )
    return TavaalError(
        f"{len(bad)} image file(s) cannot be read: {listed}. Replace or delete them, or pass "
        "--skip-unreadable to leave them out with a warning"
    )


def decode_cached(
    paths: Sequence[str], size: int, desc: str = "decoding", quiet: bool = True, skip_unreadable: bool = False
) -> tuple[np.ndarray, list[int]]:
    """Decode ``paths`` to an (N, 3, size, size) uint8 array, or load it whole from the cache;
    also the positions of the paths it holds. An unreadable file is an error naming it, or, with
    ``skip_unreadable``, left out with a warning that lists every one (nothing is cached then,
    so the warning comes back until the files are fixed)."""
    key = cache_key(paths, size)
    target = cache_dir() / f"images-{key}.npy"
    if target.is_file():
        try:  # data only (allow_pickle off); a damaged or foreign file is decoded again
            cached = np.load(target, allow_pickle=False)
            if cached.shape == (len(paths), 3, size, size) and cached.dtype == np.uint8:
                return cached, list(range(len(paths)))
        except (OSError, ValueError, EOFError):
            pass
        logger.warning("the cached images %s are damaged; decoding again", target)
    check_fits(
        f"decoding {len(paths):,} images at {size}x{size}",
        len(paths) * 3 * size * size,
        "cpu",
        "give a smaller --image-size (image_size=...)",
    )
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    bad: dict[int, str] = {}

    def work(i: int) -> None:
        try:
            out[i] = decode_image(paths[i], size)
        except _UNREADABLE as e:
            bad[i] = first_line(e) or type(e).__name__

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for _ in tqdm(
            pool.map(work, range(len(paths))), total=len(paths), desc=desc, disable=quiet, leave=False
        ):
            pass
    if bad:
        listing = [(paths[i], bad[i]) for i in sorted(bad)]
        if not skip_unreadable:
            raise _unreadable_error(listing)
        logger.warning("left out %d unreadable image(s): %s", len(bad), ", ".join(p for p, _ in listing))
        kept = [i for i in range(len(paths)) if i not in bad]
        return out[kept], kept
    buf = io.BytesIO()
    np.save(buf, out)
    about = json.dumps({"n": len(paths), "size": size, "first": paths[0] if paths else None})
    write_cache(target, buf.getvalue(), about)
    return out, list(range(len(paths)))


def write_cache(target: Path, data: bytes, about: str | None = None) -> None:
    """Keep a decoded array in the cache; a cache that cannot be written (a full disk, no
    permission, a read-only home) is a warning, and the command goes on without it."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
        if about is not None:
            atomic_write_bytes(target.with_suffix(".json"), about.encode())
    except (OSError, TavaalError) as e:
        logger.warning(
            "could not keep the decoded images in the cache %s (%s); going on without it "
            "(set TAVAAL_CACHE to a writable folder to decode once)",
            target.parent,
            first_line(e).split(";")[0],  # the reason, not a write's advice to rerun
        )
