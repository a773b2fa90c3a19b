"""What a selection's scores show (every cycle), and what the Ranker and the discriminator know,
measured on one cycle's candidates (``--analysis``).

TA-VAAL can only be task-aware if the Ranker orders the candidates by their real loss and tells the
labeled pool from the unlabeled one, and if its r = sigmoid(R(x)) is not saturated (a saturated r
carries no ranking into the VAE and D). These figures use the candidates' true losses, which the
strategy never sees; they are recorded beside the selection, never used by it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from tavaal.inference import infer

logger = logging.getLogger("tavaal")
SATURATED = 0.01  # sigma(r) below this or above 1 - this counts as saturated


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation, or None where it is undefined (fewer than 3 values, or a constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr  # only --analysis needs SciPy's statistics: on first use

    return float(spearmanr(a, b).statistic)


def r_auc(r_labeled: np.ndarray, r_unlabeled: np.ndarray) -> float | None:
    """P(r of an unlabeled sample > r of a labeled one), ties counting one half: the ROC AUC of r
    with "unlabeled" as the positive class. 0.5: R does not separate the pools."""
    if len(r_labeled) == 0 or len(r_unlabeled) == 0:
        return None
    y = np.r_[np.zeros(len(r_labeled)), np.ones(len(r_unlabeled))]
    from sklearn.metrics import roc_auc_score  # scikit-learn's import (0.7 s): on first use

    return float(roc_auc_score(y, np.r_[r_labeled, r_unlabeled]))


def ranker_diagnostics(
    model: torch.nn.Module,
    ranker: torch.nn.Module | None,
    dataset: Any,
    labeled: np.ndarray,
    candidates: np.ndarray,
    losses: np.ndarray,
    runtime: Any,
    d_scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """The cycle's diagnostics: ``rho_r_loss`` (Spearman of the raw R(x) with the true loss, over
    the candidates), ``r_auc`` (labeled vs candidates, see ``r_auc``), ``r_saturated`` (share of
    candidates with sigma(R(x)) < 0.01 or > 0.99), ``r_abs_max``; with ``d_scores`` (D's probability
    of "labeled", eq. 7) ``rho_d_loss``: negative when D calls high-loss samples unlabeled."""
    out: dict[str, Any] = {}
    if ranker is not None and len(candidates):
        idx = np.concatenate([np.asarray(labeled), np.asarray(candidates)])
        raw = infer(model, dataset, idx, runtime, ranker=ranker)["rank"].double().cpu().numpy()
        raw_l, raw_u = raw[: len(labeled)], raw[len(labeled) :]
        sig = 1.0 / (1.0 + np.exp(-raw_u))
        out.update(
            rho_r_loss=spearman(raw_u, losses),
            r_auc=r_auc(raw_l, raw_u),
            r_saturated=float(np.mean((sig < SATURATED) | (sig > 1 - SATURATED))),
            r_abs_max=float(np.abs(raw_u).max()),
        )
    if d_scores is not None and len(d_scores) == len(losses):
        out["rho_d_loss"] = spearman(d_scores, losses)
    return out


def score_diagnostics(scores: np.ndarray | None, tied_at_cut: int) -> dict[str, Any]:
    """What shows a degenerate selection: how many distinct scores, their spread (max - min) and
    std, how many candidates tied with the last pick were left out (those picks were random), and
    ``degenerate``: the scores are (nearly) constant, their spread below 1e-4 of their magnitude."""
    if scores is None or len(scores) == 0:
        return {
            "n_distinct_scores": None,
            "score_spread": None,
            "score_std": None,
            "tied_at_cut": tied_at_cut,
            "degenerate": False,
        }
    s = np.asarray(scores, dtype=np.float64)
    spread = float(s.max() - s.min())
    distinct = int(np.unique(s).size)
    return {
        "n_distinct_scores": distinct,
        "score_spread": spread,
        "score_std": float(s.std()),
        "tied_at_cut": tied_at_cut,
        "degenerate": bool(distinct <= 1 or spread <= 1e-4 * max(float(np.abs(s).max()), 1e-12)),
    }


def warn_if_degenerate(record: dict[str, Any]) -> None:
    """Log a warning when the scores could not order the candidates, so the picks were random."""
    where = f"{record['method']} trial {record['trial']} cycle {record['cycle']}"
    if record["degenerate"]:
        logger.warning(
            "%s: the %s scores are (nearly) constant (%d distinct, spread %.3g): the selection was "
            "effectively random",
            where,
            record["score_name"],
            record["n_distinct_scores"],
            record["score_spread"],
        )
    elif record["tied_at_cut"]:
        logger.info(
            "%s: %d candidates tied with the last pick; the tie was broken at random",
            where,
            record["tied_at_cut"] + 1,
        )
