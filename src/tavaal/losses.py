"""Losses of the paper, each named by its equation.

Pairs: a batch of B samples is split into B/2 pairs (i, j) with j = B-1-i (the first half against
the reversed second half, as in Learning Loss); with odd B the middle sample is left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pairs(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = pred.shape[0] // 2
    dp = pred[:half] - pred.flip(0)[:half]
    dt = target[:half] - target.flip(0)[:half]
    return dp, dt.detach()


def task_losses(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """The per-sample task loss l_i that the Ranker ranks: cross-entropy for a class, and for a
    mask (logits N, K, H, W) the mean pixel cross-entropy over the pixels not ignored."""
    if logits.dim() == 2:
        return F.cross_entropy(logits, target, reduction="none")
    pix = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    valid = (target != ignore_index).flatten(1).sum(1).clamp_min(1)
    return pix.flatten(1).sum(1) / valid


def ranking_loss(pred_loss: torch.Tensor, target_loss: torch.Tensor) -> torch.Tensor:
    """eq. (1), the Ranker's loss L_R: BCE of sigmoid(l^_i - l^_j) against I = 1[l_i > l_j].

    Target losses are detached, so L_R trains the Ranker (and, through the features, T) only.
    """
    dp, dt = _pairs(pred_loss, target_loss)
    if dp.numel() == 0:
        return pred_loss.sum() * 0.0
    return F.binary_cross_entropy_with_logits(dp, (dt > 0).to(dp.dtype))


def margin_loss(pred_loss: torch.Tensor, target_loss: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Learning Loss (Yoo and Kweon 2019): mean of max(0, -I * (l^_i - l^_j) + xi), I = +1 if l_i > l_j
    else -1, with xi = ``margin`` (1 in the paper)."""
    dp, dt = _pairs(pred_loss, target_loss)
    if dp.numel() == 0:
        return pred_loss.sum() * 0.0
    sign = torch.where(dt > 0, 1.0, -1.0).to(dp.dtype)
    return torch.clamp(margin - sign * dp, min=0).mean()


def total_loss(task_loss: torch.Tensor, rank_loss: torch.Tensor, eta: float) -> torch.Tensor:
    """eq. (2): L_total = L_T + eta * L_R."""
    return task_loss + eta * rank_loss


def vae_loss(
    recon: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float,
    kl_reduction: str = "mean",
) -> torch.Tensor:
    """eq. (4), one pool's half, as a loss to minimise: reconstruction error (mean squared error
    over every element, the Gaussian log-likelihood up to scale) + beta * KL(q(z|x) || N(0, I)).

    The paper does not say how the KL is reduced. ``mean`` (the authors' code) averages it over
    batch and latent dimensions, on the same per-element scale as the MSE; ``sum`` sums over the
    latent dimensions and averages over the batch, d times heavier.
    """
    rec = F.mse_loss(recon, x)
    kl_terms = 1 + logvar - mu.pow(2) - logvar.exp()
    if kl_reduction == "sum":
        kl = -0.5 * torch.mean(torch.sum(kl_terms, dim=1))
    elif kl_reduction == "mean":
        kl = -0.5 * torch.mean(kl_terms)
    else:
        raise ValueError(f"kl_reduction must be 'mean' or 'sum', got {kl_reduction!r}")
    return rec + beta * kl


def vae_adversarial_loss(d_labeled: torch.Tensor, d_unlabeled: torch.Tensor) -> torch.Tensor:
    """eq. (5): -E[log D(r_L, z_L) + log D(r_U, z_U)], from D's logits: the VAE tries to make
    both pools look labeled."""
    ones_l = torch.ones_like(d_labeled)
    ones_u = torch.ones_like(d_unlabeled)
    return F.binary_cross_entropy_with_logits(d_labeled, ones_l) + F.binary_cross_entropy_with_logits(
        d_unlabeled, ones_u
    )


def discriminator_loss(d_labeled: torch.Tensor, d_unlabeled: torch.Tensor) -> torch.Tensor:
    """eq. (6): -E[log D(r_L, z_L)] - E[log(1 - D(r_U, z_U))], from D's logits."""
    return F.binary_cross_entropy_with_logits(
        d_labeled, torch.ones_like(d_labeled)
    ) + F.binary_cross_entropy_with_logits(d_unlabeled, torch.zeros_like(d_unlabeled))
