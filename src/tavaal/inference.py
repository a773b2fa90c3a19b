"""Batched inference with the task learner (and Ranker): one loop over eval-size batches for
every pass that scores, embeds or evaluates, and the test metrics (accuracy, mIoU)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from tavaal.data.base import IGNORE, ArrayDataset
from tavaal.losses import task_losses
from tavaal.runtime import Runtime


def batches(
    ds: ArrayDataset, idx: np.ndarray | torch.Tensor, rt: Runtime, split: str = "train", labels: bool = False
) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """Rows ``idx`` of ``split``, un-augmented, ``rt.eval_batch_size`` at a time, in the memory
    format the networks run in: each batch's inputs, or (inputs, labels) with ``labels``."""
    store = ds.x_train if split == "train" else ds.x_test
    idx = torch.as_tensor(np.asarray(idx), dtype=torch.long, device=store.device)
    for start in range(0, idx.numel(), rt.eval_batch_size):
        bi = idx[start : start + rt.eval_batch_size]
        if labels:
            x, y = ds.batch_xy(bi, train=False, split=split)
            yield rt.to_input(x), y
        else:
            yield rt.to_input(ds.batch(bi, train=False, split=split))


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The model's dropout layers (any kind) that drop something (p > 0)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


@torch.no_grad()
def infer(
    model: nn.Module,
    ds: ArrayDataset,
    idx: np.ndarray | torch.Tensor,
    rt: Runtime,
    split: str = "train",
    ranker: nn.Module | None = None,
    train_mode_dropout: bool = False,
    reduce_logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Batched forward pass over rows ``idx``: logits, embeddings and (with a Ranker) its outputs.

    The model is in eval mode; ``train_mode_dropout`` keeps only its dropout layers active.
    ``reduce_logits`` maps each batch's logits to per-sample values (``out["reduced"]``); a
    segmentation model's pixel logits are not kept otherwise (they would not fit in memory).
    """
    device = rt.device
    model.eval()
    if train_mode_dropout:
        for m in dropout_layers(model):
            m.train()
    logits, embs, ranks, reduced = [], [], [], []
    for x in batches(ds, idx, rt, split):
        with rt.autocast():
            lo, emb, feats = model(x)
        if ranker is not None:  # fp32: bf16's 8-bit mantissa would tie thousands of scores
            ranks.append(ranker([f.float() for f in feats]).float())
        if reduce_logits is not None:
            reduced.append(reduce_logits(lo.float()))
        if lo.dim() == 2:
            logits.append(lo.float())
        embs.append(emb.float())
    model.eval()
    out = {
        "logits": torch.cat(logits) if logits else torch.empty(0, device=device),
        "embedding": torch.cat(embs) if embs else torch.empty(0, device=device),
    }
    if ranker is not None:
        out["rank"] = torch.cat(ranks) if ranks else torch.empty(0, device=device)
    if reduce_logits is not None:
        out["reduced"] = torch.cat(reduced) if reduced else torch.empty(0, device=device)
    return out


@torch.no_grad()
def sample_losses(model: nn.Module, ds: ArrayDataset, idx: np.ndarray, rt: Runtime) -> torch.Tensor:
    """The task loss of each of rows ``idx`` with its true label or mask (the analyses' real losses)."""
    model.eval()
    out = []
    for x, y in batches(ds, idx, rt, labels=True):
        with rt.autocast():
            lo = model(x)[0]
        out.append(task_losses(lo.float(), y.to(rt.device)))
    return torch.cat(out) if out else torch.empty(0, device=rt.device)


def evaluate(model: nn.Module, ds: ArrayDataset, rt: Runtime) -> float:
    """The test set's headline metric: top-1 accuracy, or mIoU for segmentation."""
    return evaluate_metrics(model, ds, rt)["value"]


def evaluate_metrics(model: nn.Module, ds: ArrayDataset, rt: Runtime) -> dict:
    """``metric`` ("accuracy" or "miou"), its ``value``, and for segmentation ``per_class_iou``."""
    if not ds.is_segmentation:
        idx = np.arange(ds.x_test.shape[0])
        logits = infer(model, ds, idx, rt, split="test")["logits"]
        correct = (logits.argmax(1) == ds.y_test.to(rt.device)).float()
        return {"metric": "accuracy", "value": float(correct.mean())}
    conf = confusion_matrix(model, ds, rt)
    iou = iou_from_confusion(conf)
    present = ~torch.isnan(iou)
    return {
        "metric": "miou",
        "value": float(iou[present].mean()) if present.any() else 0.0,
        "per_class_iou": [None if torch.isnan(v) else float(v) for v in iou],
    }


@torch.no_grad()
def confusion_matrix(model: nn.Module, ds: ArrayDataset, rt: Runtime) -> torch.Tensor:
    """K x K pixel counts (rows: truth, columns: prediction) over the test set, accumulated on the
    device batch by batch, ignored pixels (IGNORE) left out."""
    k, dev = ds.num_classes, rt.device
    conf = torch.zeros(k * k, dtype=torch.long, device=dev)
    model.eval()
    for x, y in batches(ds, np.arange(ds.x_test.shape[0]), rt, "test", labels=True):
        with rt.autocast():
            logits = model(x)[0]
        pred, y = logits.argmax(1).flatten(), y.to(dev).flatten()
        keep = y != IGNORE
        conf += torch.bincount(y[keep] * k + pred[keep], minlength=k * k)
    return conf.view(k, k)


def iou_from_confusion(conf: torch.Tensor) -> torch.Tensor:
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from both truth and prediction."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
