"""Your own network as the task learner: ``--model my_pkg.nets:make_net --feature-layers a,b``.

The factory is imported by its dotted path and called for a fresh network every cycle (with the
number of classes when it takes an argument); ``TappedModel`` taps the named layers for the
Ranker and the embedding layer for Core-set.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

import torch
from torch import nn

from tavaal.errors import TavaalError
from tavaal.models.taps import TappedModel


def is_factory_path(name: str) -> bool:
    """``module.path:callable`` names a user factory; registered names have no colon."""
    return ":" in name


def import_factory(path: str) -> Callable[..., nn.Module]:
    """The callable at ``module.path:name``, or an error that says what did not import."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise TavaalError(
            f"--model {path!r}: a factory is given as module.path:function, e.g. my_pkg.nets:make_net"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or whatever the module raises while importing
        raise TavaalError(
            f"--model {path!r}: module {module_name!r} does not import ({type(e).__name__}: {e}); "
            "check the name and that its folder is on PYTHONPATH"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise TavaalError(f"--model {path!r}: {module_name} has no callable {attr!r}")
    return factory


def build_user_model(
    path: str,
    feature_layers: list[str],
    embedding_layer: str,
    example: torch.Tensor,
    num_classes: int,
) -> TappedModel:
    """A fresh network from the factory at ``path``, wrapped to meet the task-learner contract;
    its output must have one logit per class."""
    if not feature_layers:
        raise TavaalError(
            f"--model {path!r} needs --feature-layers NAME[,NAME...]: the layers whose outputs feed "
            "the Ranker"
        )
    factory = import_factory(path)
    takes_classes = any(
        p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(factory).parameters.values()
    )
    net = factory(num_classes) if takes_classes else factory()
    if not isinstance(net, nn.Module):
        raise TavaalError(f"--model {path!r} returned a {type(net).__name__}, not a torch.nn.Module")
    model = TappedModel(net, feature_layers, example, embedding_layer or None)
    with torch.no_grad():
        was = net.training
        net.eval()
        logits = model(example)[0]
        net.train(was)
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise TavaalError(
            f"--model {path!r} outputs shape {tuple(logits.shape)} for a batch of {example.shape[0]}, "
            f"but the dataset has {num_classes} classes: its last layer must give "
            f"(batch, {num_classes}) logits"
        )
    return model
