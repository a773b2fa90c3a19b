"""How the computations run, kept out of the algorithm: bf16 autocast, memory format, optimizer
kernels, torch.compile and CUDA-graph capture: the config's ``runtime`` section, one ``Runtime``.

The training loop and the VAE loop call ``runtime.stepper(...)`` with a step function and never
branch on these settings, so they read like Algorithm 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from tavaal.cuda_graphs import GraphedStep
from tavaal.errors import TavaalError
from tavaal.settings import NONNEGATIVE, POSITIVE, Settings, setting

# The fastest settings measured per device (benchmarks/README.md): ``--fast`` (or
# ``ActiveLearner(fast=True)``) sets those not given.
FAST: dict[str, dict[str, Any]] = {
    "cuda": {"amp": "bf16", "channels_last": True, "cuda_graphs": True, "fused": True},
    "cpu": {"channels_last": True},
}


def fast_settings(device: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fast settings for ``device`` ("cpu", "cuda", "cuda:1"), less those in ``given``."""
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    return {k: v for k, v in FAST[kind].items() if k not in (given or {})}


@dataclass
class Runtime(Settings):
    """Where and how fast a run computes; none of these changes what is computed (up to bf16)."""

    section: ClassVar[str] = "runtime"
    hash_defaults: ClassVar[bool] = True

    device: str = "cpu"
    amp: str = setting("none", choices=("none", "bf16"))
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False  # capture training and VAE steps as CUDA graphs
    fused: bool = False  # fused (single-kernel) SGD and Adam on CUDA instead of foreach
    # cuDNN times its convolution algorithms per input shape and keeps the fastest (CUDA only).
    cudnn_benchmark: bool = True
    eval_batch_size: int = setting(1024, check=POSITIVE, most=2**20)
    threads: int = setting(0, check=NONNEGATIVE, most=1024)  # CPU intra-op threads; 0: chosen for the model

    def validate(self) -> None:
        super().validate()
        if self.cuda_graphs and not str(self.device).startswith("cuda"):
            raise TavaalError("cuda_graphs (--cuda-graphs) needs device cuda (--device cuda)")
        if self.cuda_graphs and self.compile:
            raise TavaalError(
                "cuda_graphs (--cuda-graphs) and compile (--compile) cannot be combined; choose one"
            )

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def autocast(self):
        """bf16 autocast when asked for, a no-op otherwise."""
        if self.amp == "bf16":
            # CUDA graphs must not replay autocast's cast cache from capture time.
            return torch.autocast(
                self.torch_device.type, dtype=torch.bfloat16, cache_enabled=not self.cuda_graphs
            )
        return contextlib.nullcontext()

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory format the networks run in."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def optimizer_kwargs(self, adam: bool) -> dict[str, bool]:
        """Fused or foreach kernels on CUDA; Adam inside a CUDA graph keeps its step count on the
        device."""
        if self.torch_device.type != "cuda":
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
