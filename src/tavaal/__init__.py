"""tavaal: Task-Aware Variational Adversarial Active Learning (Kim et al., CVPR 2021).

The package runs deep active learning with TA-VAAL and every method the paper compares it
with, and lets a practitioner ask which samples to label next.
"""

from tavaal._version import __version__
from tavaal.errors import TavaalError

__all__ = ["ActiveLearner", "QueryResult", "TavaalError", "__version__"]


def __getattr__(name: str):
    """``tavaal.ActiveLearner`` and ``tavaal.QueryResult``, imported on first use (they bring torch)."""
    if name in ("ActiveLearner", "QueryResult"):
        from tavaal import learner

        return getattr(learner, name)
    raise AttributeError(f"module 'tavaal' has no attribute {name!r}")
