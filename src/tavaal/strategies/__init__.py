"""Selection strategies, one module each, registered by their command-line names. Every module of
this package is imported here, so a new method is one new module that registers itself (no list
to edit); the toolkit modules (``base``, ``scores``, ``embedding``, ``adversarial``) register
nothing."""

import importlib
import pkgutil

from tavaal.strategies.base import (
    STRATEGIES,
    Selection,
    SelectionContext,
    Strategy,
    check_budget,
    get_strategy,
    register,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "STRATEGIES",
    "Selection",
    "SelectionContext",
    "Strategy",
    "check_budget",
    "get_strategy",
    "register",
]
