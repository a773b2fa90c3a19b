import math

import torch

from tavaal.losses import (
    discriminator_loss,
    margin_loss,
    ranking_loss,
    total_loss,
    vae_adversarial_loss,
    vae_loss,
)

PRED = torch.tensor([0.5, -1.0, 2.0, 0.0])
TARGET = torch.tensor([1.0, 3.0, 0.5, 2.0])
# pairs (0, 3) and (1, 2): predicted differences 0.5 and -3.0; target differences -1.0 and 2.5


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_ranking_loss_eq1_by_hand():
    # I = [0, 1]: -(log(1 - s(0.5)) + log(s(-3))) / 2
    expected = -(math.log(1 - sig(0.5)) + math.log(sig(-3.0))) / 2
    assert abs(float(ranking_loss(PRED, TARGET)) - expected) < 1e-6


def test_margin_loss_by_hand():
    # I = [-1, +1]: max(0, 1 + 0.5) = 1.5 and max(0, 1 + 3) = 4 -> mean 2.75
    assert abs(float(margin_loss(PRED, TARGET, 1.0)) - 2.75) < 1e-6
    assert abs(float(margin_loss(PRED, TARGET, 0.0)) - (0.5 + 3.0) / 2) < 1e-6


def test_odd_batch_leaves_middle_out_and_tiny_batch_is_zero():
    p = torch.tensor([0.5, 9.0, 0.0])
    t = torch.tensor([1.0, 5.0, 2.0])
    # one pair (0, 2): prediction diff 0.5, target diff -1 -> I = 0
    assert abs(float(ranking_loss(p, t)) - (-math.log(1 - sig(0.5)))) < 1e-6
    one = torch.tensor([1.0], requires_grad=True)
    assert float(ranking_loss(one, torch.tensor([2.0])).detach()) == 0.0


def test_target_losses_are_detached():
    target = TARGET.clone().requires_grad_(True)
    pred = PRED.clone().requires_grad_(True)
    ranking_loss(pred, target).backward()
    assert target.grad is None and pred.grad is not None


def test_total_loss_eq2():
    assert float(total_loss(torch.tensor(2.0), torch.tensor(3.0), 0.5)) == 3.5


def test_vae_loss_eq4_by_hand():
    x = torch.tensor([[1.0, 2.0]])
    recon = torch.tensor([[0.0, 2.0]])
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    mse = 0.5
    kl_sum = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2.0) - 0 - 2))
    # Default (the authors' code): KL averaged over batch and the d = 2 latent dimensions.
    assert abs(float(vae_loss(recon, x, mu, logvar, beta=2.0)) - (mse + 2 * kl_sum / 2)) < 1e-6
    assert (
        abs(float(vae_loss(recon, x, mu, logvar, beta=2.0, kl_reduction="sum")) - (mse + 2 * kl_sum)) < 1e-6
    )


def test_vae_loss_kl_mean_is_independent_of_latent_size():
    # The same per-dimension posterior in 4 or 64 dimensions costs the same KL with "mean".
    x = recon = torch.zeros(3, 5)
    small, large = torch.full((3, 4), 0.5), torch.full((3, 64), 0.5)
    zeros_s, zeros_l = torch.zeros(3, 4), torch.zeros(3, 64)
    assert torch.isclose(vae_loss(recon, x, small, zeros_s, 1.0), vae_loss(recon, x, large, zeros_l, 1.0))
    assert torch.isclose(
        16 * vae_loss(recon, x, small, zeros_s, 1.0, "sum"), vae_loss(recon, x, large, zeros_l, 1.0, "sum")
    )


def test_adversarial_losses_eq5_eq6_by_hand():
    dl, du = torch.tensor([0.0]), torch.tensor([math.log(3.0)])  # D = 0.5 and 0.75
    assert abs(float(vae_adversarial_loss(dl, du)) - (-math.log(0.5) - math.log(0.75))) < 1e-6
    assert abs(float(discriminator_loss(dl, du)) - (-math.log(0.5) - math.log(0.25))) < 1e-6
