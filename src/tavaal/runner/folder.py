"""A results folder: its layout, its lock, and the job states that make a run resumable.

Layout::

    DIR/config.yaml                         resolved config and its hash
    DIR/jobs/<method>-trial<k>/state.json   pool, cycle index, seeds and the job's records
    DIR/jobs/<method>-trial<k>/models/      per-cycle weights, only with --keep-models
    DIR/results.jsonl                       every job's records, merged (rewritten after each cycle)
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from tavaal.atomic import atomic_write_bytes, atomic_write_text, held_lock
from tavaal.config import RunConfig, config_from_dict, recipe_overrides
from tavaal.errors import TavaalError
from tavaal.paths import read_json, read_yaml
from tavaal.results import write_records


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

        def busy(pid: str) -> TavaalError:
            return TavaalError(
                f"{self.root} is in use by another tavaal process (pid {pid}); wait for it to finish, "
                "or use another --out folder"
            )

        with held_lock(self.root / ".lock", busy):
            yield

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
