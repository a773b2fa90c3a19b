"""How the computations run, kept out of the algorithm: bf16 autocast, memory format, optimizer
kernels, torch.compile and CUDA-graph capture: the config's ``runtime`` section, one ``Runtime``.

The training loop and the VAE loop call ``runtime.stepper(...)`` with a step function and never
branch on these settings, so they read like Algorithm 1.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from tavaal.cuda_graphs import GraphedStep
from tavaal.errors import TavaalError
from tavaal.settings import NONNEGATIVE, POSITIVE, Settings, setting

log = logging.getLogger(__name__)
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """A warning a process prints once, however many configs are built."""
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


# "auto": bf16 on a CPU with bf16 units, fp32 elsewhere; resolved when the config is built, so records
# and the experiment hash hold what ran.
PRECISIONS = ("fp32", "bf16", "auto")

# The fastest settings measured per device (benchmarks/README.md, bench_precision.py): ``--fast``
# (or ``ActiveLearner(fast=True)``) sets those not given. On a CPU, bf16 only where the CPU has
# bf16 units (without them bf16 is emulated), and without channels_last: on 2 cores it added 4% to
# ResNet-18's bf16 training but cut the small CNN's to a third (x0.45 of fp32 against bf16's x1.42).
FAST: dict[str, dict[str, Any]] = {
    "cuda": {"precision": "bf16", "channels_last": True, "cuda_graphs": True, "fused": True},
    "cpu": {"precision": "bf16"},
}

_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matrix units (AMX or AVX512-BF16), as PyTorch's CPU kernels detect
    them; /proc/cpuinfo where PyTorch does not say."""
    probes = [getattr(torch.cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(p) for p in probes):
        try:
            return any(bool(p()) for p in probes)  # type: ignore[misc]
        except RuntimeError:
            pass
    return any(flag in _cpuinfo_flags() for flag in _CPU_BF16_FLAGS)


@functools.cache
def _cpuinfo_flags() -> frozenset[str]:
    """The words of /proc/cpuinfo, read once per process (every bf16 config build asks)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(f.read(1 << 20).split())
    except OSError:
        return frozenset()


NO_BF16_UNITS = "this CPU has no bf16 matrix units (AMX or AVX512-BF16)"


def fast_settings(device: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fast settings for ``device`` ("cpu", "cuda", "cuda:1"), less those in ``given``. A CPU
    without bf16 units gets none (one line says so): fp32 is its fastest."""
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    if kind == "cpu" and not cpu_has_bf16():
        log.warning("--fast: %s; keeping fp32, its fastest", NO_BF16_UNITS)
        return {}
    return {k: v for k, v in FAST[kind].items() if k not in (given or {})}


@dataclass
class Runtime(Settings):
    """Where and how fast a run computes; none of these changes what is computed (up to bf16)."""

    section: ClassVar[str] = "runtime"
    hash_defaults: ClassVar[bool] = True

    device: str = "cpu"
    # The matrix precision of every network's forward and backward pass (bf16 autocast); the
    # losses, scores and optimizer state stay fp32. Its former name, ``amp`` (none | bf16), is read.
    precision: str = setting("fp32", choices=PRECISIONS)
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False  # capture training and VAE steps as CUDA graphs
    fused: bool = False  # fused (single-kernel) SGD and Adam on CUDA instead of foreach
    # cuDNN times its convolution algorithms per input shape and keeps the fastest (CUDA only).
    cudnn_benchmark: bool = True
    eval_batch_size: int = setting(1024, check=POSITIVE, most=2**20)
    threads: int = setting(0, check=NONNEGATIVE, most=1024)  # CPU intra-op threads; 0: chosen for the model

    def __post_init__(self) -> None:
        if self.precision == "auto":
            self.precision = "bf16" if str(self.device).startswith("cpu") and cpu_has_bf16() else "fp32"
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        if self.cuda_graphs and not str(self.device).startswith("cuda"):
            raise TavaalError("cuda_graphs (--cuda-graphs) needs device cuda (--device cuda)")
        if self.precision == "bf16" and str(self.device).startswith("cpu") and not cpu_has_bf16():
            warn_once(f"precision bf16: {NO_BF16_UNITS}; it runs emulated, slower than fp32")
        if self.cuda_graphs and self.compile:
            raise TavaalError(
                "cuda_graphs (--cuda-graphs) and compile (--compile) cannot be combined; choose one"
            )

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def autocast(self):
        """bf16 autocast when the precision is bf16, a no-op otherwise."""
        if self.precision == "bf16":
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
