"""Which task learner a run builds: a registered name, your factory (``my_pkg.nets:make_net`` or a
Python callable), or a network instance, with its ``feature_layers`` tapped for the Ranker.

A factory is called for a fresh network every cycle (with the number of classes when it takes an
argument); an instance is deep-copied every cycle, so each cycle starts from the weights it was
given (pretrained ones, say). ``TappedModel`` taps the named layers for the Ranker and the embedding
layer for Core-set.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from tavaal.errors import TavaalError, first_line
from tavaal.models import SEGMENTATION_MODELS, build_task_learner
from tavaal.models.base import TaskLearner
from tavaal.models.taps import TappedModel, unknown_layers

ModelSource = str | nn.Module | Callable[..., nn.Module]


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
        raise TavaalError(f"model (--model) {path!r}: {module_name} has no callable {attr!r}")
    return factory


def _call_factory(factory: Callable[..., nn.Module], num_classes: int, name: str) -> nn.Module:
    takes_classes = any(
        p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(factory).parameters.values()
    )
    net = factory(num_classes) if takes_classes else factory()
    if not isinstance(net, nn.Module):
        raise TavaalError(f"model {name!r} returned a {type(net).__name__}, not a torch.nn.Module")
    return net


@dataclass
class ModelSpec:
    """A task learner to build each cycle: ``source`` is a registered name, ``module.path:factory``,
    a callable returning an ``nn.Module``, or an ``nn.Module``; the last three need ``feature_layers``
    (dotted names from ``named_modules()``) unless they already are a tavaal ``TaskLearner``."""

    source: ModelSource
    feature_layers: Sequence[str] = field(default_factory=list)
    embedding_layer: str = ""

    @classmethod
    def from_config(cls, model: str, feature_layers: str, embedding_layer: str) -> ModelSpec:
        """The config's ``training`` fields (comma-separated layers)."""
        return cls(model, [s.strip() for s in feature_layers.split(",") if s.strip()], embedding_layer)

    @property
    def registered(self) -> bool:
        return isinstance(self.source, str) and not is_factory_path(self.source)

    @property
    def label(self) -> str:
        """What the config records as ``model``: the name or path, or the Python object's name."""
        if isinstance(self.source, str):
            return self.source
        obj = self.source if not isinstance(self.source, nn.Module) else type(self.source)
        return f"python:{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"

    def check_input(self, is_image: bool, dataset: str, segmentation: bool = False) -> None:
        """A built-in model must suit the data kind (vectors, images, or images with masks)."""
        if not self.registered:
            return
        if segmentation != (self.source in SEGMENTATION_MODELS):
            want = "drn or deeplabv3-mobilenet" if segmentation else "a classification model"
            task = "segmentation masks" if segmentation else "class labels"
            raise TavaalError(
                f"model (--model) {self.source} does not fit {dataset}, which holds {task}; use {want}"
            )
        if self.source == "mlp" and is_image:
            raise TavaalError(
                f"--model mlp takes vectors but {dataset} holds images; use smallcnn or resnet18"
            )
        if self.source != "mlp" and not is_image:
            raise TavaalError(
                f"--model {self.source} takes images but {dataset} holds vectors; use --model mlp"
            )

    def check_layers(self, num_classes: int) -> None:
        """A user network's feature and embedding layers must exist: checked when the learner is
        built, not at its first query (the factory is called once, with ``num_classes``)."""
        if self.registered or not self.feature_layers:
            return
        if isinstance(self.source, nn.Module):
            net = self.source
        else:
            factory = import_factory(self.source) if isinstance(self.source, str) else self.source
            net = _call_factory(factory, num_classes, self.label)
        names = [n for n, _ in net.named_modules() if n]
        missing = [n for n in {*self.feature_layers, self.embedding_layer} if n and n not in names]
        if missing:
            raise TavaalError(unknown_layers(missing, names))

    def build(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        dropout: float,
        example: torch.Tensor,
        check_classes: bool = True,
    ) -> TaskLearner:
        """A fresh task learner. ``dropout`` goes before a built-in model's head (MC dropout);
        ``example`` (a CPU batch of network input) probes a user network's feature sizes and output."""
        if self.registered:
            return build_task_learner(self.source, input_shape, num_classes, dropout)
        name = self.label
        if isinstance(self.source, nn.Module):
            net = copy.deepcopy(self.source).cpu()
        else:
            factory = import_factory(self.source) if isinstance(self.source, str) else self.source
            net = _call_factory(factory, num_classes, name)
        if isinstance(net, TaskLearner) and not self.feature_layers:
            return net
        if not self.feature_layers:
            raise TavaalError(
                f"model {name!r} needs feature layers (--feature-layers NAME[,NAME...], or "
                "feature_layers=[...]): the layers whose outputs feed the Ranker"
            )
        try:
            model = TappedModel(net, list(self.feature_layers), example, self.embedding_layer or None)
            with torch.no_grad():
                was = net.training
                net.eval()
                logits = model(example)[0]
                net.train(was)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            raise TavaalError(
                f"model {name!r} fails on this pool's samples (shape {tuple(example.shape[1:])}): "
                f"{type(e).__name__}: {first_line(e, 200)}; its first layer must take inputs of that shape"
            ) from None
        if logits.dim() != 2 or (check_classes and logits.shape[1] != num_classes):
            raise TavaalError(
                f"model {name!r} outputs shape {tuple(logits.shape)} for a batch of {example.shape[0]}, "
                f"but the data has {num_classes} classes: its last layer must give "
                f"(batch, {num_classes}) logits"
            )
        return model
