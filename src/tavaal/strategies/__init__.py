"""Selection strategies, one module each, registered by their command-line names."""

from tavaal.strategies import (  # noqa: F401
    badge,
    coreset,
    entropy,
    least_confidence,
    lloss,
    margin,
    mcdropout,
    random_sampling,
    tavaal,
    typiclust,
    vaal,
    vaal_lloss,
)
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
