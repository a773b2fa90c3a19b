"""VAAL's VAE and TA-VAAL's conditional VAE (equation 4), and the discriminator D(r, z) (equations 3, 6).

The convolutional VAE follows the Wasserstein auto-encoder layout used by VAAL: stride-2 4x4
convolutions with 128-256-512-1024 channels, then FC layers to mu and log-variance; the decoder
mirrors it with transposed convolutions. TA-VAAL's decoder receives [z, r]; with ``cond_dim=0``
the network is exactly VAAL's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def resized(x: torch.Tensor, size: int, antialias: bool = False) -> torch.Tensor:
    """Images ``x`` resized (bilinear) to ``size`` x ``size``, unchanged when already that size."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


class Downscaled(nn.Module):
    """A VAE that sees its input downscaled (antialiased) to ``size`` x ``size``: segmentation's
    street scenes are too large for VAAL's VAE."""

    def __init__(self, vae: nn.Module, size: int):
        super().__init__()
        self.vae, self.size = vae, size

    def encode(self, x: torch.Tensor):
        return self.vae.encode(resized(x, self.size, antialias=True))

    def forward(self, x: torch.Tensor, r: torch.Tensor | None = None):
        return self.vae(resized(x, self.size, antialias=True), r)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
    )


class ConvVAE(nn.Module):
    """WAE-style VAE for images; sizes that are not a multiple of 16 are resized internally."""

    def __init__(self, in_channels: int, image_size: int, latent_dim: int, cond_dim: int = 0):
        super().__init__()
        # Four stride-2 layers as in VAAL for 32x32; one more per doubling beyond 64 (224 -> 7x7).
        n_down = 4 + max(0, int(math.log2(max(image_size, 64) / 64)))
        self.size = int(math.ceil(image_size / 2**n_down) * 2**n_down)
        chans = [128, 256, 512, 1024] + [1024] * (n_down - 4)
        enc, c = [], in_channels
        for w in chans:
            enc.append(_down(c, w))
            c = w
        self.encoder = nn.Sequential(*enc)
        self.s = self.size // 2**n_down
        self.fc_mu = nn.Linear(1024 * self.s * self.s, latent_dim)
        self.fc_logvar = nn.Linear(1024 * self.s * self.s, latent_dim)
        self.s_dec = 2 * self.s
        self.fc_dec = nn.Linear(latent_dim + cond_dim, 1024 * self.s_dec * self.s_dec)
        dec, c = [], 1024
        for w in list(reversed(chans[:-1])):
            dec.append(_up(c, w))
            c = w
        self.decoder = nn.Sequential(*dec, nn.ConvTranspose2d(c, in_channels, 1))
        self.image_size, self.latent_dim, self.cond_dim = image_size, latent_dim, cond_dim

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        return resized(x, self.size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.flatten(self.encoder(self._fit(x)), 1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim:
            z = torch.cat([z, r.view(-1, self.cond_dim).to(z.dtype)], dim=1)
        h = self.fc_dec(z).view(-1, 1024, self.s_dec, self.s_dec)
        return self.decoder(h)

    def forward(self, x: torch.Tensor, r: torch.Tensor | None = None):
        """Returns (reconstruction, target, z, mu, logvar); ``target`` is x at the internal size."""
        x = self._fit(x)
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return self.decode(z, r), x, z, mu, logvar


class MLPVAE(nn.Module):
    """A small two-layer MLP VAE for vectors (moons) and tiny images (8x8 digits)."""

    def __init__(self, in_shape: tuple[int, ...], latent_dim: int, cond_dim: int = 0, hidden: int = 128):
        super().__init__()
        self.in_shape = tuple(in_shape)
        d = int(math.prod(in_shape))
        self.enc = nn.Sequential(
            nn.Linear(d, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True)
        )
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.dec = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, d),
        )
        self.latent_dim, self.cond_dim = latent_dim, cond_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(torch.flatten(x, 1))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim:
            z = torch.cat([z, r.view(-1, self.cond_dim).to(z.dtype)], dim=1)
        return self.dec(z).view(-1, *self.in_shape)

    def forward(self, x: torch.Tensor, r: torch.Tensor | None = None):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return self.decode(z, r), x, z, mu, logvar


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class Discriminator(nn.Module):
    """D(r, z): an MLP (5 layers in section 4.2) returning the logit of "labeled".

    ``D(r, z) = sigmoid(logit)``; equation 7 selects the smallest values.
    """

    def __init__(self, latent_dim: int, cond_dim: int = 0, hidden: int = 512, n_layers: int = 5):
        super().__init__()
        layers, d = [], latent_dim + cond_dim
        for _ in range(n_layers - 1):
            layers += [nn.Linear(d, hidden), nn.ReLU(True)]
            d = hidden
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)
        self.latent_dim, self.cond_dim = latent_dim, cond_dim

    def forward(self, z: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim:
            z = torch.cat([z, r.view(-1, self.cond_dim).to(z.dtype)], dim=1)
        return self.net(z).squeeze(1)


def kaiming_init(net: nn.Module, skip: tuple[nn.Module, ...] = ()) -> nn.Module:
    """The authors' initialisation: Kaiming-normal weights (fan-in, ReLU gain) and zero biases for
    Linear and Conv2d layers, unit/zero BatchNorm; transposed convolutions keep PyTorch's default.

    ``skip``: layers left at PyTorch's default. The authors' VAE ends up skipping its mu and
    log-variance heads (their init loop only reaches layers inside Sequential blocks).
    """
    skipped = {id(m) for m in skip}
    for m in net.modules():
        if id(m) in skipped:
            continue
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def build_vae(
    input_shape: tuple[int, ...], latent_dim: int, cond_dim: int, kind: str = "auto", init: str = "kaiming"
) -> nn.Module:
    """A convolutional VAE for images of 16 pixels or more, else the MLP VAE; ``init`` is
    "kaiming" (the authors') or "default" (PyTorch's)."""
    is_image = len(input_shape) == 3
    if kind == "conv" or (kind == "auto" and is_image and input_shape[-1] >= 16):
        vae: nn.Module = ConvVAE(input_shape[0], input_shape[-1], latent_dim, cond_dim)
    else:
        vae = MLPVAE(input_shape, latent_dim, cond_dim)
    if init == "kaiming":
        kaiming_init(vae, skip=(vae.fc_mu, vae.fc_logvar))
    return vae


def build_discriminator(
    latent_dim: int, cond_dim: int, n_layers: int, init: str = "kaiming"
) -> Discriminator:
    """D(r, z) with ``n_layers`` linear layers (5 in the paper, 3 in the authors' code)."""
    disc = Discriminator(latent_dim, cond_dim, n_layers=n_layers)
    return kaiming_init(disc) if init == "kaiming" else disc
