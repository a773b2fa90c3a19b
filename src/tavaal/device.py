"""The run's device, and the backend switches a run sets once before it starts."""

from __future__ import annotations

import os

import torch

from tavaal.config import RunConfig
from tavaal.errors import TavaalError

# Models too small for intra-op threads to pay: on 2 cores a second thread bought 4-13% on a quiet
# machine and cost 1.5-2x beside one busy process; ResNet-18 gained 24% quiet
# and lost 12% busy, so the others get every core (benchmarks/README.md, "CPU threads").
SMALL_MODELS = frozenset({"mlp", "smallcnn"})
_resolved: dict[str, torch.device] = {}  # device names resolved in this process


def cpu_threads(cfg: RunConfig) -> int:
    """The intra-op threads a CPU run uses: ``threads`` if set; else what OMP_NUM_THREADS says if
    set; else 1 for the small models and every core for the others."""
    if cfg.runtime.threads > 0:
        return cfg.runtime.threads
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    if cfg.training.model in SMALL_MODELS:
        return 1
    return max(1, os.cpu_count() or 1)


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a CUDA device must exist."""
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise TavaalError(f"device (--device) must be cpu, cuda or cuda:N, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TavaalError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def setup_device(cfg: RunConfig) -> torch.device:
    """Resolve ``cfg.runtime.device``, set cuDNN's autotuner as the config asks (CUDA) or the
    intra-op threads (CPU, ``cpu_threads``).

    With ``cudnn_benchmark`` cuDNN times its convolution algorithms the first time it meets an input
    shape and keeps the fastest for the rest of the process; a new cycle brings at most a couple of
    new shapes (its last, partial batches), so the timing is paid a few times per cycle. PyTorch
    leaves it off by default.
    """
    name = cfg.runtime.device
    if name not in _resolved:  # a sweep, its workers and their learners resolve it once
        _resolved[name] = resolve_device(name)
    dev = _resolved[name]
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.runtime.cudnn_benchmark
    else:
        threads = cpu_threads(cfg)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return dev


def setup_worker(values: dict, gpu_share: float = 1.0) -> tuple[RunConfig, torch.device]:
    """A sweep worker's config (flat ``values``, its ``threads`` set by the executor) and device,
    set up as ``setup_device`` does; on CUDA the process keeps to ``gpu_share`` of the GPU's memory
    so that several jobs fit side by side."""
    cfg = RunConfig.from_flat(values)
    if cfg.runtime.threads > 0:  # on CUDA too: the worker's share of the host's cores
        torch.set_num_threads(cfg.runtime.threads)
    device = setup_device(cfg)
    if device.type == "cuda" and 0 < gpu_share < 1:
        torch.cuda.set_per_process_memory_fraction(gpu_share, torch.cuda.current_device())
    return cfg, device
