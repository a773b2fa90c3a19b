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

import io
import json
import pickle
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tavaal import __version__
from tavaal.atomic import atomic_write_bytes, atomic_write_text
from tavaal.config import RunConfig
from tavaal.data.base import Augment
from tavaal.errors import TavaalError
from tavaal.learner.intake import PoolData
from tavaal.models import Ranker
from tavaal.strategies import SelectionContext, Strategy, get_strategy

FORMAT = "tavaal.ActiveLearner"
NETWORKS = re.compile(r"networks-[0-9a-f]{12}\.pt")
# What a damaged or hand-edited folder raises while it is read: reported as one line, never a traceback.
DAMAGED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OSError, EOFError, RuntimeError,
           pickle.UnpicklingError)  # fmt: skip


def _load_tensors(path: Path, device: Any = "cpu") -> Any:
    """A .pt file of tensors and plain containers; anything else (a pickled object) is refused."""
    if not path.is_file():
        raise TavaalError(f"{path} is missing; the saved learner is incomplete")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except DAMAGED as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
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
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TavaalError(f"{path} is corrupt ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TavaalError(f"{path} is not a saved tavaal ActiveLearner")
    return meta


def save_learner(learner: Any, path: Any) -> None:
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
    d = learner._data
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
            "embeddings": None if learner.embeddings is None else learner.embeddings.cpu(),
        }
        atomic_write_bytes(root / "pool.pt", _torch_bytes(pool))
    fit = None
    if learner.ctx is not None:
        token = uuid.uuid4().hex[:12]
        nets = {k: v.state_dict() for k, v in learner.networks().items()}
        atomic_write_bytes(root / f"networks-{token}.pt", _torch_bytes(nets))
        ctx = learner.ctx
        fit = {
            "networks": f"networks-{token}.pt",
            "seed": ctx.seed,
            "n_labeled": len(ctx.labeled),
            "candidates": [int(i) for i in ctx.candidates],
            "selects": learner._fit_selects,
            "round_open": learner._round_open,
        }
    meta = {
        "format": FORMAT,
        "format_version": 1,
        "tavaal_version": __version__,
        "uid": learner.uid,
        "method": learner.method,
        "model": learner.spec.label,
        "python_model": not isinstance(learner.spec.source, str),
        "feature_layers": list(learner.spec.feature_layers),
        "embedding_layer": learner.spec.embedding_layer,
        "config": learner.cfg.to_dict(),
        "trial": learner.trial,
        "cycle": learner.cycle,
        "cold_start": learner.cold_start,
        "ids": learner.ids,
        "classes": learner.classes,
        "classes_fixed": learner.classes_fixed,
        "labels": [[int(n), v] for n, v in learner._labels.items()],
        "fit": fit,
    }
    atomic_write_text(root / "learner.json", json.dumps(meta))
    keep = fit["networks"] if fit else None
    for old in root.glob("networks-*.pt"):
        if old.name != keep:
            old.unlink()


def load_learner(path: Any, model: Any = None, method: Strategy | None = None, device: str | None = None):
    root = Path(path)
    meta = _read_meta(root) if root.is_dir() else None
    if meta is None:
        raise TavaalError(f"{root} holds no saved learner (no learner.json); give the folder save() wrote")
    try:
        return _load(root, meta, model, method, device)
    except TavaalError:
        raise
    except DAMAGED as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise TavaalError(
            f"{root} is damaged or was edited by hand ({type(e).__name__}: {first}); save the learner again"
        ) from None


def _load(root: Path, meta: dict[str, Any], model: Any, method: Strategy | None, device: str | None):
    from tavaal.learner.learner import ActiveLearner
    from tavaal.models.user import is_factory_path

    cfg = RunConfig.from_flat(meta["config"])
    cfg.validate()
    if model is None and (meta["python_model"] or is_factory_path(cfg.training.model)):
        raise TavaalError(
            f"{root} was saved with a Python model ({meta['model']}); loading never imports code, so pass "
            "the same network again: ActiveLearner.load(path, model=...)"
        )
    fit = meta["fit"]
    if fit is not None and not NETWORKS.fullmatch(str(fit.get("networks"))):
        raise TavaalError(
            f"{root / 'learner.json'} names the networks file {fit.get('networks')!r}; a saved learner's "
            "networks are a networks-<hex>.pt inside its own folder"
        )
    pool = _load_tensors(root / "pool.pt")
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
    if method is None:
        method = get_strategy(meta["method"], cfg)
    learner = ActiveLearner(
        method,
        model,
        data,
        classes=meta["classes"] if meta["classes_fixed"] else None,
        feature_layers=meta["feature_layers"],
        embedding_layer=meta["embedding_layer"],
        trial=meta["trial"],
        cold_start=meta["cold_start"],
        config=cfg,
        embeddings=pool.get("embeddings"),
    )
    learner.uid = meta["uid"]
    if not meta["classes_fixed"]:
        learner.classes = list(meta["classes"])
    labels = meta["labels"]
    learner.label([learner.ids[n] for n, _ in labels], [v for _, v in labels])
    learner.cycle = meta["cycle"]
    if fit is not None:
        _restore_fit(learner, root, fit)
    return learner


def _restore_fit(learner: Any, root: Path, fit: dict[str, Any]) -> None:
    """The fitted networks, in the context they were trained in (labeled set, candidates, seed)."""
    from tavaal.runtime import Runtime

    nets = _load_tensors(root / fit["networks"], learner.device)
    rt = Runtime.from_config(learner.cfg, learner.device)
    model = learner.build_model().to(learner.device)
    ranker = Ranker(model.feature_dims).to(learner.device) if "ranker" in nets else None
    try:
        model.load_state_dict(nets["model"])
        if ranker is not None:
            ranker.load_state_dict(nets["ranker"])
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise TavaalError(
            f"the saved task learner does not fit the model given ({first}); pass the same network"
        ) from None
    if rt.channels_last and learner.ds.is_image:
        model = model.to(memory_format=torch.channels_last)
    labeled = learner.pool.labeled[: fit["n_labeled"]]
    candidates = np.asarray(fit["candidates"], dtype=np.int64)
    ctx = SelectionContext(
        model,
        ranker,
        learner.ds,
        labeled,
        candidates,
        rt,
        seed=fit["seed"],
        progress=learner.progress,
        embeddings=learner.embeddings,
    )
    if fit["selects"]:
        ctx.phase = learner.strategy.make_phase(ctx)
        if ctx.phase is not None and "adversarial" in nets:
            ctx.phase.load_state_dict(nets["adversarial"])
    learner.ctx, learner._fitted_on = ctx, fit["n_labeled"]
    learner._fit_selects, learner._round_open = fit["selects"], fit["round_open"]
