"""A spy on every layer call: which network it belongs to and whether bf16 autocast was on."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class AutocastSpy:
    """Inside ``with AutocastSpy() as spy``, every Conv2d, ConvTranspose2d and Linear call that
    computes (not the meta-device pass that sizes a network) is recorded with the autocast state;
    ``spy.by_role(networks)`` sorts them by the network they belong to (``model``, ``ranker``,
    ``vae``, ``disc``; ``other`` for any network built and dropped inside, such as
    selection-eval's common learner)."""

    def __init__(self, device_type: str = "cpu") -> None:
        self.device_type = device_type
        self.calls: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> AutocastSpy:
        self._handle = nn.modules.module.register_module_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _hook(self, module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(module, LAYERS) and not getattr(output, "is_meta", False):  # meta: sizing only
            self.calls.append((module, torch.is_autocast_enabled(self.device_type)))

    def by_role(self, networks: dict) -> dict[str, list[bool]]:
        """{role: [autocast on, per call]}."""
        owner: dict[int, str] = {}
        for role, net in networks.items():
            if role == "selector":
                for sub in ("vae", "disc"):
                    owner.update({id(m): sub for m in getattr(net, sub).modules()})
            else:
                owner.update({id(m): role for m in net.modules()})
        out: dict[str, list[bool]] = defaultdict(list)
        for module, on in self.calls:
            out[owner.get(id(module), "other")].append(on)
        return dict(out)
