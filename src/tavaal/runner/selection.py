"""Selection judged apart from training: the common learner (the preset's plain T, no Ranker)
retrained on every cycle's labeled set, its metric written into the records as
``selection_accuracy`` (``--selection-eval``, or ``tavaal selection-eval DIR`` afterwards)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tavaal.atomic import atomic_write_text
from tavaal.config import RunConfig
from tavaal.data import load_data
from tavaal.data.base import ArrayDataset
from tavaal.device import setup_device
from tavaal.errors import TavaalError
from tavaal.models.user import is_factory_path
from tavaal.oracle import oracle_labels
from tavaal.paths import check_file_writable
from tavaal.runner.common import common_learner_metrics
from tavaal.runner.cycle import make_learner
from tavaal.runner.folder import ResultsDir, labeled_sets, load_state
from tavaal.runner.jobs import JobSpec


def fill_selection_accuracy(
    cfg: RunConfig,
    ds: ArrayDataset,
    out: ResultsDir,
    progress: bool = False,
    jobs: list[JobSpec] | None = None,
) -> int:
    """Add ``selection_accuracy`` (the common learner's metric on the cycle's labeled set, see
    ``common.common_learner_metrics``) to every finished cycle of ``jobs`` (default: all) that lacks it.
    Each job's state is rewritten atomically after every cycle, so a kill loses at most one; the
    caller holds the folder's lock. Returns how many cycles were filled."""
    states = sorted((out.root / "jobs").glob("*/state.json"))
    todo = []
    for path in states:
        state = load_state(path)
        if jobs is not None and JobSpec(state["method"], state["trial"]) not in jobs:
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
            record["selection_accuracy"] = common_learner_metrics(
                learner, np.asarray(sets[i]), int(record["cycle"])
            )["value"]
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
