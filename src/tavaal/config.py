"""Run configuration, typed by concern, and how presets, recipes, YAML and the command line
compose it.

A ``RunConfig`` holds one section per concern: the active-learning ``protocol``, the ``data``,
the task learner's ``training`` (T and R, Algorithm 1), the ``runtime`` (device and speed), and
each family of strategies' hyper-parameters (``adversarial`` for VAAL / TA-VAAL, ``mcdropout``,
``coreset``), which the strategies receive as constructor arguments. Field names are unique
across sections, so presets, YAML files, command-line options and results folders name every
field flat (``--latent-dim``, ``epochs: 50``) as before.

Names follow the paper: ``lr`` is zeta1 (task learner), ``vae_lr`` zeta2, ``disc_lr`` zeta3,
``eta`` scales the ranking loss of equation 2, ``lam`` is lambda and ``beta`` the KL weight of
equation 4, ``latent_dim`` is d.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tavaal.errors import TavaalError, did_you_mean
from tavaal.presets import PRESET_NOTES, PRESETS, RECIPES, preset_names


@dataclass
class Protocol:
    """The active-learning experiment: labels, cycles, the candidate subset and the seeds."""

    initial: int = 50
    budget: int = 50
    cycles: int = 5
    trials: int = 1
    subset_factor: int = 10
    subset_size: int = 0  # 0: subset_factor x budget (the paper); the authors' code draws 10,000
    final_selection: bool = False  # select after the last cycle too (implied by --analysis)
    seed: int = 0
    analysis: bool = False  # record real losses of candidates (uses labels the strategy never sees)
    # Also train one common learner (the preset's plain T, no Ranker) on each cycle's labeled set,
    # the same for every method: ``selection_accuracy`` judges the picks apart from the training.
    selection_eval: bool = False

    @property
    def n_candidates(self) -> int:
        """Size of the random subset the strategy scores (before capping at the pool)."""
        return self.candidates_for(self.budget)

    def candidates_for(self, budget: int) -> int:
        """The subset size for a query of ``budget`` picks (a query may ask for another size)."""
        return self.subset_size or self.subset_factor * budget

    @property
    def selects_last_cycle(self) -> bool:
        """The last cycle's selection only serves analyses, so it runs only when asked."""
        return self.final_selection or self.analysis


@dataclass
class DataSpec:
    """Which dataset, where it lives and how it is prepared."""

    dataset: str = "digits"
    data_dir: str = "data"
    train_dir: str = ""
    test_dir: str = ""
    download: bool = False
    image_size: int = 0  # 0: the dataset's own size
    imbalance_pattern: str = "paper"  # "paper": first five classes reduced; "official": the even ones
    skip_unreadable: bool = False  # leave out image files that cannot be decoded, with a warning
    crop_pad: int = -1  # zero padding of the random crop; -1: the dataset's (2 for 32x32, section 4.2)
    crop_size: int = 0  # segmentation: train on random crop_size x crop_size windows; 0: whole images


@dataclass
class Training:
    """The task learner T and the Ranker R, trained by Algorithm 1."""

    model: str = "smallcnn"  # a registered name, or module.path:factory for your own network
    feature_layers: str = ""  # with a factory: comma-separated layers whose outputs feed the Ranker
    embedding_layer: str = ""  # with a factory: the layer whose pooled output feeds Core-set
    epochs: int = 40
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[int, ...] = (30,)
    lr_gamma: float = 0.1
    eta: float = 1.0
    ranker_stop: str = "freeze"  # "freeze": paper, R frozen after 0.8N; "detach": official code
    ranker_freeze_fraction: float = 0.8
    ranker_detach_fraction: float = 0.6  # authors: inputs detached for epochs > 120 of 200
    margin: float = 1.0  # xi of the original learning-loss margin loss
    # Which methods' T trains L_T + eta L_R (eq. 2): "own" only those that select with a Ranker;
    # "all" every method, each with its own R (the authors' code: main.py / train_test.py test
    # ``method == 'lloss' or 'TA-VAAL'``, always true); an R no method reads is simply unused.
    ranker_for: str = "own"


@dataclass
class RuntimeSettings:
    """Where and how fast it runs; none of these changes what is computed (up to bf16)."""

    device: str = "cpu"
    amp: str = "none"  # "none" | "bf16"
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False  # capture training and VAE steps as CUDA graphs
    fused: bool = False  # fused (single-kernel) SGD and Adam on CUDA instead of foreach
    cudnn_benchmark: bool = True  # let cuDNN time its convolution algorithms per shape (CUDA only)
    eval_batch_size: int = 1024
    threads: int = 0  # CPU intra-op threads; 0: chosen for the model (device.cpu_threads)


# The fastest settings measured per device (benchmarks/README.md): ``--fast`` sets those not given.
FAST: dict[str, dict[str, Any]] = {
    "cuda": {"amp": "bf16", "channels_last": True, "cuda_graphs": True, "fused": True},
    "cpu": {"channels_last": True},
}


@dataclass
class AdversarialParams:
    """VAAL's and TA-VAAL's VAE and discriminator (equations 3-7)."""

    schedule: str = "paper"  # "paper": Algorithm 1; "official": VAE + D after T and R, frozen
    latent_dim: int = 32
    vae_lr: float = 5e-4
    disc_lr: float = 5e-4
    lam: float = 1.0
    beta: float = 1.0
    vae_epochs: int = 100  # EV for the official schedule
    vae_batch_size: int = 0  # 0: same as the task learner's batch_size
    vae_kind: str = "auto"  # "conv" (WAE-style), "mlp", or "auto" by input shape
    disc_layers: int = 5
    disc_r: str = "sigmoid"  # "sigmoid": paper; "raw": official code gives D the raw R(x)
    # Where the paper is silent, the authors' code decides these defaults.
    kl_reduction: str = "mean"  # equation 4's KL averaged over batch and latent dims; "sum": over dims
    vae_augment: bool = False  # VAE and D see un-augmented images, as r does
    vae_order: str = "fixed"  # batches in one fixed random order per cycle; "shuffle": new order per pass
    vae_init: str = "kaiming"  # VAE and D weights: Kaiming normal, zero biases; "default": PyTorch's
    vae_image_size: int = 64  # segmentation: the VAE and D see images downscaled to this square size


@dataclass
class MCDropoutParams:
    """Monte-Carlo dropout."""

    mc_samples: int = 25
    mc_score: str = "bald"
    dropout: float = 0.3  # head dropout of the built-in task learners for mcdropout


@dataclass
class CoreSetParams:
    coreset_chunk: int = 4096


@dataclass
class TypiClustParams:
    """TypiClust (Hacohen et al. 2022): typicality over the k nearest neighbours, at most this many
    clusters, and which embedding it clusters."""

    typiclust_k: int = 20
    typiclust_max_clusters: int = 500
    typiclust_embedding: str = "task"  # "task": the task learner's; "vae": VAAL's VAE latent;
    # "user": ActiveLearner(embeddings=...)


SECTIONS: dict[str, type] = {
    "protocol": Protocol,
    "data": DataSpec,
    "training": Training,
    "runtime": RuntimeSettings,
    "adversarial": AdversarialParams,
    "mcdropout": MCDropoutParams,
    "coreset": CoreSetParams,
    "typiclust": TypiClustParams,
}
# Every field by its flat name: (section, type name). Top-level fields have no section.
FIELDS: dict[str, tuple[str | None, str]] = {"preset": (None, "str"), "recipe": (None, "str")}
for _section, _cls in SECTIONS.items():
    for _f in fields(_cls):
        assert _f.name not in FIELDS, f"config field {_f.name} is defined twice"
        FIELDS[_f.name] = (_section, str(_f.type))

# Fields added after results were first written: they enter the hash only when set away from
# their default, so folders written before them still resume.
LATER_FIELDS: dict[str, Any] = {
    "crop_size": 0,
    "vae_image_size": 64,
    "ranker_for": "own",
    "typiclust_k": 20,
    "typiclust_max_clusters": 500,
    "typiclust_embedding": "task",
}

# Fields that measure or locate rather than decide: left out of the experiment's identity, so a
# results folder resumes on another device, with other paths, or with more analysis recorded.
NOT_IN_HASH = frozenset(
    {
        "trials",
        "device",
        "data_dir",
        "train_dir",
        "test_dir",
        "download",
        "eval_batch_size",
        "analysis",
        "cudnn_benchmark",
        "final_selection",
        "skip_unreadable",
        "selection_eval",
        "threads",
    }
)
CHOICES: dict[str, tuple[str, ...]] = {
    "recipe": tuple(RECIPES),
    "schedule": ("paper", "official"),
    "ranker_stop": ("freeze", "detach"),
    "ranker_for": ("own", "all"),
    "typiclust_embedding": ("task", "vae", "user"),
    "disc_r": ("sigmoid", "raw"),
    "mc_score": ("bald", "entropy", "varratio"),
    "optimizer": ("sgd", "adam"),
    "amp": ("none", "bf16"),
    "vae_kind": ("auto", "conv", "mlp"),
    "imbalance_pattern": ("paper", "official"),
    "kl_reduction": ("mean", "sum"),
    "vae_order": ("fixed", "shuffle"),
    "vae_init": ("kaiming", "default"),
}
# Every numeric field's valid range: (test, what the error says it must be). Checked once, in
# RunConfig.validate, whatever the values came from (command line, YAML, preset, Python, a saved
# learner). 0 or -1 are accepted only where they mean something documented.
_POS = (lambda v: v > 0, "positive")
_NONNEG = (lambda v: v >= 0, "0 or more")
_FRACTION = (lambda v: 0 <= v <= 1, "a fraction in [0, 1]")
RANGES: dict[str, tuple[Any, str]] = {
    **dict.fromkeys(
        ("initial", "budget", "cycles", "trials", "subset_factor", "epochs", "batch_size", "lr", "vae_lr",
         "disc_lr", "latent_dim", "mc_samples", "vae_epochs", "coreset_chunk", "eval_batch_size",
         "disc_layers", "typiclust_k", "typiclust_max_clusters"),
        _POS,
    ),
    **dict.fromkeys(("seed", "weight_decay", "eta", "lam", "beta", "margin", "threads"), _NONNEG),
    **dict.fromkeys(("ranker_freeze_fraction", "ranker_detach_fraction"), _FRACTION),
    "subset_size": (lambda v: v >= 0, "0 (subset-factor x budget) or positive"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "lr_gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "lr_milestones": (lambda v: all(m > 0 for m in v), "a list of positive epochs"),
    "image_size": (lambda v: v == 0 or v >= 8, "0 (the dataset's own size) or at least 8 pixels"),
    "crop_size": (lambda v: v == 0 or v >= 8, "0 (whole images) or at least 8 pixels"),
    "crop_pad": (lambda v: v >= -1, "-1 (the dataset's) or 0 or more"),
    "vae_batch_size": (lambda v: v == 0 or v >= 2, "0 (the task batch size) or at least 2"),
    "vae_image_size": (lambda v: v >= 16, "at least 16 pixels (the conv VAE halves it four times)"),
}  # fmt: skip


@dataclass
class RunConfig:
    """Everything that decides what a run computes, one section per concern."""

    preset: str = "digits"
    recipe: str = "paper"  # "paper" or "authors": see RECIPES and docs/fidelity.md
    protocol: Protocol = field(default_factory=Protocol)
    data: DataSpec = field(default_factory=DataSpec)
    training: Training = field(default_factory=Training)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    adversarial: AdversarialParams = field(default_factory=AdversarialParams)
    mcdropout: MCDropoutParams = field(default_factory=MCDropoutParams)
    coreset: CoreSetParams = field(default_factory=CoreSetParams)
    typiclust: TypiClustParams = field(default_factory=TypiClustParams)

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> RunConfig:
        """Build from flat field names (presets, YAML, the command line, a saved config.yaml)."""
        top = {k: v for k, v in values.items() if FIELDS.get(k, ("?",))[0] is None}
        parts = {name: {} for name in SECTIONS}
        for k, v in values.items():
            section = FIELDS.get(k, ("?",))[0]
            if section in parts:
                parts[section][k] = tuple(v) if k == "lr_milestones" else v
        return cls(**top, **{name: SECTIONS[name](**kw) for name, kw in parts.items()})

    def get(self, name: str) -> Any:
        """A field by its flat name."""
        section = FIELDS[name][0]
        return getattr(self if section is None else getattr(self, section), name)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields (flat names) changed."""
        return RunConfig.from_flat({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Flat field: value (what config.yaml records and the experiment hash reads)."""
        d: dict[str, Any] = {"preset": self.preset, "recipe": self.recipe}
        for name in SECTIONS:
            d.update(dataclasses.asdict(getattr(self, name)))
        d["lr_milestones"] = list(self.training.lr_milestones)
        return d

    def validate(self) -> None:
        """Reject values that cannot work, naming the field, the value and the valid range."""
        for name, (ok, valid) in RANGES.items():
            value = self.get(name)
            if not ok(value):
                raise TavaalError(f"{name} (--{name.replace('_', '-')}) must be {valid}, got {value!r}")
        for name, valid in CHOICES.items():
            value = self.get(name)
            if value not in valid:
                flag = name.replace("_", "-")
                raise TavaalError(f"{name} (--{flag}) must be one of {', '.join(valid)}, got {value!r}")
        rt = self.runtime
        if rt.cuda_graphs and not rt.device.startswith("cuda"):
            raise TavaalError("--cuda-graphs needs --device cuda")
        if rt.cuda_graphs and rt.compile:
            raise TavaalError("--cuda-graphs and --compile cannot be combined; choose one")

    def experiment_hash(self) -> str:
        """Hash of the fields that change results (all but NOT_IN_HASH), so a results folder
        resumes with another device, other paths or more analysis."""
        d = {
            k: v
            for k, v in self.to_dict().items()
            if k not in NOT_IN_HASH and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def make_config(preset: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Resolve a preset, then its recipe, then overrides (from YAML or the command line): an
    explicit field beats the recipe, which beats the preset."""
    if preset not in PRESETS:
        raise did_you_mean("preset", preset, preset_names())
    overrides = dict(overrides or {})
    recipe = overrides.get("recipe", "paper")
    if recipe not in RECIPES:
        raise did_you_mean("recipe", str(recipe), list(RECIPES))
    values = {**PRESETS[preset], **RECIPES[recipe]}
    values["preset"] = preset
    for key, val in overrides.items():
        if key not in FIELDS:
            raise TavaalError(f"unknown config field {key!r}; valid fields are: {', '.join(sorted(FIELDS))}")
        values[key] = check_type(key, FIELDS[key][1], val)
    cfg = RunConfig.from_flat(values)
    cfg.validate()
    return cfg


def check_type(name: str, type_name: str, value: Any) -> Any:
    """``value`` as field ``name`` of type ``type_name`` wants it, or a clear error naming both
    (a YAML ``epochs: ten`` or ``lr_milestones: [abc]`` would otherwise fail deep in the code)."""

    def wrong(expected: str) -> TavaalError:
        got = f"{value!r} ({type(value).__name__})"
        return TavaalError(f"config field {name!r} must be {expected}, got {got}")

    if type_name == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if type_name == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("a whole number")
        return value
    if type_name == "float":
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as text
            try:
                return float(value)
            except ValueError:
                raise wrong("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if type_name == "str":
        if not isinstance(value, str):
            raise wrong("text")
        return value
    if type_name.startswith("tuple[int"):
        items = list(value) if isinstance(value, (list, tuple)) else None
        if items is None or any(isinstance(m, bool) or not isinstance(m, int) for m in items):
            raise wrong("a list of whole numbers, e.g. [160] or [60, 120]")
        return tuple(items)
    return value


def recipe_overrides(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """The recipe's fields that an explicit value overrode: {field: {"recipe": ..., "used": ...}}."""
    d = cfg.to_dict()
    return {k: {"recipe": v, "used": d[k]} for k, v in RECIPES[cfg.recipe].items() if d[k] != v}


def load_yaml_overrides(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of config fields; a clear error if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise TavaalError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise TavaalError(
            f"config file {p} is not text (UTF-8 YAML); give a YAML file of field: value"
        ) from None
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0]
        raise TavaalError(f"config file {p} is not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise TavaalError(f"config file {p} must hold a mapping of field: value")
    return data


__all__ = ["FIELDS", "PRESETS", "PRESET_NOTES", "RECIPES", "RunConfig", "make_config", "preset_names"]


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """A config from a saved flat mapping (config.yaml's ``config``); unknown keys are ignored."""
    return RunConfig.from_flat({k: v for k, v in d.items() if k in FIELDS})
