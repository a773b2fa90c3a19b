"""tavaal: Task-Aware Variational Adversarial Active Learning (Kim et al., CVPR 2021).

The package runs deep active learning with TA-VAAL and every method the paper compares it
with, and lets a practitioner ask which samples to label next.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tavaal")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"

from tavaal.errors import TavaalError  # noqa: E402

__all__ = ["ActiveLearner", "QueryResult", "TavaalError", "__version__"]


def __getattr__(name: str):
    """``tavaal.ActiveLearner`` and ``tavaal.QueryResult``, imported on first use (they bring torch)."""
    if name in ("ActiveLearner", "QueryResult"):
        from tavaal import learner

        return getattr(learner, name)
    raise AttributeError(f"module 'tavaal' has no attribute {name!r}")
