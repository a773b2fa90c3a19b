"""The run's device, and the backend switches a run sets once before it starts."""

from __future__ import annotations

import torch

from tavaal.config import RunConfig
from tavaal.errors import TavaalError


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a CUDA device must exist."""
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise TavaalError(f"--device must be cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TavaalError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def setup_device(cfg: RunConfig) -> torch.device:
    """Resolve ``cfg.runtime.device`` and set cuDNN's autotuner as the config asks.

    With ``cudnn_benchmark`` cuDNN times its convolution algorithms the first time it meets an input
    shape and keeps the fastest for the rest of the process; a new cycle brings at most a couple of
    new shapes (its last, partial batches), so the timing is paid a few times per cycle. PyTorch
    leaves it off by default.
    """
    dev = resolve_device(cfg.runtime.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.runtime.cudnn_benchmark
    return dev
