"""Settings dataclasses: each component (a strategy, the task learner's training, the runtime)
declares its own hyper-parameters once, with their defaults and valid values, and is checked when
built, whatever the values came from (Python, the command line, YAML, a preset, a saved learner).

Field names are flat and unique across the whole configuration, so the command line and YAML name
every field directly (``--latent-dim``, ``epochs: 50``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

from tavaal.errors import TavaalError

Check = tuple[Callable[[Any], bool], str]  # (test, what the error says a value must be)

POSITIVE: Check = (lambda v: v > 0, "positive")
NONNEGATIVE: Check = (lambda v: v >= 0, "0 or more")
FRACTION: Check = (lambda v: 0 <= v <= 1, "a fraction in [0, 1]")


def setting(
    default: Any,
    *,
    choices: tuple[str, ...] = (),
    check: Check | None = None,
    most: float | None = None,
    later: bool = False,
) -> Any:
    """A field with its default and, optionally, its valid ``choices`` or a ``check`` (test, text)
    and an upper bound ``most`` (what a machine can hold: every number a user gives is bounded).
    ``later``: added after results were first written; at its default it stays out of the
    experiment hash, so folders written before it still resume."""
    meta = {"choices": choices, "check": check, "most": most, "later": later}
    return dataclasses.field(default=default, metadata=meta)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Settings:
    """Base of the settings dataclasses. ``section`` names the group in a ``RunConfig``."""

    section: ClassVar[str] = ""
    # A results folder's identity (the experiment hash) holds this section's fields even at their
    # defaults (but those declared ``later``). The sections of the first release do; a section
    # added later leaves its defaults out, so that adding a method never changes old folders' hash.
    hash_defaults: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject a value that cannot work, naming the field, its flag, the value and what is valid."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            choices, check = f.metadata.get("choices"), f.metadata.get("check")
            if choices and value not in choices:
                raise TavaalError(
                    f"{f.name} ({flag(f.name)}) must be one of {', '.join(choices)}, got {value!r}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise TavaalError(f"{f.name} ({flag(f.name)}) must be a finite number, got {value!r}")
            most = f.metadata.get("most")
            if most is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
                if value > most:
                    raise TavaalError(
                        f"{f.name} ({flag(f.name)}) must be at most {most:,}, got {value:,}; larger "
                        "does not fit a machine"
                    )
            if check is not None:
                ok, valid = check
                try:
                    good = ok(value)
                except TypeError:
                    good = False
                if not good:
                    raise TavaalError(f"{f.name} ({flag(f.name)}) must be {valid}, got {value!r}")

    @classmethod
    def unhashed_defaults(cls) -> dict[str, Any]:
        """{field: default} of the fields that stay out of the experiment hash at their default:
        all of a section added later, the ``later`` fields of the others."""
        return {
            f.name: f.default
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if not cls.hash_defaults or f.metadata.get("later")
        }

    def values(self) -> dict[str, Any]:
        """{flat field name: value}."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]
