"""How the computations run, kept out of the algorithm: bf16 autocast, memory format, optimizer
kernels, torch.compile and CUDA-graph capture, in one ``Runtime`` built from the config.

The training loop and the VAE loop call ``runtime.stepper(...)`` with a step function and never
branch on these settings, so they read like Algorithm 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tavaal.config import RunConfig
from tavaal.cuda_graphs import GraphedStep


@dataclass(frozen=True)
class Runtime:
    """The run's device and speed settings (none of them changes what is computed, up to bf16)."""

    device: torch.device
    amp: str = "none"
    channels_last: bool = False
    cuda_graphs: bool = False
    fused: bool = False
    compile: bool = False
    eval_batch_size: int = 1024

    @classmethod
    def from_config(cls, cfg: RunConfig, device: torch.device) -> Runtime:
        """The run's settings (``cfg.runtime``) on ``device`` (already resolved by setup_device)."""
        s = cfg.runtime
        return cls(device, s.amp, s.channels_last, s.cuda_graphs, s.fused, s.compile, s.eval_batch_size)

    def autocast(self):
        """bf16 autocast when asked for, a no-op otherwise."""
        if self.amp == "bf16":
            # CUDA graphs must not replay autocast's cast cache from capture time.
            return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=not self.cuda_graphs)
        return contextlib.nullcontext()

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory format the networks run in."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def optimizer_kwargs(self, adam: bool) -> dict[str, bool]:
        """Fused or foreach kernels on CUDA; Adam inside a CUDA graph keeps its step count on the
        device."""
        if self.device.type != "cuda":
            return {}
        kw = {"fused": True} if self.fused else {"foreach": True}
        if adam and self.cuda_graphs:
            kw["capturable"] = True
        return kw

    def compiled(self, model: nn.Module) -> nn.Module:
        return torch.compile(model) if self.compile else model

    def stepper(self, generator: torch.Generator | None, graphs: bool | None = None) -> Stepper:
        """Runs optimisation steps eagerly, or as captured CUDA graphs (``graphs``, default the
        run's setting)."""
        return Stepper(generator, self.cuda_graphs if graphs is None else graphs)


class Stepper:
    """``stepper(mode, fn, *inputs)`` runs ``fn(generator, *inputs)``: one whole step (gather,
    augmentation, forward, backward, optimizer).

    Eagerly, ``generator`` is the loop's own. Under CUDA graphs the step is captured once per
    ``mode`` and input shape and replayed; it then draws its augmentation from the default CUDA
    generator (``generator=None``), which graphs replay safely. ``mode`` must change whenever a
    Python-side choice inside ``fn`` does (a learning rate, the Ranker frozen).
    """

    def __init__(self, generator: torch.Generator | None, graphs: bool):
        self.generator = generator
        self.graph = GraphedStep() if graphs else None

    @property
    def captures(self) -> int:
        return 0 if self.graph is None else self.graph.captures

    def __call__(self, mode: Hashable, fn: Callable[..., Any], *inputs: Any) -> Any:
        if self.graph is None:
            return fn(self.generator, *inputs)
        return self.graph(mode, lambda *xs: fn(None, *xs), *inputs)
