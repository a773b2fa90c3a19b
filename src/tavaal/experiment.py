"""Experiments: independent (method, trial) jobs over one results folder, written atomically after
every cycle and resumed from the last completed cycle.

Folder layout::

    DIR/config.yaml                     resolved config and its hash
    DIR/jobs/<method>-trial<k>/state.json   pool, cycle index, seeds and the job's records
    DIR/jobs/<method>-trial<k>/models/      per-cycle weights, only with --keep-models
    DIR/results.jsonl                   every job's records, merged (rewritten after each cycle)
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from tavaal.atomic import atomic_write_bytes, atomic_write_text
from tavaal.config import RunConfig, config_from_dict, recipe_overrides
from tavaal.cycle import check_sizes, make_learner, run_trial
from tavaal.data import load_data, with_crop_pad
from tavaal.data.base import ArrayDataset
from tavaal.device import setup_device
from tavaal.errors import TavaalError
from tavaal.learner import derive_seed
from tavaal.models.user import is_factory_path
from tavaal.oracle import oracle_labels
from tavaal.paths import check_file_writable, read_json, read_yaml
from tavaal.pool import Pool
from tavaal.results import read_records, write_records
from tavaal.strategies import get_strategy

CycleCallback = Callable[[dict[str, Any]], None]


@dataclass
class ResultsDir:
    """One experiment's output folder."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def results_path(self) -> Path:
        return self.root / "results.jsonl"

    def job_dir(self, method: str, trial: int) -> Path:
        return self.root / "jobs" / f"{method}-trial{trial}"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``DIR/.lock`` while writing: a second process on the same folder gets a clear
        error instead of interleaving its writes with ours (released on exit, even on a kill)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                raise TavaalError(
                    f"{self.root} is in use by another tavaal process (pid {holder}); wait for it to finish, "
                    "or use another --out folder"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def claim(self, cfg: RunConfig) -> None:
        """Write the config, or check that the folder holds this same experiment."""
        if self.config_path.is_file():
            saved = self._saved()
            if saved.get("experiment_hash") != cfg.experiment_hash():
                old = saved.get("config", {})
                diff = [k for k, v in cfg.to_dict().items() if k in old and old[k] != v]
                raise TavaalError(
                    f"{self.root} holds results of a different experiment (differs in: "
                    f"{', '.join(diff) or 'unknown fields'}); use another --out folder, "
                    "or the same settings to resume"
                )
            return
        if self.results_path.exists() or (self.root / "jobs").exists():
            raise TavaalError(f"{self.root} holds results without a config.yaml; use another --out folder")
        text = yaml.safe_dump(
            {
                "experiment_hash": cfg.experiment_hash(),
                "config": cfg.to_dict(),
                "recipe_overrides": recipe_overrides(cfg),
            },
            sort_keys=True,
        )
        atomic_write_text(self.config_path, text)

    def _saved(self) -> dict[str, Any]:
        """config.yaml as written by ``claim``: a mapping with a ``config`` mapping, or a clear error."""
        try:
            saved = read_yaml(self.config_path, "config", "the results folder's config", "")
        except TavaalError:
            saved = None
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise TavaalError(
                f"{self.config_path} is not a tavaal config (damaged or edited by hand); "
                "use another --out folder, or delete that folder to start over"
            )
        return saved

    def saved_config(self) -> RunConfig:
        """The experiment's config as its config.yaml records it."""
        if self.config_path.exists() and not self.config_path.is_file():
            raise TavaalError(
                f"{self.config_path} is not a file; give a folder written by tavaal run or compare"
            )
        if not self.config_path.is_file():
            raise TavaalError(
                f"{self.root} has no config.yaml; give a folder written by tavaal run or compare"
            )
        cfg = config_from_dict(self._saved()["config"])
        cfg.validate()
        return cfg

    def job_records(self) -> list[dict[str, Any]]:
        recs: list[dict[str, Any]] = []
        for state in sorted((self.root / "jobs").glob("*/state.json")):
            recs.extend(load_state(state)["records"])
        return sorted(recs, key=lambda r: (r["method"], r["trial"], r["cycle"]))

    def merge(self) -> None:
        """Rewrite results.jsonl from every job's state, atomically."""
        write_records(self.results_path, self.job_records())


def load_state(path: Path) -> dict[str, Any]:
    state = read_json(path, "state", "job state", "delete that job folder to rerun the job")
    pool = state.get("pool") if isinstance(state, dict) else None
    if (
        not isinstance(pool, dict)
        or not isinstance(pool.get("labeled"), list)
        or not isinstance(pool.get("n"), int)
        or not isinstance(state.get("records"), list)
        or not all(isinstance(r, dict) for r in state["records"])
    ):
        raise TavaalError(f"{path} is not a tavaal job state; delete that job folder to rerun the job")
    return state


def job_cycles(
    cfg: RunConfig,
    method: str,
    trial: int,
    ds: ArrayDataset,
    state: dict[str, Any] | None,
    progress: bool = False,
    keep_models: bool = False,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]]:
    """The worker's side of a job: resume from ``state`` (None: a new job) and yield, per cycle,
    (record, the job's new state, the cycle's networks as CPU state dicts with ``keep_models``)."""
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


def check_resumable(records: list[dict[str, Any]], labeled: Any, method: str, trial: int) -> None:
    """A job's pool must be exactly its initial set and the picks its records list (a hand-edited
    state.json would otherwise resume with wrong labeled counts)."""
    where = f"the state of {method} trial {trial}"
    try:
        sets = labeled_sets(records)
        expected = (sets[-1] + list(records[-1].get("selected") or [])) if records else None
    except (KeyError, TypeError) as e:
        raise TavaalError(
            f"{where} has a damaged record ({e!r}); delete that job folder to rerun it"
        ) from None
    if expected is not None and [int(i) for i in labeled] != [int(i) for i in expected]:
        raise TavaalError(
            f"{where} holds {len(labeled)} labeled samples but its records make {len(expected)} "
            "(or others); it was edited by hand: delete that job folder to rerun the job"
        )


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    return obj


def read_job_state(out: ResultsDir, method: str, trial: int) -> dict[str, Any] | None:
    path = out.job_dir(method, trial) / "state.json"
    return load_state(path) if path.is_file() else None


def persist_cycle(out: ResultsDir, state: dict[str, Any], nets: dict[str, Any] | None) -> None:
    """The driver's side: write one finished cycle of a job (its weights first, then its state,
    each atomically) and merge results.jsonl, so a kill loses at most the cycles in progress."""
    jdir = out.job_dir(state["method"], state["trial"])
    if nets is not None:
        (jdir / "models").mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(nets, buf)
        atomic_write_bytes(jdir / "models" / f"cycle{state['cycle']}.pt", buf.getvalue())
    atomic_write_text(jdir / "state.json", json.dumps(state))
    out.merge()


def run_job(
    cfg: RunConfig,
    method: str,
    trial: int,
    ds: ArrayDataset,
    out: ResultsDir,
    progress: bool = False,
    keep_models: bool = False,
    on_cycle: CycleCallback | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the cycles of one (method, trial) job in this process; returns its records."""
    state = read_job_state(out, method, trial)
    for record, new_state, nets in job_cycles(cfg, method, trial, ds, state, progress, keep_models):
        persist_cycle(out, new_state, nets)
        state = new_state
        if on_cycle is not None:
            on_cycle(record)
    return [] if state is None else state["records"]


def run_experiment(
    cfg: RunConfig,
    methods: list[str],
    out_dir: str | Path,
    progress: bool = False,
    keep_models: bool = False,
    on_cycle: CycleCallback | None = None,
    ds: ArrayDataset | None = None,
    executor: Any = None,
) -> list[dict[str, Any]]:
    """Every (trial, method) job; within a trial all methods share the initial set. Jobs run one
    after another in this process, or through ``executor`` (``process_executor.ProcessExecutor``:
    several worker processes here; ``ray_executor.RayExecutor``: Ray tasks), whose workers return
    each cycle to this process, the only one that writes ``out_dir``."""
    for m in methods:
        get_strategy(m, cfg)  # unknown names fail before any work
    if executor is None:
        return _run_jobs(cfg, methods, Path(out_dir), progress, keep_models, on_cycle, ds, None)
    executor.connect(cfg)  # Ray's address and resources: errors before any work
    try:
        return _run_jobs(cfg, methods, Path(out_dir), progress, keep_models, on_cycle, ds, executor)
    finally:
        executor.close()


def _run_jobs(cfg, methods, out_dir, progress, keep_models, on_cycle, ds, executor) -> list[dict[str, Any]]:
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
        jobs = [(t, m) for t in range(cfg.protocol.trials) for m in methods]
        if executor is not None:
            local = getattr(executor, "local", False)  # worker processes here get the driver's data
            executor.run(cfg, jobs, out, ds if given or local else None, progress, keep_models, on_cycle)
        else:
            ds = ds.to(device)
            for trial, method in tqdm(jobs, desc="jobs", disable=not progress or len(jobs) == 1):
                run_job(cfg, method, trial, ds, out, progress, keep_models, on_cycle)
        if cfg.protocol.selection_eval:  # cycles finished before --selection-eval was asked for
            ds = ds.to(device)
            fill_selection_accuracy(cfg, ds, out, progress, [(m, t) for t, m in jobs])
        out.merge()
    recs = read_records(out.results_path)
    return [r for r in recs if r["method"] in methods and r["trial"] < cfg.protocol.trials]


def labeled_sets(records: list[dict[str, Any]]) -> list[list[int]]:
    """The labeled set each record's cycle trained on, rebuilt from the job's records: the
    initial set (cycle 0's ``initial``), then each earlier cycle's picks, in order."""
    if not records:
        return []
    if "initial" not in records[0]:
        raise TavaalError("the job's first record has no 'initial' set; it was not written by tavaal compare")
    where = f"{records[0].get('method')} trial {records[0].get('trial')}"
    for r in records:
        for key in ("initial", "selected") if r is records[0] else ("selected",):
            v = r.get(key) or []
            if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
                raise TavaalError(
                    f"{where}: a record's {key!r} is not a list of sample indices; it was edited by hand"
                )
        if not isinstance(r.get("n_labeled"), int) or not isinstance(r.get("cycle"), int):
            raise TavaalError(
                f"{where}: a record's n_labeled or cycle is not a whole number; it was edited by hand"
            )
    labeled, out = list(records[0]["initial"]), []
    picked = labeled + [i for r in records for i in r.get("selected") or []]
    if len(set(picked)) != len(picked):
        twice = next(i for i in picked if picked.count(i) > 1)
        raise TavaalError(
            f"{where}: sample {twice} is labeled twice in the job's records; it was edited by hand"
        )
    for r in records:
        if r["n_labeled"] != len(labeled):
            raise TavaalError(
                f"{r['method']} trial {r['trial']} cycle {r['cycle']}: the record says {r['n_labeled']} "
                f"labels but the earlier picks make {len(labeled)}; the job state is inconsistent"
            )
        out.append(list(labeled))
        labeled += r.get("selected") or []
    return out


def fill_selection_accuracy(
    cfg: RunConfig,
    ds: ArrayDataset,
    out: ResultsDir,
    progress: bool = False,
    jobs: list[tuple[str, int]] | None = None,
) -> int:
    """Add ``selection_accuracy`` (the common learner's metric on the cycle's labeled set, see
    ``ActiveLearner.fit_common``) to every finished cycle of ``jobs`` (default: all) that lacks it.
    Each job's state is rewritten atomically after every cycle, so a kill loses at most one; the
    caller holds the folder's lock. Returns how many cycles were filled."""
    states = sorted((out.root / "jobs").glob("*/state.json"))
    todo = []
    for path in states:
        state = load_state(path)
        if jobs is not None and (state["method"], state["trial"]) not in jobs:
            continue
        missing = [i for i, r in enumerate(state["records"]) if "selection_accuracy" not in r]
        if missing:
            todo.append((path, state, missing))
    bar = tqdm(total=sum(len(m) for _, _, m in todo), desc="common learner", disable=not progress)
    filled = 0
    for path, state, missing in todo:
        sets = labeled_sets(state["records"])
        bad = [i for s in sets for i in s if not 0 <= i < ds.n_train]
        if bad:
            raise TavaalError(
                f"{path} names sample {bad[0]}, outside the dataset's {ds.n_train} training samples; it was "
                "edited by hand, or belongs to other data: delete that job folder to rerun the job"
            )
        learner = make_learner(cfg, state["method"], ds, int(state["trial"]))
        for i in missing:
            new = np.setdiff1d(np.asarray(sets[i], dtype=np.int64), learner.pool.labeled)
            learner.label(new.tolist(), oracle_labels(ds, new))
            record = state["records"][i]
            record["selection_accuracy"] = learner.fit_common(np.asarray(sets[i]), int(record["cycle"]))[
                "value"
            ]
            atomic_write_text(path, json.dumps(state))
            bar.update(1)
            filled += 1
        out.merge()
    bar.close()
    return filled


def evaluate_selections(
    out_dir: str | Path,
    device: str | None = None,
    progress: bool = False,
    model: str | None = None,
    download: bool = False,
) -> int:
    """``tavaal selection-eval DIR``: fill ``selection_accuracy`` into an existing results folder,
    resuming where a previous run of it stopped. Returns how many cycles were filled.

    A results folder is data: a Python model its config names is imported only when the caller
    names the same one again (``model``), and nothing is downloaded unless ``download``."""
    out = ResultsDir(Path(out_dir))
    cfg = out.saved_config()
    jobs = out.root / "jobs"
    if not jobs.is_dir() or not any(jobs.glob("*/state.json")):
        raise TavaalError(f"{jobs} holds no job states; give a folder written by tavaal run or compare")
    check_file_writable(out.results_path, f"{out.results_path}", "move it away (it must be the results file)")
    named = cfg.training.model
    if is_factory_path(named) and model != named:
        raise TavaalError(
            f"{out.root}'s config names the Python model {named!r}; tavaal never imports code because a "
            f"folder says so: pass --model {named} to run it"
        )
    cfg = cfg.replace(download=download, **({"device": device} if device else {}))
    dev = setup_device(cfg)
    ds = load_data(cfg.data, quiet=not progress).to(dev)
    with out.lock():  # fill_selection_accuracy merges results.jsonl after every job it fills
        return fill_selection_accuracy(cfg, ds, out, progress)
