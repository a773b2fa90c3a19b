"""The Python library: ``ActiveLearner`` over your pool, with your model or a registered one."""

from tavaal.learner.learner import ActiveLearner, derive_seed, draw_candidates
from tavaal.learner.result import QueryResult

__all__ = ["ActiveLearner", "QueryResult", "derive_seed", "draw_candidates"]
