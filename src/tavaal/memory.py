"""Will it fit? Networks and tensors are measured before they are allocated, so that a setting a
machine cannot hold (a latent size of a million, images decoded at 20,000 pixels) is one line that
says so, not an out-of-memory kill minutes later.

A network is built on PyTorch's ``meta`` device (shapes only, no memory) and run forward once on a
meta batch: its parameters (with their gradients and two Adam moments) and every module's output
(what backward keeps) are counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from tavaal.errors import TavaalError

GiB = 1 << 30


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory free for this process on ``device`` (None when the platform does not say)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(what: str, nbytes: float, device: torch.device | str, fix: str) -> None:
    """Refuse ``what`` when it needs more than the memory free on ``device``."""
    free = available_bytes(device)
    if free is not None and nbytes > free:
        raise TavaalError(
            f"{what} would need about {nbytes / GiB:.1f} GiB but {torch.device(device).type} has "
            f"{free / GiB:.1f} GiB free; {fix}"
        )


def training_bytes(
    build: Callable[[], nn.Module], example: Sequence[tuple[int, ...]] | None, adam: bool = True
) -> int:
    """Bytes to train the network ``build`` makes on inputs of the shapes ``example`` (one per
    forward argument): parameters, gradients and optimizer moments, plus every module's output in
    one forward pass (``example`` None: the parameters alone). Nothing is allocated: all of it
    happens on the meta device."""
    with torch.device("meta"):
        net = build()
    per_param = 4 if adam else 3  # weights, gradients, and Adam's two moments (SGD: one)
    total = sum(p.numel() * p.element_size() for p in net.parameters()) * per_param
    if example is None:
        return total
    outputs = [0]

    def count(_m: nn.Module, _inp: object, out: object) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                outputs[0] += t.numel() * t.element_size()

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    try:
        with torch.no_grad():
            net(*(torch.empty(s, device="meta") for s in example))
    except Exception:  # noqa: BLE001 (an estimate: a layer without a meta kernel counts its parameters only)
        pass
    finally:
        for h in hooks:
            h.remove()
    return total + outputs[0]
