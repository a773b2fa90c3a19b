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
    """Resolve ``cfg.device`` and set cuDNN's autotuner as the config asks.

    With ``cudnn_benchmark`` cuDNN times its convolution algorithms once per input shape and keeps
    the fastest; a cycle has at most two training shapes (full batches and the last one), so the
    timing is paid a few times per cycle. It is off by default in PyTorch.
    """
    dev = resolve_device(cfg.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    return dev
