"""The command line's options: every config field as a flag (with its help), the executor's
and Label Studio's, and how they become a ``RunConfig``."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from tavaal.config import FIELDS, RunConfig, load_yaml_overrides, make_config
from tavaal.errors import TavaalError
from tavaal.labeling.labelstudio import (
    LOCAL_FILES,
)
from tavaal.runtime import fast_settings
from tavaal.strategies import STRATEGIES

# Help text for the options that need more than their name (every config field has an option).
METHOD_HELP = f"the selection method (default: tavaal; one of {', '.join(sorted(STRATEGIES))})"


LABELING_PRESET_HELP = (
    "hyper-parameters by name (default: quick on a CPU, cifar10 on a GPU; see `tavaal presets`)"
)


_HELP = {
    "recipe": "paper (default) or authors: set every field in which the authors' code differs from the paper "
    "(docs/fidelity.md); an explicit field still wins",
    "model": "a registered model, or module.path:factory for your own network (with --feature-layers)",
    "vae_augment": "train the VAE and discriminator on augmented images (default: un-augmented, as the "
    "authors' code; r is always computed on un-augmented images)",
    "skip_unreadable": "leave out image files that cannot be decoded (truncated, corrupt), with a warning "
    "that lists them; without it such a file is an error that names it",
    "final_selection": "select after the last cycle as well (--analysis implies it); otherwise the last "
    "cycle trains and evaluates only, so the pool needs initial + budget x (cycles - 1)",
    "lr_milestones": "epochs at which the learning rate is multiplied by --lr-gamma, e.g. 160 or 60,120",
    "download": "download the dataset into --data-dir",
    "imbalance_pattern": "which classes --imbalance-ratio reduces: paper (default: the first five) or "
    "official (the authors' code: the even ones, each to its first samples in file order)",
    "imbalance_ratio": "section 4.3 on any classification set, an image folder too: the reduced classes keep "
    "1/N of their training samples (default 1: as loaded; the test set is never reduced)",
    "precision": "fp32 (default) or bf16: every network's forward and backward under bf16 autocast, "
    "losses and scores in fp32 (on a CPU it pays only with bf16 units: AMX or AVX512-BF16)",
    "channels_last": "channels_last memory format",
    "compile": "torch.compile the task learner",
    "cuda_graphs": "capture the training and VAE steps as CUDA graphs",
    "fused": "fused SGD/Adam kernels on CUDA",
    "analysis": "record candidates' real losses (for the loss-vs-likelihood figure) and the Ranker's and "
    "discriminator's diagnostics (rank correlation with the loss, r's AUC labeled vs unlabeled, saturation)",
    "selection_eval": "also train one common learner (the preset's plain T, no Ranker) on every cycle's "
    "labeled set: selection_accuracy judges a method's picks apart from its training",
    "ranker_for": "own (default): only methods that select with a Ranker train T with L_T + eta L_R; "
    "all: every method does, with its own R (the authors' code)",
    "cudnn_benchmark": "on CUDA, let cuDNN time its convolution algorithms for each shape (default: on)",
}


def _number(kind: type, lo: float, hi: float) -> Any:
    """An argparse type: a finite ``kind`` in [lo, hi], else argparse's one-line usage error."""

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if kind is int else 'number'}"
            ) from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {lo:g}..{hi:g}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _finite(text: str) -> float:
    """A config float from the command line: inf and NaN are refused here (one usage line)."""
    v = float(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return v


_finite.__name__ = "float"  # what argparse names in a type error
_PARSE = {"int": int, "float": _finite, "str": str}


# Config fields of the experiment protocol that mean nothing to a query or a live backend: still
# accepted (a shared --config may hold them), left out of their --help.
NOT_FOR_LABELING = frozenset(
    {"trials", "cycles", "initial", "final_selection", "analysis", "selection_eval", "download", "data_dir"}
)


def add_config_options(
    p: argparse.ArgumentParser, labeling: bool = False, helps: dict[str, str] | None = None
) -> None:
    """One option per config field (``tavaal.config.FIELDS``), typed from its declaration, default
    None so that only the given ones override: ``--x``/``--no-x`` for a bool (text never parses as
    one), comma-separated epochs for ``--lr-milestones``. ``labeling`` (query, serve): the protocol's
    fields are hidden from --help. ``helps``: this subcommand's own help of some fields."""
    g = p.add_argument_group("config overrides (any config field; defaults come from the preset)")
    for name, (_, kind) in FIELDS.items():
        if name == "preset":
            continue
        flag, text = "--" + name.replace("_", "-"), (helps or {}).get(name, _HELP.get(name))
        if labeling and name in NOT_FOR_LABELING:
            text = argparse.SUPPRESS
        if kind == "bool":
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind in _PARSE:
            g.add_argument(flag, dest=name, type=_PARSE[kind], default=None, metavar=kind.upper(), help=text)
        else:  # tuple[int, ...]
            g.add_argument(flag, dest=name, default=None, metavar="E1,E2", help=text)
    p.add_argument(
        "--fast",
        action="store_true",
        help="the fastest measured settings (benchmarks/README.md): on CUDA bf16, channels_last, CUDA "
        "graphs and fused optimizers; on a CPU with bf16 units bf16; on a CPU without them nothing "
        "(fp32 is its fastest); a setting given explicitly is kept",
    )
    p.add_argument("--config", default=None, help="YAML file of config fields")
    p.add_argument("--quiet", action="store_true", help="no progress bars (for logs)")
    if labeling:
        return
    p.add_argument("--keep-models", action="store_true", help="save each cycle's weights under DIR/jobs/")
    p.add_argument(
        "--mlflow", action="store_true", help="log to a local MLflow store (pip install 'tavaal[mlflow]')"
    )


def resolve_config(args: argparse.Namespace, preset: str) -> RunConfig:
    """Preset, then the YAML file, then command-line values; a field set differently in both is an error."""
    cli: dict[str, Any] = {}
    for name in FIELDS:
        v = getattr(args, name, None)
        if v is not None and name != "preset":
            cli[name] = v
    if isinstance(cli.get("lr_milestones"), str):
        try:
            cli["lr_milestones"] = tuple(int(x) for x in cli["lr_milestones"].split(",") if x.strip())
        except ValueError:
            raise TavaalError("--lr-milestones takes comma-separated epochs, e.g. 160 or 60,120") from None
    yml = load_yaml_overrides(args.config) if args.config else {}
    if "preset" in yml:
        yml_preset = yml.pop("preset")
        if args.preset is not None and args.preset != yml_preset:
            raise TavaalError(
                f"conflicting presets: --preset {args.preset} but {args.config} says {yml_preset}"
            )
        preset = yml_preset
    for k in set(yml) & set(cli):
        a, b = yml[k], cli[k]
        if (list(a) if isinstance(a, (list, tuple)) else a) != (list(b) if isinstance(b, tuple) else b):
            raise TavaalError(
                f"conflicting values for {k}: {args.config} says {a!r}, the command line says {b!r}; "
                "give it in one place"
            )
    merged = {**yml, **cli}
    if getattr(args, "fast", False):
        merged.update(fast_settings(merged.get("device", "cpu"), merged))
    return make_config(preset, merged)


def bars(args: argparse.Namespace) -> bool:
    """Progress bars: on a terminal unless --quiet; never in a log file (their escape codes)."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def add_labelstudio_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-prefix",
        default=LOCAL_FILES,
        help="what data.image is, before the pool-relative path: a URL prefix, or Label Studio's "
        "local-files path (default, with LOCAL_FILES_DOCUMENT_ROOT set to the pool folder)",
    )
    p.add_argument("--from-name", default="choice", help="the Choices tag's name in the labeling config")
    p.add_argument("--to-name", default="image", help="the Image tag's name (and data key) in the config")
