"""Selection strategies, one module each, registered by their command-line names."""

from tavaal.strategies import coreset, entropy, lloss, mcdropout, random_sampling, tavaal, vaal, vaal_lloss  # noqa: F401
from tavaal.strategies.base import (
    STRATEGIES,
    Selection,
    SelectionContext,
    Strategy,
    check_budget,
    get_strategy,
    register,
)

__all__ = [
    "STRATEGIES",
    "Selection",
    "SelectionContext",
    "Strategy",
    "check_budget",
    "get_strategy",
    "register",
]
