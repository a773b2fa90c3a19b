"""Shared machinery of VAAL, VAAL + Learning Loss and TA-VAAL: the (conditional) VAE and the
discriminator, trained on the labeled set and the unlabeled subset (equations 3-6), then selection by
the smallest D (equation 7).

Two schedules:
- ``paper`` (Algorithm 1): the VAE and D train inside the task learner's epoch loop; r ~ U(0, 1)
  at the first epoch and the current Ranker's normalised output after.
- ``official`` (the authors' code): T and R train first; then the VAE and D train for
  ``vae_epochs`` epochs with T and R frozen, so r is computed once per sample per cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from tavaal.inference import batches, infer
from tavaal.losses import discriminator_loss, vae_adversarial_loss, vae_loss
from tavaal.memory import check_fits, training_bytes
from tavaal.models import Downscaled, build_discriminator, build_vae
from tavaal.settings import NONNEGATIVE, POSITIVE, Settings, setting
from tavaal.strategies.base import Selection, SelectionContext, Strategy, seeded


@dataclass
class AdversarialParams(Settings):
    """VAAL's and TA-VAAL's VAE and discriminator (equations 3-7). ``vae_lr`` is zeta2, ``disc_lr``
    zeta3, ``lam`` lambda and ``beta`` the KL weight of equation 4, ``latent_dim`` d."""

    section: ClassVar[str] = "adversarial"
    hash_defaults: ClassVar[bool] = True

    # "paper": Algorithm 1; "official": VAE + D after T and R, frozen
    schedule: str = setting("paper", choices=("paper", "official"))
    latent_dim: int = setting(32, check=POSITIVE, most=65_536)
    vae_lr: float = setting(5e-4, check=POSITIVE)
    disc_lr: float = setting(5e-4, check=POSITIVE)
    lam: float = setting(1.0, check=NONNEGATIVE)
    beta: float = setting(1.0, check=NONNEGATIVE)
    vae_epochs: int = setting(100, check=POSITIVE, most=100_000)  # EV for the official schedule
    # 0: the task learner's batch size (SelectionContext.batch_size)
    vae_batch_size: int = setting(
        0, check=(lambda v: v == 0 or v >= 2, "0 (the task batch size) or at least 2"), most=2**20
    )
    vae_kind: str = setting(
        "auto", choices=("auto", "conv", "mlp")
    )  # "conv" (WAE-style), "mlp", by input shape
    disc_layers: int = setting(5, check=POSITIVE, most=64)
    disc_r: str = setting("sigmoid", choices=("sigmoid", "raw"))  # "raw": official code gives D the raw R(x)
    # Where the paper is silent, the authors' code decides these defaults.
    # equation 4's KL averaged over batch and latent dims; "sum": over dims
    kl_reduction: str = setting("mean", choices=("mean", "sum"))
    vae_augment: bool = False  # VAE and D see un-augmented images, as r does
    # batches in one fixed random order per cycle; "shuffle": a new order per pass
    vae_order: str = setting("fixed", choices=("fixed", "shuffle"))
    # VAE and D weights: Kaiming normal, zero biases; "default": PyTorch's
    vae_init: str = setting("kaiming", choices=("kaiming", "default"))
    # segmentation: the VAE and D see images downscaled to this square size
    vae_image_size: int = setting(
        64,
        check=(lambda v: v >= 16, "at least 16 pixels (the conv VAE halves it four times)"),
        most=1024,
        later=True,
    )


def vae_input_shape(dataset: Any, params: AdversarialParams) -> tuple[int, ...]:
    """What the VAE sees: the pool's samples, street scenes downscaled to ``vae_image_size``."""
    shape = tuple(dataset.input_shape)
    if dataset.is_segmentation:
        shape = (shape[0], params.vae_image_size, params.vae_image_size)
    return shape


def check_adversarial_fits(
    dataset: Any, params: AdversarialParams, conditioned: bool, batch: int, device: torch.device
) -> None:
    """The VAE and D of ``params`` for ``dataset``, counted on the meta device (``tavaal.memory``):
    refused with one line when training them on batches of ``batch`` would not fit ``device``."""
    shape, cond = vae_input_shape(dataset, params), 1 if conditioned else 0
    r = [(batch, 1)] if conditioned else []
    need = training_bytes(
        lambda: build_vae(shape, params.latent_dim, cond, params.vae_kind, params.vae_init),
        [(batch, *shape), *r],
    )
    need += training_bytes(
        lambda: build_discriminator(params.latent_dim, cond, params.disc_layers, params.vae_init),
        [(batch, params.latent_dim), *r],
    )
    check_fits(
        "the VAE and discriminator",
        2 * need,  # labeled and unlabeled batches in one step
        device,
        "lower --latent-dim, --disc-layers, --vae-batch-size or the image size "
        "(--image-size, --vae-image-size)",
    )


class VAEDiscriminator:
    """The VAE and D of one cycle with their Adam optimizers (learning rates zeta2, zeta3): VAAL's
    and TA-VAAL's selector, trained inside T's epochs (paper schedule) or after them (official);
    TypiClust's, unconditioned, for its VAE embedding. ``fitted`` turns true once its schedule's
    training is complete."""

    def __init__(
        self, ctx: SelectionContext, params: AdversarialParams, conditioned: bool, graphs: bool | None = None
    ):
        """``params``: the strategy's hyper-parameters (a ``vae_batch_size`` of 0 becomes the task
        learner's, ``ctx.batch_size``); ``graphs``: capture the VAE + D step as a CUDA graph
        (default: the runtime's setting)."""
        self.batch = params.vae_batch_size or ctx.batch_size
        self.ctx, self.p, self.conditioned = ctx, params, conditioned
        self.rt = rt = ctx.runtime
        dev = rt.torch_device
        cond = 1 if conditioned else 0
        seeded(ctx.seed + 1)
        shape = vae_input_shape(ctx.dataset, params)  # street scenes: the VAE sees them downscaled
        check_adversarial_fits(ctx.dataset, params, conditioned, self.batch, dev)
        self.vae = build_vae(shape, params.latent_dim, cond, params.vae_kind, params.vae_init)
        if ctx.dataset.is_segmentation:
            self.vae = Downscaled(self.vae, params.vae_image_size)
        self.vae = self.vae.to(dev)
        self.disc = build_discriminator(params.latent_dim, cond, params.disc_layers, params.vae_init).to(dev)
        if rt.channels_last and ctx.dataset.is_image:
            self.vae = self.vae.to(memory_format=torch.channels_last)
        opt_kw = rt.optimizer_kwargs(adam=True)
        self._cond: list[torch.Tensor] | tuple | None = None  # (r_L, r_U, D's r_L, D's r_U)
        self.vae_opt = torch.optim.Adam(self.vae.parameters(), lr=params.vae_lr, **opt_kw)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=params.disc_lr, **opt_kw)
        self.gen = torch.Generator(device=dev).manual_seed(ctx.seed + 2)
        self.stepper = rt.stepper(self.gen, graphs)
        self.labeled = torch.as_tensor(ctx.labeled, dtype=torch.long, device=dev)
        self.unlabeled = torch.as_tensor(ctx.candidates, dtype=torch.long, device=dev)
        self.iterations = 0
        self.fitted = False
        # One random order per pool for the whole cycle (``vae_order="fixed"``), read cyclically
        # from where the last epoch stopped, as the authors' endless loaders do.
        self._orders = {}
        self._offsets = {"l": 0, "u": 0}
        # Mean VAE loss (equation 4 + lambda equation 5) and D loss (equation 6) over the last epoch.
        self._epoch_losses = torch.full((2,), float("nan"))

    def _stream(self, pool: str, n: int, total: int) -> torch.Tensor:
        """``total`` positions in [0, n), each sample once per pass over its pool."""
        if self.p.vae_order == "shuffle":  # a new random permutation for every pass
            reps = math.ceil(total / n)
            return torch.cat(
                [torch.randperm(n, generator=self.gen, device=self.gen.device) for _ in range(reps)]
            )[:total]
        if pool not in self._orders:
            self._orders[pool] = torch.randperm(n, generator=self.gen, device=self.gen.device)
        start = self._offsets[pool]
        self._offsets[pool] = (start + total) % n
        return self._orders[pool][(start + torch.arange(total, device=self.gen.device)) % n]

    def state_dict(self) -> dict[str, Any]:
        """The VAE's and D's weights, whether their schedule is complete, and the last epoch's losses
        (the optimizers' state is not needed after selection)."""
        return {
            "vae": self.vae.state_dict(),
            "disc": self.disc.state_dict(),
            "fitted": self.fitted,
            "epoch_losses": self._epoch_losses.detach().cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved (a saved ``ActiveLearner``'s selector)."""
        self.vae.load_state_dict(state["vae"])
        self.disc.load_state_dict(state["disc"])
        self.fitted = bool(state.get("fitted", True))
        if "epoch_losses" in state:
            self._epoch_losses = torch.as_tensor(state["epoch_losses"]).to(self.labeled.device)

    def train_epoch(
        self,
        r_l: torch.Tensor | None,
        r_u: torch.Tensor | None,
        d_l: torch.Tensor | None,
        d_u: torch.Tensor | None,
    ) -> None:
        """One pass of ceil((n_L + n_U) / batch) iterations over batch pairs (labeled, unlabeled).

        ``r_*`` (sigmoid-normalised) condition the decoder; ``d_*`` are what D receives (the same
        values in the paper, the raw Ranker output with ``--disc-r raw``).
        """
        b = self.batch
        nl, nu = self.labeled.numel(), self.unlabeled.numel()
        iters = math.ceil((nl + nu) / b)
        pl, pu = self._stream("l", nl, iters * b), self._stream("u", nu, iters * b)
        self.vae.train()
        self.disc.train()
        cond = (r_l, r_u, d_l, d_u)
        if self.stepper.graph is None:
            self._cond = cond
        elif self.conditioned:  # a graph reads fixed addresses: keep r in buffers it owns
            if self._cond is None:
                self._cond = [t.clone() for t in cond]
            else:
                for buf, t in zip(self._cond, cond):
                    buf.copy_(t)
        total = torch.zeros(2, device=self.labeled.device)
        for it in range(iters):
            il, iu = pl[it * b : (it + 1) * b], pu[it * b : (it + 1) * b]
            total += self.stepper("vae", self._step, il, iu)
        self.iterations += iters
        self._epoch_losses = total / iters  # read (one host sync) only when asked for

    def fit(self, cond: tuple, epochs: int, progress: bool = False) -> None:
        """The official schedule: ``epochs`` passes with T and R frozen, so r is fixed (``cond``)."""
        for _ in tqdm(range(epochs), desc="vae", disable=not progress, leave=False):
            self.train_epoch(*cond)
        self.fitted = True

    def losses(self) -> tuple[float, float]:
        """(VAE loss, D loss), each the mean over the last epoch's iterations."""
        v, d = self._epoch_losses.tolist()
        return v, d

    def _step(self, generator: torch.Generator | None, il: torch.Tensor, iu: torch.Tensor) -> torch.Tensor:
        """Gather and augment a labeled and an unlabeled batch (positions ``il``, ``iu``) with their
        r, then run one iteration."""
        ds = self.ctx.dataset
        aug = self.p.vae_augment
        x = torch.cat(
            [ds.batch(self.labeled[il], aug, generator), ds.batch(self.unlabeled[iu], aug, generator)]
        )
        r = dr = None
        if self.conditioned:
            r_l, r_u, d_l, d_u = self._cond
            r, dr = torch.cat([r_l[il], r_u[iu]]), torch.cat([d_l[il], d_u[iu]])
        return self._iteration(self.rt.to_input(x), r, dr)

    def _iteration(self, x: torch.Tensor, r: torch.Tensor | None, dr: torch.Tensor | None) -> torch.Tensor:
        """One round of eq. (3)'s game, min over the encoder q and max over D: a VAE step on the
        transductive loss (equation 4) + lambda x the adversarial loss (equation 5), then a D step
        (equation 6), on a labeled and an unlabeled half-batch."""
        p, b = self.p, x.shape[0] // 2
        with self.rt.autocast():
            recon, target, _, mu, logvar = self.vae(x, r)
            recon, target, mu, logvar = recon.float(), target.float(), mu.float(), logvar.float()
            kl = p.kl_reduction
            trans = vae_loss(recon[:b], target[:b], mu[:b], logvar[:b], p.beta, kl) + vae_loss(
                recon[b:], target[b:], mu[b:], logvar[b:], p.beta, kl
            )  # equation 4
            logit = self.disc(mu, dr).float()
            # L_VAE = equation 4 + lambda x equation 5
            loss = trans + p.lam * vae_adversarial_loss(logit[:b], logit[b:])
        self.vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.vae_opt.step()
        with torch.no_grad(), self.rt.autocast():
            mu = self.vae.encode(x)[0]
        with self.rt.autocast():
            logit = self.disc(mu.detach(), dr).float()
            d_loss = discriminator_loss(logit[:b], logit[b:])  # equation 6
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.disc_opt.step()
        return torch.stack([loss.detach(), d_loss.detach()])

    @torch.no_grad()
    def embed(self, idx: np.ndarray) -> torch.Tensor:
        """The VAE's latent mean mu(x) of dataset rows ``idx`` (TypiClust's ``vae`` embedding)."""
        self.vae.eval()
        out = []
        for x in batches(self.ctx.dataset, idx, self.rt):
            with self.rt.autocast():
                out.append(self.vae.encode(x)[0].float())
        return torch.cat(out) if out else torch.empty(0, device=self.labeled.device)

    @torch.no_grad()
    def discriminate(self, d_u: torch.Tensor | None) -> torch.Tensor:
        """D(r_U, mu(x_U)) for every candidate, as a probability of "labeled" (the argument of equation 7)."""
        step = self.rt.eval_batch_size
        self.vae.eval()
        self.disc.eval()
        out = []
        for k, x in enumerate(batches(self.ctx.dataset, self.unlabeled, self.rt)):
            with self.rt.autocast():
                mu = self.vae.encode(x)[0]
            dr = d_u[k * step : (k + 1) * step] if self.conditioned else None
            # D in fp32: in bf16 its outputs take a few hundred values and equation 7 ties at the cut.
            out.append(torch.sigmoid(self.disc(mu.float(), dr).float()))
        return torch.cat(out)


class AdversarialStrategy(Strategy):
    """Base of vaal, vaal-lloss and tavaal; ``conditioned`` adds the Ranker's r (TA-VAAL)."""

    conditioned = False
    adversarial = True
    score_name = "d_labeled_prob"
    score_order = "lower first"  # the smallest D(r, z) first

    settings = (AdversarialParams,)

    @property
    def p(self) -> AdversarialParams:
        return self.params[AdversarialParams]

    def _ranks(self, ctx: SelectionContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw Ranker outputs for the labeled set and the candidates, in one batched pass."""
        idx = np.concatenate([ctx.labeled, ctx.candidates])
        raw = infer(ctx.model, ctx.dataset, idx, ctx.runtime, ranker=ctx.ranker)["rank"]
        return raw[: len(ctx.labeled)], raw[len(ctx.labeled) :]

    def _conditions(self, raw_l: torch.Tensor, raw_u: torch.Tensor):
        """(r_L, r_U, D's r_L, D's r_U): r = sigmoid(R(x)); D gets r, or R(x) with ``disc_r=raw``."""
        r_l, r_u = torch.sigmoid(raw_l), torch.sigmoid(raw_u)
        if self.p.disc_r == "raw":
            return r_l, r_u, raw_l, raw_u
        return r_l, r_u, r_l, r_u

    def _uniform(self, selector: VAEDiscriminator, ctx: SelectionContext):
        """Algorithm 1, n = 1: r_L, r_U ~ U(0, 1)."""
        r_l = torch.rand(len(ctx.labeled), generator=selector.gen, device=selector.gen.device)
        r_u = torch.rand(len(ctx.candidates), generator=selector.gen, device=selector.gen.device)
        return r_l, r_u, r_l, r_u

    def check_dataset(self, dataset: Any, batch_size: int, device: torch.device) -> None:
        check_adversarial_fits(dataset, self.p, self.conditioned, self.p.vae_batch_size or batch_size, device)

    def make_selector(self, ctx: SelectionContext) -> VAEDiscriminator:
        """The VAE and D of this cycle, with their optimizers."""
        # Interleaved with the task learner's CUDA graphs, a captured VAE + D step crashed the
        # process on an H200 (segfault in replay, PyTorch 2.11; the official schedule, which
        # captures it after T is done, ran): in the paper schedule the VAE + D steps run eagerly.
        paper = self.p.schedule == "paper"
        return VAEDiscriminator(ctx, self.p, self.conditioned, graphs=False if paper else None)

    def training_hook(self, ctx: SelectionContext):
        if self.p.schedule == "official":  # the VAE and D train after T and R, in score()
            return None
        selector = self.selector(ctx)

        def hook(epoch: int, model, ranker) -> None:  # Algorithm 1: one VAE + D pass per T epoch
            cond = (None,) * 4
            if self.conditioned:
                cond = self._uniform(selector, ctx) if epoch == 0 else self._conditions(*self._ranks(ctx))
            selector.train_epoch(*cond)
            selector.fitted = True  # trained through this epoch

        return hook

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        selector = self.selector(ctx)
        cond = self._conditions(*self._ranks(ctx)) if self.conditioned else (None,) * 4
        if self.p.schedule == "official" and not selector.fitted:  # T and R frozen: r computed once
            selector.fit(cond, self.p.vae_epochs, ctx.progress)
        p = selector.discriminate(cond[3]).cpu().numpy()
        return p, -p  # eq. (7): the smallest D(r, z) first

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:
        sel = super().choose(ctx, budget)
        vae_loss, disc_loss = self.selector(ctx).losses()
        sel.info.update(vae_loss=vae_loss, disc_loss=disc_loss)
        return sel
