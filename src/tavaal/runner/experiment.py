"""An experiment: every (method, trial) job over one results folder, written atomically after
every cycle and resumed from the last completed cycle. Jobs run one after another in this
process, or through an executor (``sweep.Executor``: worker processes here, Ray tasks), whose
workers send each cycle back to this process, the only one that writes the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from tavaal.config import RunConfig
from tavaal.data import load_data, with_crop_pad
from tavaal.data.base import ArrayDataset
from tavaal.device import setup_device
from tavaal.results import read_records
from tavaal.runner.cycle import check_sizes, make_learner
from tavaal.runner.folder import ResultsDir
from tavaal.runner.jobs import CycleCallback, job_list, run_job
from tavaal.runner.selection import fill_selection_accuracy
from tavaal.runner.sweep import Executor, drive
from tavaal.strategies import get_strategy


def run_experiment(
    cfg: RunConfig,
    methods: list[str],
    out_dir: str | Path,
    progress: bool = False,
    keep_models: bool = False,
    on_cycle: CycleCallback | None = None,
    ds: ArrayDataset | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Every job of ``methods`` x ``cfg.protocol.trials`` (``job_list``'s order; within a trial all
    methods share the initial set), into ``out_dir``; returns their records. Everything that can
    be checked is checked before any work: names, sizes, the model against the data and every
    method, the executor's options, the folder's identity."""
    for m in methods:
        get_strategy(m, cfg)  # unknown names fail before any work
    if executor is not None:
        executor.connect(cfg)  # Ray's address and resources: errors before any work
    try:
        return _run(cfg, methods, Path(out_dir), progress, keep_models, on_cycle, ds, executor)
    finally:
        if executor is not None:
            executor.close()


def _run(
    cfg: RunConfig,
    methods: list[str],
    out_dir: Path,
    progress: bool,
    keep_models: bool,
    on_cycle: CycleCallback | None,
    ds: ArrayDataset | None,
    executor: Executor | None,
) -> list[dict[str, Any]]:
    given = ds is not None
    # With an executor the jobs run elsewhere: this process only checks, on its CPU.
    device = setup_device(cfg) if executor is None else torch.device("cpu")
    check_cfg = cfg if executor is None else cfg.replace(device="cpu")
    if ds is None:
        ds = load_data(cfg.data, quiet=not progress)  # every data field applied, crop padding too
    else:
        ds = with_crop_pad(ds, cfg.data.crop_pad)
    check_sizes(cfg, ds.n_train)
    for m in methods:  # the model suits the data and every method: before any work
        make_learner(check_cfg, m, ds, 0).build_model()
    out = ResultsDir(out_dir)
    with out.lock():
        out.claim(cfg)
        jobs = job_list(methods, cfg.protocol.trials)
        if executor is not None:
            shared = ds if given or executor.local else None  # workers here get the driver's data
            try:
                drive(executor, cfg, jobs, out, shared, progress, keep_models, on_cycle)
            finally:
                executor.close()  # idle workers exit before the common learner's work below
        else:
            ds = ds.to(device)
            for job in tqdm(jobs, desc="jobs", disable=not progress or len(jobs) == 1):
                run_job(cfg, job, ds, out, progress, keep_models, on_cycle)
        if cfg.protocol.selection_eval:  # cycles finished before --selection-eval was asked for
            ds = ds.to(device)
            fill_selection_accuracy(cfg, ds, out, progress, jobs)
        out.merge()
    recs = read_records(out.results_path)
    return [r for r in recs if r["method"] in methods and r["trial"] < cfg.protocol.trials]
