"""Turn any ``nn.Module`` into a task learner by naming the layers to tap (forward hooks)."""

from __future__ import annotations

import difflib

import torch
from torch import nn

from tavaal.errors import TavaalError
from tavaal.models.base import TaskLearner, TaskOutput


class TappedModel(TaskLearner):
    """Wrap ``module`` (which maps x to logits) so it meets the task-learner contract.

    ``feature_layers`` are dotted names (as in ``named_modules()``) whose outputs feed the Ranker;
    ``embedding_layer`` is the layer whose (pooled, flattened) output feeds Core-set, by default
    the last feature layer. ``example_input`` (one batch) is run once to learn the feature sizes.
    No head dropout is inserted into a wrapped model: MC dropout uses the model's own Dropout
    layers, and refuses a model that has none.
    """

    def __init__(
        self,
        module: nn.Module,
        feature_layers: list[str],
        example_input: torch.Tensor,
        embedding_layer: str | None = None,
    ):
        super().__init__()
        self.module = module
        self.feature_layers = list(feature_layers)
        self.embedding_layer = embedding_layer or self.feature_layers[-1]
        names = dict(module.named_modules())
        missing = [n for n in {*self.feature_layers, self.embedding_layer} if n not in names]
        if missing:
            raise TavaalError(unknown_layers(missing, [n for n in names if n]))
        self._store: dict[str, torch.Tensor] = {}
        for n in {*self.feature_layers, self.embedding_layer}:
            names[n].register_forward_hook(self._hook(n))
        was_training = module.training
        module.eval()
        with torch.no_grad():
            _, emb, feats = self.forward(example_input)
        module.train(was_training)
        self.feature_dims = [int(f.shape[1]) for f in feats]
        self.embedding_dim = int(emb.shape[1])

    def _hook(self, name: str):
        def hook(_mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            self._store[name] = out

        return hook

    def forward(self, x: torch.Tensor) -> TaskOutput:
        self._store.clear()
        logits = self.module(x)
        feats = [self._store[n] for n in self.feature_layers]
        emb = self._store[self.embedding_layer]
        if emb.dim() > 2:
            emb = torch.flatten(nn.functional.adaptive_avg_pool2d(emb, 1), 1)
        return logits, emb, feats


def unknown_layers(missing: list[str], names: list[str]) -> str:
    """The error for layer names not in the model: the closest names, and the top-level blocks
    (a ResNet has about 60 modules, a torchvision one hundreds: listing them all helps nobody)."""
    hints = []
    for m in sorted(missing):
        close = difflib.get_close_matches(m, names, n=3, cutoff=0.5)
        hints.append(f"{m!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    top = [n for n in names if "." not in n]
    return (
        f"layers {', '.join(hints)} are not in the model; its top-level blocks are: {', '.join(top)} "
        "(nested layers are named with dots, e.g. layer1.0; see model.named_modules())"
    )
