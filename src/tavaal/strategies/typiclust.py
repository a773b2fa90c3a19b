"""TypiClust (Hacohen, Dekel and Weinshall, ICML 2022, "Active learning on a budget"): at small
budgets pick *typical* samples of clusters that hold no label yet. The labeled set and the
candidates are clustered into |labeled| + budget clusters (k-means, at most ``max_clusters``);
each pick comes from the cluster with the fewest labels (then the largest), and is its most
typical candidate: the inverse of the mean distance to its k nearest neighbours in the cluster.

The paper clusters a self-supervised embedding. Here the embedding is the task learner's
(``typiclust_embedding="task"``), the latent mean of VAAL's VAE trained without labels on the
labeled set and the candidates (``"vae"``, the adversarial section's settings and ``vae_epochs``),
or one the user gives (``"user"``: ``ActiveLearner(embeddings=...)``, e.g. features of a
pretrained model); L2-normalised as the paper's SimCLR features are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from tavaal.settings import POSITIVE, Settings, setting
from tavaal.strategies.adversarial import AdversarialParams, VAEDiscriminator
from tavaal.strategies.base import Selection, SelectionContext, Strategy, register
from tavaal.strategies.embedding import embedding_rows

MIN_CLUSTER = 5  # the authors' code picks from clusters of more than 5 points


@dataclass
class TypiClustParams(Settings):
    """Typicality over the k nearest neighbours, at most this many clusters, and which embedding is
    clustered: "task" (the task learner's), "vae" (VAAL's VAE latent, with the ``adversarial``
    section's settings) or "user" (``ActiveLearner(embeddings=...)``)."""

    section: ClassVar[str] = "typiclust"

    typiclust_k: int = setting(20, check=POSITIVE, most=10_000)
    typiclust_max_clusters: int = setting(500, check=POSITIVE, most=10**6)
    typiclust_embedding: str = setting("task", choices=("task", "vae", "user"))
    # "authors": their select_samples (typicality among the cluster's unlabeled points, k = min(k,
    # n // 2), clusters of more than 5, visited round robin); "whole-cluster": typicality over every
    # member once, k = min(k, n - 1), clusters of 5 or more, the fewest-labels cluster each pick.
    typiclust_rule: str = setting("authors", choices=("authors", "whole-cluster"), later=True)


def typicality(x: np.ndarray, k: int) -> np.ndarray:
    """1 / mean distance of each row to its ``k`` nearest other rows (of ``x``)."""
    k = max(1, min(k, len(x) - 1))
    if len(x) < 2:
        return np.ones(len(x))
    from sklearn.neighbors import NearestNeighbors  # scikit-learn takes 0.7 s to import: on first use

    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return 1.0 / (dist[:, 1:].mean(axis=1) + 1e-8)


def typiclust(
    labeled: np.ndarray,
    candidates: np.ndarray,
    budget: int,
    seed: int,
    k: int = 20,
    max_clusters: int = 500,
    rule: str = "authors",
) -> tuple[list[int], np.ndarray]:
    """Positions (in ``candidates``) of the ``budget`` picks, and every candidate's typicality within
    its cluster. ``labeled`` and ``candidates`` are embedding rows."""
    x = np.concatenate([labeled, candidates]).astype(np.float64)
    n_l = len(labeled)
    n_clusters = min(n_l + budget, max_clusters, len(x))
    from sklearn.cluster import KMeans, MiniBatchKMeans  # scikit-learn's import: on first use

    km = (KMeans if n_clusters <= 50 else MiniBatchKMeans)(n_clusters=n_clusters, random_state=seed, n_init=3)
    assign = km.fit_predict(x)
    size = np.bincount(assign, minlength=n_clusters)
    covered = np.bincount(assign[:n_l], minlength=n_clusters)
    free = np.bincount(assign[n_l:], minlength=n_clusters)  # candidates not yet picked, per cluster
    if rule == "authors":
        return _authors_loop(x, assign, n_l, size, covered, free, budget, k)
    typ = np.zeros(len(x))
    for c in range(n_clusters):
        members = np.flatnonzero(assign == c)
        if len(members):
            typ[members] = typicality(x[members], k)
    taken = np.zeros(len(x), dtype=bool)
    taken[:n_l] = True
    picks = []
    for _ in range(budget):
        open_ = np.flatnonzero(free > 0)
        big = open_[size[open_] >= MIN_CLUSTER]
        pool = big if len(big) else open_
        c = int(pool[np.lexsort((pool, -size[pool], covered[pool]))[0]])  # fewest labels, then largest
        members = np.flatnonzero((assign == c) & ~taken)
        best = members[np.argmax(typ[members])]
        picks.append(int(best - n_l))
        taken[best] = True
        covered[c] += 1
        free[c] -= 1
    return picks, typ[n_l:]


def _authors_loop(
    x: np.ndarray,
    assign: np.ndarray,
    n_l: int,
    size: np.ndarray,
    covered: np.ndarray,
    free: np.ndarray,
    budget: int,
    k: int,
) -> tuple[list[int], np.ndarray]:
    """The authors' ``select_samples``: clusters of more than ``MIN_CLUSTER`` points, ordered once
    by (labels held, largest first) and visited round robin; each pick is the most typical of the
    cluster's points not yet labeled or picked, with typicality among those points and k = min(k,
    n // 2) ("in case we have too small cluster"). Where their code would fail, it goes on: an
    exhausted cluster is skipped, and the small clusters are visited once the large ones run out."""
    ids = np.arange(len(size))
    ranked = ids[np.lexsort((ids, -size, covered))]
    order = [int(c) for c in ranked if size[c] > MIN_CLUSTER]
    rest = [int(c) for c in ranked if size[c] <= MIN_CLUSTER]
    avail = np.zeros(len(x), dtype=bool)
    avail[n_l:] = True
    typ = np.zeros(len(x))  # the record's scores: typicality among each cluster's candidates at the start
    for c in ids:
        members = np.flatnonzero(avail & (assign == c))
        if len(members):
            typ[members] = typicality(x[members], min(k, len(members) // 2))
    picks: list[int] = []
    i = 0
    while len(picks) < budget:
        if not order or not free[order].any():
            order, rest = rest, []
            i = 0
            continue
        c = order[i % len(order)]
        i += 1
        if free[c] == 0:
            continue
        members = np.flatnonzero(avail & (assign == c))
        best = members[np.argmax(typicality(x[members], min(k, len(members) // 2)))]
        picks.append(int(best - n_l))
        avail[best] = False
        free[c] -= 1
    return picks, typ[n_l:]


@register
class TypiClust(Strategy):
    name = "typiclust"
    score_name = "typicality"
    score_order = "not the order"
    settings = (TypiClustParams, AdversarialParams)  # the VAE's settings for the "vae" embedding

    @property
    def p(self) -> TypiClustParams:
        return self.params[TypiClustParams]

    def make_selector(self, ctx: SelectionContext) -> Any:
        """For ``embedding="vae"``: VAAL's (unconditioned) VAE and D, trained in ``select``."""
        if self.p.typiclust_embedding != "vae":
            return None
        return VAEDiscriminator(ctx, self.params[AdversarialParams], conditioned=False)

    def _features(self, ctx: SelectionContext, idx: np.ndarray) -> np.ndarray:
        f = embedding_rows(ctx, idx, self.p.typiclust_embedding, self._vae(ctx), "typiclust_embedding")
        return torch.nn.functional.normalize(f.float(), dim=1).cpu().numpy()

    def _vae(self, ctx: SelectionContext):
        """The latent mean of VAAL's VAE, trained (once per cycle) on the images alone: T plays no part."""

        def embed(idx: np.ndarray) -> torch.Tensor:
            selector = self.selector(ctx)
            if not selector.fitted:
                selector.fit((None,) * 4, self.params[AdversarialParams].vae_epochs, ctx.progress)
            return selector.embed(idx)

        return embed

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:
        picks, typ = typiclust(
            self._features(ctx, ctx.labeled),
            self._features(ctx, ctx.candidates),
            budget,
            ctx.seed,
            self.p.typiclust_k,
            self.p.typiclust_max_clusters,
            self.p.typiclust_rule,
        )
        return Selection(np.asarray(ctx.candidates)[picks], typ, self.score_name)
