"""``ActiveLearner.save`` / ``load``: one folder per learner.

    learner.json             what the session is: method, model, config, ids, classes, labels in
                             the order given, seeds and round, and the fitted state (written last)
    pool.pt                  the decoded pool (and test split), written once
    networks-<token>.pt      the fitted networks: T, R, the VAE and D; learner.json names the one

Every file is written atomically and learner.json last, naming the networks file it belongs to, so
a kill during ``save`` leaves the previous save whole.

Loading never runs code from the folder: the ``.pt`` files are read with ``weights_only=True``
(tensors, numbers, strings and containers; no pickled Python objects), the networks file must be a
``networks-<hex>.pt`` inside the folder, and a model that is Python code (``module:factory``, a
callable, an instance) is never imported from learner.json: the caller passes it as ``model=``.
A saved folder is safe to open even when someone else made it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tavaal._version import __version__
from tavaal.atomic import atomic_write_bytes, atomic_write_text
from tavaal.config import RunConfig
from tavaal.data.base import Augment
from tavaal.errors import TavaalError, first_line
from tavaal.learner.intake import PoolData
from tavaal.models.user import is_factory_path
from tavaal.paths import read_json, real

FORMAT = "tavaal.ActiveLearner"
# 2: the method's selector (VAE and D) is saved as "selector" (1 called them "adversarial"; read too)
FORMAT_VERSION = 2
NETWORKS = re.compile(r"networks-[0-9a-f]{12}\.pt")
# What a damaged or hand-edited folder raises while it is read: reported as one line, never a traceback.
DAMAGED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OSError, EOFError, RuntimeError,
           pickle.UnpicklingError)  # fmt: skip


def confined(path: Path) -> Path:
    """``path``, a file of a saved learner, when it resolves inside the learner's folder: a symlink
    that leads out of it (to someone's other files) is refused."""
    if not real(path).is_relative_to(real(path.parent)):
        raise TavaalError(
            f"{path} is a link to {real(path)}, outside the saved learner's folder; a saved learner's "
            "files must be its own (copy the file in, or save the learner again)"
        )
    return path


def _load_tensors(path: Path, device: Any = "cpu") -> Any:
    """A .pt file of tensors and plain containers; anything else (a pickled object) is refused."""
    if not path.is_file():
        raise TavaalError(f"{path} is missing; the saved learner is incomplete")
    confined(path)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except DAMAGED as e:
        first = first_line(e, 200)
        raise TavaalError(
            f"{path} cannot be read as tensors ({type(e).__name__}: {first}); it is damaged, or holds "
            "Python objects, which tavaal never unpickles"
        ) from None


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _read_meta(root: Path) -> dict[str, Any] | None:
    path = root / "learner.json"
    if not os.path.lexists(path):
        return None
    meta = read_json(confined(path), "state", "saved learner file", "save the learner again")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TavaalError(f"{path} is not a saved tavaal ActiveLearner")
    saved = meta.get("format_version", 1)
    if not isinstance(saved, int) or isinstance(saved, bool) or saved < 1:
        raise TavaalError(
            f"{path} names format version {saved!r}, not a version number: the file is damaged; "
            "save the learner again"
        )
    if saved > FORMAT_VERSION:
        raise TavaalError(
            f"{path} was saved in format version {saved!r} by tavaal {meta.get('tavaal_version')!r}; "
            f"this tavaal reads up to version {FORMAT_VERSION}: upgrade tavaal to load it"
        )
    return meta


def save_learner(learner: Any, path: Any) -> None:
    """Write ``learner`` (an ``ActiveLearner``: its ``state_dict``, ``pool_data`` and settings) into
    folder ``path``, learner.json last."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise TavaalError(f"cannot save into {root}: it is a file; give a folder")
    meta = _read_meta(root) if root.is_dir() else None
    if meta is not None and meta.get("uid") != learner.uid:
        raise TavaalError(
            f"{root} holds another learner (method {meta.get('method')!r}, {len(meta.get('labels', []))} "
            "labels); save into another folder, or delete it first"
        )
    if meta is None and root.is_dir() and any(root.iterdir()):
        raise TavaalError(f"{root} is not empty and holds no saved learner; save into a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    d = learner.pool_data
    if not (root / "pool.pt").is_file():  # the pool never changes: written once
        cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
        pool = {
            "x": cpu(d.x),
            "x_test": cpu(d.x_test),
            "y_test": cpu(d.y_test),
            "mean": d.mean,
            "std": d.std,
            "augment": (d.augment.pad, d.augment.flip),
            "name": d.name,
            "classes": d.classes,
            "embeddings": cpu(learner.embeddings),
        }
        atomic_write_bytes(root / "pool.pt", _torch_bytes(pool))
    state = learner.state_dict()
    fit = state.pop("fit")
    if fit is not None:
        token = uuid.uuid4().hex[:12]
        atomic_write_bytes(root / f"networks-{token}.pt", _torch_bytes(fit.pop("networks")))
        fit["networks"] = f"networks-{token}.pt"
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tavaal_version": __version__,
        "method": learner.method,
        "model": learner.spec.label,
        "python_model": not isinstance(learner.spec.source, str),
        "feature_layers": list(learner.spec.feature_layers),
        "embedding_layer": learner.spec.embedding_layer,
        "config": learner.cfg.to_dict(),
        "ids": learner.ids,
        **state,
        "fit": fit,
    }
    atomic_write_text(root / "learner.json", json.dumps(meta))
    keep = fit["networks"] if fit else None
    for old in root.glob("networks-*.pt"):
        if old.name != keep:
            old.unlink()


@dataclass
class Saved:
    """A saved learner as read back: its settings, pool and state (the networks read on demand)."""

    root: Path
    meta: dict[str, Any]
    cfg: RunConfig
    data: PoolData
    embeddings: Any

    def state(self, device: Any) -> dict[str, Any]:
        """The learner's ``state_dict``, its networks loaded onto ``device``."""
        keys = ("uid", "trial", "cycle", "cold_start", "classes", "classes_fixed", "labels")
        state = {k: self.meta[k] for k in keys}
        fit = self.meta["fit"]
        if fit is not None:
            fit = {**fit, "networks": _load_tensors(self.root / fit["networks"], device)}
        return {**state, "fit": fit}


@contextlib.contextmanager
def reading(root: Path) -> Iterator[None]:
    """A damaged or hand-edited folder raises one clear error, never a traceback."""
    try:
        yield
    except TavaalError:
        raise
    except DAMAGED as e:
        first = first_line(e, 200)
        raise TavaalError(
            f"{root} is damaged or was edited by hand ({type(e).__name__}: {first}); save the learner again"
        ) from None


def _whole(v: Any, lo: int = 0, hi: int | None = None) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v < hi)


def check_saved(root: Path, meta: dict[str, Any], pool: dict[str, Any]) -> None:
    """What learner.json and pool.pt declare must agree before anything is built from them: one id
    per row of the pool, label and candidate indices inside it, whole non-negative counts, finite
    pool values. A hand-edited folder is one line naming what is wrong."""

    def bad(what: str) -> TavaalError:
        return TavaalError(f"{root} is damaged or was edited by hand: {what}; save the learner again")

    x, ids = pool.get("x"), meta.get("ids")
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 4) or x.shape[0] == 0:
        raise bad("pool.pt holds no pool of vectors or images")
    if not isinstance(ids, list) or len(ids) != x.shape[0]:
        got = len(ids) if isinstance(ids, list) else type(ids).__name__
        raise bad(f"learner.json names {got} ids but pool.pt holds {x.shape[0]} rows")
    n = x.shape[0]
    for key in ("trial", "cycle"):
        if not _whole(meta.get(key)):
            raise bad(f"{key} is {meta.get(key)!r}, not a whole number 0 or more")
    labels = meta.get("labels")
    if not isinstance(labels, list) or not all(
        isinstance(p, list) and len(p) == 2 and _whole(p[0], 0, n) for p in labels
    ):
        raise bad(f"labels must be [row, label] pairs with rows in 0..{n - 1}")
    if len({p[0] for p in labels}) != len(labels):
        raise bad("a row is labeled twice")
    fit = meta.get("fit")
    if fit is not None:
        if not isinstance(fit, dict):
            raise bad("fit is not an object")
        if not _whole(fit.get("n_labeled"), 0, len(labels) + 1) or not _whole(fit.get("seed")):
            raise bad("the fitted round's labeled count or seed is out of range")
        cands = fit.get("candidates")
        if not isinstance(cands, list) or not all(_whole(c, 0, n) for c in cands):
            raise bad(f"the fitted round's candidates must be rows in 0..{n - 1}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise bad("pool.pt holds NaN or infinite values")


def read_learner(path: Any, model_given: bool, device: str | None = None) -> Saved:
    """Read and check the folder ``save_learner`` wrote; ``device`` moves the learner. Nothing in
    it is imported or unpickled."""
    root = Path(path)
    meta = _read_meta(root) if root.is_dir() else None
    if meta is None:
        raise TavaalError(f"{root} holds no saved learner (no learner.json); give the folder save() wrote")
    with reading(root):
        cfg = RunConfig.from_flat(meta["config"])
        cfg.validate()
        if not model_given and (meta["python_model"] or is_factory_path(cfg.training.model)):
            raise TavaalError(
                f"{root} was saved with a Python model ({meta['model']}); loading never imports code, so "
                "pass the same network again: ActiveLearner.load(path, model=...)"
            )
        fit = meta["fit"]
        if fit is not None and not NETWORKS.fullmatch(str(fit.get("networks"))):
            raise TavaalError(
                f"{root / 'learner.json'} names the networks file {fit.get('networks')!r}; a saved "
                "learner's networks are a networks-<hex>.pt inside its own folder"
            )
        pool = _load_tensors(root / "pool.pt")
        check_saved(root, meta, pool)
        data = PoolData(
            pool["x"],
            meta["ids"],
            tuple(pool["mean"]),
            tuple(pool["std"]),
            Augment(*pool["augment"]),
            pool["name"],
            pool["x_test"],
            pool["y_test"],
            pool["classes"],
        )
        if device is not None:
            cfg = cfg.replace(device=device)
        return Saved(root, meta, cfg, data, pool.get("embeddings"))
