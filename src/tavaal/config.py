"""Run configuration: the settings of every component, and how presets, recipes, YAML and the
command line compose them.

A ``RunConfig`` holds one section per concern, each a ``Settings`` dataclass owned by the code that
uses it: the active-learning ``protocol`` and the ``data`` (``tavaal.data``), the task learner's ``training``
(``tavaal.train``), the ``runtime`` (``tavaal.runtime``), and each strategy's own sections, read
from the strategy registry (``adversarial`` for VAAL / TA-VAAL, ``mcdropout``, ``coreset``,
``typiclust``). Field names are unique across sections, so presets, YAML files, command-line
options and results folders name every field flat (``--latent-dim``, ``epochs: 50``).

Names follow the paper: ``lr`` is zeta1 (task learner), ``vae_lr`` zeta2, ``disc_lr`` zeta3,
``eta`` scales the ranking loss of equation 2, ``lam`` is lambda and ``beta`` the KL weight of
equation 4, ``latent_dim`` is d.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from tavaal.data import DataSpec
from tavaal.errors import TavaalError, did_you_mean
from tavaal.paths import read_yaml
from tavaal.presets import PRESET_NOTES, PRESETS, RECIPES, default_preset, preset_names
from tavaal.runtime import FAST, Runtime, fast_settings
from tavaal.settings import NONNEGATIVE, POSITIVE, Settings, setting
from tavaal.strategies import STRATEGIES
from tavaal.train import Training


@dataclass
class Protocol(Settings):
    """The active-learning experiment: labels, cycles, the candidate subset and the seeds."""

    section: ClassVar[str] = "protocol"
    hash_defaults: ClassVar[bool] = True

    initial: int = setting(50, check=POSITIVE, most=10**8)
    budget: int = setting(50, check=POSITIVE, most=10**8)
    cycles: int = setting(5, check=POSITIVE, most=10_000)
    trials: int = setting(1, check=POSITIVE, most=10_000)
    subset_factor: int = setting(10, check=POSITIVE, most=10_000)
    # 0: subset_factor x budget (the paper); the authors' code draws 10,000
    subset_size: int = setting(
        0, check=(lambda v: v >= 0, "0 (subset-factor x budget) or positive"), most=10**9
    )
    final_selection: bool = False  # select after the last cycle too (implied by --analysis)
    seed: int = setting(0, check=NONNEGATIVE, most=2**63 - 1)
    analysis: bool = False  # record real losses of candidates (uses labels the strategy never sees)
    # Also train one common learner (the preset's plain T, no Ranker) on each cycle's labeled set,
    # the same for every method: ``selection_accuracy`` judges the picks apart from the training.
    selection_eval: bool = False

    def candidates_for(self, budget: int) -> int:
        """The subset size for a query of ``budget`` picks (a query may ask for another size)."""
        return self.subset_size or self.subset_factor * budget

    @property
    def selects_last_cycle(self) -> bool:
        """The last cycle's selection only serves analyses, so it runs only when asked."""
        return self.final_selection or self.analysis


CORE: dict[str, type[Settings]] = {
    "protocol": Protocol,
    "data": DataSpec,
    "training": Training,
    "runtime": Runtime,
}
SECTIONS: dict[str, type[Settings]] = {}  # every section by name: CORE's, then the strategies'
# Every field by its flat name: (section, type name). Top-level fields have no section.
FIELDS: dict[str, tuple[str | None, str]] = {}
_known = -1  # the strategy registry's generation that SECTIONS was built from


def refresh_sections() -> None:
    """Rebuild SECTIONS and FIELDS (in place) from the strategy registry when a method
    was registered since: a strategy registered by a user's module brings its settings along."""
    global _known
    if _known == STRATEGIES.generation:
        return
    sections: dict[str, type[Settings]] = dict(CORE)
    for name in STRATEGIES:
        for cls in STRATEGIES.get(name).settings:
            if sections.setdefault(cls.section, cls) is not cls:
                raise TavaalError(f"method {name}: settings section {cls.section!r} is declared twice")
    by_name: dict[str, tuple[str | None, str]] = {"preset": (None, "str"), "recipe": (None, "str")}
    for section, cls in sections.items():
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in by_name:
                raise TavaalError(f"config field {f.name!r} is declared twice (section {section!r})")
            by_name[f.name] = (section, str(f.type))
    SECTIONS.clear(), SECTIONS.update(sections)
    FIELDS.clear(), FIELDS.update(by_name)
    _known = STRATEGIES.generation


refresh_sections()

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


# Former names of fields, {old: (new, {old value: new value})}: read wherever flat fields come in
# (YAML, the command line, a results folder's config.yaml), so files written before keep their meaning.
RENAMED: dict[str, tuple[str, dict[Any, Any]]] = {"amp": ("precision", {"none": "fp32", "bf16": "bf16"})}


def current_names(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with former field names replaced by today's (an unknown old value passes on to
    the field's own check); a field given under both names with different values is an error."""
    out = dict(values)
    for old, (new, mapping) in RENAMED.items():
        if old not in out:
            continue
        value = out.pop(old)
        value = mapping.get(value, value) if isinstance(value, str) else value
        if new in out and out[new] != value:
            raise TavaalError(f"{old} is the former name of {new}; give only {new} (got both)")
        out.setdefault(new, value)
    return out


class RunConfig:
    """Everything that decides what a run computes, one section per concern (``SECTIONS``).

    ``cfg.training.epochs``, ``cfg.adversarial.latent_dim``: a section by name, then its field;
    ``cfg.get("epochs")`` by flat name. Sections are checked when built; ``validate`` checks them
    all again (after an edit in place).
    """

    def __init__(self, preset: str = "digits", recipe: str = "paper", **sections: Settings):
        refresh_sections()
        self.preset, self.recipe = preset, recipe  # recipe: "paper" or "authors" (docs/fidelity.md)
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise TavaalError(
                f"unknown config section {sorted(unknown)[0]!r}; sections: {', '.join(SECTIONS)}"
            )
        self.sections: dict[str, Settings] = {
            name: sections.get(name) or cls() for name, cls in SECTIONS.items()
        }

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"RunConfig has no section or attribute {name!r}")

    def section(self, name: str) -> Any:
        """A section by name (a strategy reads its own this way)."""
        return self.sections[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"RunConfig(preset={self.preset!r}, recipe={self.recipe!r}, {len(self.sections)} sections)"

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> RunConfig:
        """Build from flat field names (presets, YAML, the command line, a saved config.yaml)."""
        refresh_sections()
        values = current_names(values)
        top = {k: v for k, v in values.items() if FIELDS.get(k, ("?",))[0] is None}
        parts: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for k, v in values.items():
            section = FIELDS.get(k, ("?",))[0]
            if section in parts:
                parts[section][k] = v
        return cls(**top, **{name: SECTIONS[name](**kw) for name, kw in parts.items()})

    def get(self, name: str) -> Any:
        """A field by its flat name."""
        section = FIELDS[name][0]
        return getattr(self if section is None else self.sections[section], name)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields (flat names) changed."""
        return RunConfig.from_flat({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Flat field: value (what config.yaml records and the experiment hash reads)."""
        d: dict[str, Any] = {"preset": self.preset, "recipe": self.recipe}
        for section in self.sections.values():
            d.update(section.values())
        d["lr_milestones"] = list(self.training.lr_milestones)
        return d

    def validate(self) -> None:
        """Reject values that cannot work, naming the field, the value and the valid range."""
        if self.recipe not in RECIPES:
            raise did_you_mean("recipe", str(self.recipe), list(RECIPES))
        for section in self.sections.values():
            section.validate()

    def experiment_hash(self) -> str:
        """Hash of the fields that change results (all but NOT_IN_HASH), so a results folder
        resumes with another device, other paths or more analysis."""
        d = {k: v for k, v in self.to_dict().items() if k not in NOT_IN_HASH}
        # Hashed under its first name and values (amp: none | bf16), so older folders still resume.
        precision = d.pop("precision")
        d["amp"] = "none" if precision == "fp32" else precision
        for section in self.sections.values():  # fields added later count only when changed
            for k, default in section.unhashed_defaults().items():
                if d.get(k) == default:
                    del d[k]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def make_config(preset: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Resolve a preset, then its recipe, then overrides (from YAML or the command line): an
    explicit field beats the recipe, which beats the preset."""
    refresh_sections()
    if preset not in PRESETS:
        raise did_you_mean("preset", preset, preset_names())
    overrides = current_names(dict(overrides or {}))
    recipe = overrides.get("recipe", "paper")
    if recipe not in RECIPES:
        raise did_you_mean("recipe", str(recipe), list(RECIPES))
    values = {**PRESETS[preset], **RECIPES[recipe]}
    values["preset"] = preset
    for key, val in overrides.items():
        if key not in FIELDS:
            raise did_you_mean("config field", key, list(FIELDS))
        values[key] = check_type(key, FIELDS[key][1], val)
    cfg = RunConfig.from_flat(values)
    cfg.validate()
    return cfg


def learner_fields(
    overrides: dict[str, Any],
    config: RunConfig | None,
    *,
    seed: int | None = None,
    device: str | None = None,
    model: str | None = None,
    feature_layers: Sequence[str] = (),
    embedding_layer: str = "",
    fast: bool = False,
) -> dict[str, Any]:
    """The config fields an ``ActiveLearner``'s keywords set (its ``**overrides``, then the named
    keywords; ``fast``: the device's fast settings, those not given explicitly)."""
    fields = dict(overrides)
    if seed is not None:
        fields["seed"] = seed
    if device is not None:
        fields["device"] = device
    if model is not None:
        fields["model"] = model
    if feature_layers:
        fields["feature_layers"] = ",".join(feature_layers)
    if embedding_layer:
        fields["embedding_layer"] = embedding_layer
    if fast:
        fields.update(fast_settings(fields.get("device", config.runtime.device if config else "cpu"), fields))
    return fields


def learner_config(
    config: RunConfig | None, preset: str | None, fields: dict[str, Any], kind: str
) -> RunConfig:
    """An ``ActiveLearner``'s config: ``config`` with ``fields`` over it, or else ``preset`` (default:
    the one for ``kind`` of data) with ``fields``; an explicit field beats the config's."""
    if config is None:
        return make_config(default_preset(preset, kind), fields)
    if preset is not None:
        raise TavaalError("give either config= or preset=, not both (the config names its preset)")
    return make_config(config.preset, {**config.to_dict(), **fields}) if fields else config


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
    data = read_yaml(p, "config", "config file", "give a YAML file of field: value") or {}
    if not isinstance(data, dict):
        raise TavaalError(f"config file {p} must hold a mapping of field: value")
    return data


__all__ = ["FAST", "FIELDS", "PRESETS", "PRESET_NOTES", "RECIPES", "RunConfig", "make_config", "preset_names"]


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """A config from a saved flat mapping (config.yaml's ``config``); unknown keys are ignored."""
    return RunConfig.from_flat({k: v for k, v in current_names(d).items() if k in FIELDS})
