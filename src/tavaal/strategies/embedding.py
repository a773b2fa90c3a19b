"""Where a diversity method's embedding comes from, one helper for all of them (TypiClust,
Core-set): the task learner's features, a VAE's latent mean, or the user's own embeddings
(``ActiveLearner(embeddings=...)``, e.g. features of a pretrained model)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tavaal.errors import TavaalError
from tavaal.inference import infer
from tavaal.strategies.base import SelectionContext


def embedding_rows(
    ctx: SelectionContext,
    idx: np.ndarray,
    source: str,
    vae: Callable[[np.ndarray], torch.Tensor] | None = None,
    setting: str = "embedding",
) -> torch.Tensor:
    """The rows ``idx`` (dataset indices) of the embedding ``source``: "task" (the task learner's
    penultimate features), "vae" (``vae(idx)``, the method's own VAE) or "user" (``ctx.embeddings``).
    ``setting`` names the method's field in the error for missing user embeddings."""
    if source == "user":
        if ctx.embeddings is None:
            raise TavaalError(f"{setting}='user' needs your embeddings: ActiveLearner(..., embeddings=array)")
        return ctx.embeddings[torch.as_tensor(idx, dtype=torch.long, device=ctx.embeddings.device)]
    if source == "vae":
        if vae is None:
            raise TavaalError(f"{setting}='vae' is not offered by this method; use task or user")
        return vae(idx)
    return infer(ctx.model, ctx.dataset, idx, ctx.runtime)["embedding"]
