"""Running experiments: the results folder (``folder``), jobs (``jobs``), the executor seam and the
run skeleton (``sweep``), its engines (``processes``: worker processes here; ``ray_tasks``: Ray),
selection-only evaluation (``selection``, ``common``), the orchestration (``experiment``) and
the two-moons figure end to end (``toy_figure``)."""

from tavaal.runner import processes, ray_tasks  # noqa: F401  (they register their executors)
from tavaal.runner.experiment import run_experiment
from tavaal.runner.folder import ResultsDir
from tavaal.runner.jobs import JobSpec, job_list
from tavaal.runner.selection import evaluate_selections, fill_selection_accuracy
from tavaal.runner.sweep import EXECUTORS, Executor, ExecutorOptions, SweepFailed

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorOptions",
    "JobSpec",
    "ResultsDir",
    "SweepFailed",
    "evaluate_selections",
    "fill_selection_accuracy",
    "job_list",
    "run_experiment",
]
