"""A job: one (method, trial) of an experiment, run cycle by cycle from its saved state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch

from tavaal.config import RunConfig
from tavaal.data.base import ArrayDataset
from tavaal.learner import derive_seed
from tavaal.oracle import oracle_labels
from tavaal.pool import Pool
from tavaal.runner.cycle import make_learner, run_trial
from tavaal.runner.folder import ResultsDir, check_resumable, persist_cycle, read_job_state

CycleCallback = Callable[[dict[str, Any]], None]


class JobSpec(NamedTuple):
    """One job. A tuple, so it keys the job states and sorts by method, then trial."""

    method: str
    trial: int

    def __str__(self) -> str:
        return f"{self.method} trial {self.trial}"


def job_list(methods: list[str], trials: int) -> list[JobSpec]:
    """Every job of an experiment in the one order they are started: trial by trial, each trial's
    methods in the order given (within a trial every method shares the initial set)."""
    return [JobSpec(m, t) for t in range(trials) for m in methods]


def job_cycles(
    cfg: RunConfig,
    job: JobSpec,
    ds: ArrayDataset,
    state: dict[str, Any] | None,
    progress: bool = False,
    keep_models: bool = False,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]]:
    """The worker's side of a job: resume from ``state`` (None: a new job) and yield, per cycle,
    (record, the job's new state, the cycle's networks as CPU state dicts with ``keep_models``)."""
    method, trial = job
    learner = make_learner(cfg, method, ds, trial, progress)
    records: list[dict[str, Any]] = []
    if state is not None:
        records = list(state["records"])
        labeled = Pool.from_state_dict(state["pool"]).labeled
        check_resumable(records, labeled, method, trial)
        learner.label(labeled.tolist(), oracle_labels(ds, labeled))
        learner.set_cycle(len(records))
    for record in run_trial(learner, ds, progress):
        cycle = record["cycle"]
        records.append(record)
        nets = None
        if keep_models:
            nets = {k: _to_cpu(v.state_dict()) for k, v in learner.networks().items()}
        # Every cycle reseeds numpy and torch from (seed, trial, cycle), so the pool and the next
        # cycle's seed are the whole RNG state that resume needs.
        new_state = {
            "method": method,
            "trial": trial,
            "cycle": cycle,
            "pool": learner.pool.state_dict(),
            "next_cycle_seed": derive_seed(cfg.protocol.seed, trial, cycle + 1),
            "config_hash": cfg.experiment_hash(),
            "records": records,
        }
        yield record, new_state, nets


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    return obj


def run_job(
    cfg: RunConfig,
    job: JobSpec,
    ds: ArrayDataset,
    out: ResultsDir,
    progress: bool = False,
    keep_models: bool = False,
    on_cycle: CycleCallback | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the cycles of one job in this process; returns its records."""
    state = read_job_state(out, *job)
    for record, new_state, nets in job_cycles(cfg, job, ds, state, progress, keep_models):
        persist_cycle(out, new_state, nets)
        state = new_state
        if on_cycle is not None:
            on_cycle(record)
    return [] if state is None else state["records"]
