"""Selection strategies, one module each, registered by their command-line names."""
from tavaal.strategies import (coreset, entropy, lloss, mcdropout, random_sampling, tavaal,  # noqa: F401
                               vaal, vaal_lloss)
from tavaal.strategies.base import (STRATEGIES, Selection, SelectionContext, Strategy, check_budget,
                                    get_strategy, register)

__all__ = ["STRATEGIES", "Selection", "SelectionContext", "Strategy", "check_budget", "get_strategy", "register"]
