"""The state of ``tavaal serve``: a Label Studio ML backend's labels, retraining and ranking.

Each annotation event updates the labels; every ``retrain_every`` new or changed labels a
background thread fits a fresh ``ActiveLearner`` on them, queries the next picks, and (with
``--label-studio URL --project ID`` and the API key in $LABEL_STUDIO_API_KEY, through
``labelstudio.LabelStudioLink``) replaces the project's predictions, so sorting by prediction
score shows the new ranking. The HTTP side is ``serve.py``.

The state folder holds, each written atomically after every change: ``annotations.json`` (every
annotation by id: task, image, label; the source of truth), ``labels.csv`` (path,label, as
``tavaal query`` reads it), ``ranking.json`` (the last ranking and predicted classes) and
``learner/`` (the last fitted learner, ``ActiveLearner.load``). A restart reloads them: no label
is lost, and a retrain that a kill interrupted runs again."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tavaal.atomic import atomic_write_text, held_lock
from tavaal.config import RunConfig
from tavaal.errors import TavaalError, first_line
from tavaal.labeling.labels import RowWriter
from tavaal.labeling.labelstudio import LOCAL_FILES, annotation_choice, priority_score, task_image_path
from tavaal.learner import ActiveLearner
from tavaal.learner.intake import PoolData, read_pool
from tavaal.paths import read_json

logger = logging.getLogger("tavaal")


class BadRequest(TavaalError):
    """A request the backend refuses (HTTP 4xx), with the reason."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass
class LabelingConfig:
    """What the project's labeling config names: the Choices control, its image and its classes."""

    from_name: str = "choice"
    to_name: str = "image"
    classes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, xml: str, from_name: str = "") -> LabelingConfig:
        """The (first, or ``from_name``) ``<Choices>`` of a Label Studio labeling config."""
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as e:
            raise BadRequest(f"the labeling config is not valid XML ({first_line(e)})", 400) from None
        for node in root.iter("Choices"):
            if from_name and node.get("name") != from_name:
                continue
            classes = tuple(c.get("value", "") for c in node.iter("Choice") if c.get("value"))
            return cls(node.get("name", "choice"), node.get("toName", "image"), classes)
        raise BadRequest(
            "the labeling config has no <Choices> control"
            + (f" named {from_name!r}" if from_name else "")
            + "; tavaal serve labels whole images with one class (image classification)"
        )


class Backend:
    """The ML backend's state and logic, apart from HTTP: labels, ranking, background retraining."""

    def __init__(
        self,
        pool: Path,
        state: Path,
        method: str,
        cfg: RunConfig,
        model: str | None = None,
        retrain_every: int = 10,
        image_prefix: str = LOCAL_FILES,
        from_name: str = "",
        refresh: Callable[[dict[str, Any]], str | None] | None = None,
    ):
        if retrain_every <= 0:
            raise TavaalError(f"--retrain-every must be positive, got {retrain_every}")
        self.pool_dir, self.state, self.method, self.cfg, self.model = pool, state, method, cfg, model
        self.retrain_every, self.image_prefix, self.refresh = retrain_every, image_prefix, refresh
        state.mkdir(parents=True, exist_ok=True)
        self._lock_file = _hold_lock(state)
        self.data: PoolData = read_pool(pool, None, cfg.data.image_size, True, cfg.data.skip_unreadable)
        self.known = set(self.data.ids)
        self.lock = threading.RLock()
        saved = read_state(state)  # every damaged file named, one line each
        self.annotations: dict[str, dict[str, Any]] = saved["annotations.json"] or {}
        labeling = saved["labeling.json"]
        self.config = (
            LabelingConfig(**{**labeling, "classes": tuple(labeling["classes"])}) if labeling else None
        )
        self.from_name = from_name
        self.ranking: dict[str, Any] = saved["ranking.json"] or {}
        schedule = saved["retrain.json"] or {}
        # Label changes since the last retrain started, and whether one is due (kept across a
        # restart, so a restart neither retrains below --retrain-every nor forgets a killed one).
        self.changes = int(schedule.get("changes", 0))
        due = bool(schedule.get("due", False))
        self._persist_labels()  # labels.csv rebuilt from annotations.json, the source of truth
        self.training = threading.Event()
        self.pending = threading.Event()
        self.last_error: str | None = None
        self.stopped = threading.Event()
        self.worker = threading.Thread(target=self._work, name="tavaal-retrain", daemon=True)
        self.worker.start()
        if due and self.labels() and self.ranking.get("labels") != self.labels():
            self.pending.set()  # a retrain was due when the backend stopped (or was killed)
        logger.info(
            "%d labels in %s; %d changes since the last retrain (every %d)%s",
            len(self.labels()),
            state,
            self.changes,
            retrain_every,
            ", retraining now" if self.pending.is_set() else "",
        )

    # ----------------------------------------------------------------- labels
    def labels(self) -> dict[str, str]:
        """path -> label: each task's most recent annotation (created or updated last) that picks
        a class. ``annotations`` is kept in the order of their last change."""
        out: dict[str, str] = {}
        for a in self.annotations.values():
            if a["label"] is not None:
                out.pop(a["path"], None)
                out[a["path"]] = a["label"]
        return out

    def _persist_labels(self) -> None:
        atomic_write_text(self.state / "annotations.json", json.dumps(self.annotations))
        buf = io.StringIO()
        w = RowWriter(buf)  # quotes names with commas, quotes, CR or LF
        w.writerow(["path", "label"])
        w.writerows(self.labels().items())
        atomic_write_text(self.state / "labels.csv", buf.getvalue())
        self._persist_schedule()

    def _persist_schedule(self) -> None:
        due = self.pending.is_set() if hasattr(self, "pending") else False
        atomic_write_text(self.state / "retrain.json", json.dumps({"changes": self.changes, "due": due}))

    def task_path(self, task: Any) -> str:
        if not isinstance(task, dict):
            raise BadRequest("a task must be a JSON object with 'id' and 'data'", 400)
        to_name = self.config.to_name if self.config else "image"
        try:
            path = task_image_path(task, self.image_prefix, to_name)
        except TavaalError as e:
            raise BadRequest(str(e)) from None
        if path not in self.known:
            raise BadRequest(
                f"task {task.get('id')} names {path!r}, which is not an image of the pool {self.pool_dir}"
            )
        return path

    def use_config(self, xml: Any) -> None:
        """Take the project's labeling config (from /setup or /predict) and keep it."""
        if not isinstance(xml, str) or not xml.strip():
            return
        cfg = LabelingConfig.parse(xml, self.from_name)
        if cfg != self.config:
            with self.lock:
                self.config = cfg
                data = {"from_name": cfg.from_name, "to_name": cfg.to_name, "classes": list(cfg.classes)}
                atomic_write_text(self.state / "labeling.json", json.dumps(data))

    # ----------------------------------------------------------------- the protocol
    def setup(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.use_config(payload.get("schema"))
        return {"model_version": self.model_version}

    @property
    def model_version(self) -> str:
        """Fixed for the backend's life: Label Studio sorts by the scores of its ML backend's model
        version only, and each retrain replaces the predictions in place (``version`` counts them)."""
        return f"tavaal-{self.method}"

    @property
    def prediction_version(self) -> str:
        """The model version its predictions carry: Label Studio's Data Manager averages the scores
        of the project's model version only (set to the ML backend's title when it is connected),
        so once a refresh has read it from the project, predictions carry that one."""
        return self.ranking.get("label_studio_version") or self.model_version

    @property
    def version(self) -> int:
        return int(self.ranking.get("version", 0))

    def health(self) -> dict[str, Any]:
        return {
            "status": "UP",
            "model_class": f"tavaal {self.method}",
            "model_version": self.model_version,
            "version": self.version,
            "labels": len(self.labels()),
            "training": self.training.is_set(),
            "complete": bool(self.ranking.get("complete")),  # every image labeled: nothing to query
            "unlabeled": len(self.data.ids) - len(self.labels()),
            "last_error": self.last_error,
        }

    def predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        tasks = payload.get("tasks")
        if not isinstance(tasks, list):
            raise BadRequest("/predict needs 'tasks', a list of Label Studio tasks", 400)
        self.use_config(payload.get("label_config"))
        paths = [self.task_path(t) for t in tasks]
        return {"results": self.predictions(paths)}

    def predictions(self, paths: list[str]) -> list[dict[str, Any]]:
        """Each image's prediction: the predicted class as the pre-annotation, and a score that puts
        the current query first in Label Studio's order (lowest score first)."""
        r = self.ranking
        picks = r.get("picks", [])
        rank_of = {p: k for k, p in enumerate(picks, start=1)}
        predicted, scores = r.get("predicted") or {}, r.get("scores") or {}
        cfg = self.config or LabelingConfig()
        out = []
        for path in paths:
            result = []
            if predicted.get(path) is not None:
                value = {"choices": [str(predicted[path])]}
                result = [
                    {"from_name": cfg.from_name, "to_name": cfg.to_name, "type": "choices", "value": value}
                ]
            out.append(
                {
                    "result": result,
                    "score": priority_score(rank_of.get(path), len(picks)),
                    "model_version": self.prediction_version,
                    "rank": rank_of.get(path),
                    "method_score": scores.get(path),
                }
            )
        return out

    def webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = payload.get("action")
        if not isinstance(action, str):
            raise BadRequest("a webhook payload needs 'action'", 400)
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"):
            anns = payload.get("annotation")
            anns = anns if isinstance(anns, list) else [anns]
            tasks = payload.get("task")
            if isinstance(tasks, list) and len(tasks) != len(anns):
                raise BadRequest(
                    f"{len(anns)} annotations but {len(tasks)} tasks: each annotation needs its task; "
                    "nothing was stored"
                )
            tasks = tasks if isinstance(tasks, list) else [tasks] * len(anns)
            with self.lock:  # every annotation checked before any is stored
                updates = [self._annotation(a, t) for a, t in zip(anns, tasks)]
                changed = sum(self.annotations.get(k) != v for k, v in updates)
                for k, v in updates:  # the last change of each annotation goes last
                    self.annotations.pop(k, None)
                    self.annotations[k] = v
                return self._changed(changed, action)
        if action == "ANNOTATIONS_DELETED":
            gone = payload.get("annotations")
            if not isinstance(gone, list):
                raise BadRequest("ANNOTATIONS_DELETED needs 'annotations', a list of {'id': ...}", 400)
            if not all(isinstance(a, dict) for a in gone):
                raise BadRequest("ANNOTATIONS_DELETED: every entry must be {'id': ...}; nothing was deleted")
            keys = [_annotation_id(a.get("id")) for a in gone]
            with self.lock:
                removed = [k for k in keys if self.annotations.pop(k, None) is not None]
                return self._changed(len(removed), action)
        if action == "START_TRAINING":
            self.pending.set()
            self._persist_schedule()
            return {"status": "training scheduled"}
        return {"status": f"{action} ignored"}

    def sync(self, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
        """Replace the annotations with Label Studio's own (every (annotation, task) of the project):
        what was annotated, changed or deleted while the backend was down is taken in. Returns the
        number of labels that changed."""
        fresh = {}
        for a, t in pairs:
            try:
                k, v = self._annotation(a, t)
                fresh[k] = v
            except BadRequest as e:  # one bad task must not keep the backend from starting
                logger.warning("left out an annotation of the project: %s", e)
        with self.lock:
            before = self.labels()
            self.annotations = fresh
            after = self.labels()
            changed = len(set(before.items()) ^ set(after.items()))
            self._changed(changed, "sync")  # the same rule as the webhook's: every K changes
        return changed

    def _annotation(self, ann: Any, task: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(ann, dict) or "id" not in ann:
            raise BadRequest("an annotation event needs 'annotation' with its 'id'", 400)
        key = _annotation_id(ann["id"])
        if isinstance(task, dict) and ann.get("task") not in (None, task.get("id")):
            raise BadRequest(
                f"annotation {key} belongs to task {ann.get('task')!r}, not to task {task.get('id')!r} "
                "given beside it; nothing was stored"
            )
        path = self.task_path(task)
        try:
            cancelled = ann.get("was_cancelled")
            label = None if cancelled else annotation_choice(ann, self.from_name, task.get("id"))
        except TavaalError as e:
            raise BadRequest(str(e)) from None
        classes = self.config.classes if self.config else ()
        if label is not None and classes and label not in classes:
            raise BadRequest(
                f"task {task.get('id')}: the choice {label!r} is not in the labeling config "
                f"({', '.join(classes)})"
            )
        return key, {"task": task.get("id"), "path": path, "label": label}

    def _changed(self, n: int, action: str) -> dict[str, Any]:
        """Count ``n`` label changes (under the lock, as ``retrain`` resets the count) and schedule a
        retrain every ``retrain_every``."""
        self.changes += n
        if n and self.changes >= self.retrain_every:
            self.pending.set()
        self._persist_labels()
        return {"status": "ok", "action": action, "changed": n, "labels": len(self.labels())}

    # ----------------------------------------------------------------- retraining
    def _work(self) -> None:
        while not self.stopped.is_set():
            if not self.pending.wait(timeout=0.2):
                continue
            self.pending.clear()
            self.training.set()
            n = len(self.labels())
            logger.info("retraining on %d labels (%s, %d changes)", n, self.method, self.changes)
            t0 = time.perf_counter()
            try:
                r = self.retrain()
                self.last_error = None
                logger.info(
                    "retrained in %.1f s on %d labels: version %d, %s",
                    time.perf_counter() - t0,
                    len(r["labels"]),
                    r["version"],
                    "every image is labeled, nothing to query"
                    if r["complete"]
                    else f"first pick {r['picks'][0]}",
                )
            except Exception as e:  # reported by /health and the log; the server keeps serving
                self.last_error = f"{type(e).__name__}: {first_line(e)}"
                logger.warning(
                    "retraining failed after %.1f s: %s", time.perf_counter() - t0, self.last_error
                )
            finally:
                with self.lock:
                    self._persist_schedule()
                self.training.clear()

    def retrain(self) -> dict[str, Any]:
        """Fit a fresh learner on the labels, query the next picks, keep the ranking and the
        predicted class of every image, save the learner, and refresh Label Studio's predictions."""
        with self.lock:
            labels = self.labels()
            self.changes = 0
            classes = list(self.config.classes) if self.config and self.config.classes else None
        t0 = time.perf_counter()
        kw = {} if self.model is None else {"model": self.model}
        learner = ActiveLearner(self.method, pool=self.data, config=self.cfg, classes=classes, **kw)
        learner.label(list(labels), list(labels.values()))
        learner.set_cycle(len(labels))  # each ranking of a growing label set draws its own subset
        unlabeled = len(self.data.ids) - len(labels)
        if unlabeled == 0:  # every image is labeled: train for the predictions, query nothing
            learner.fit(select=False)
            picks, scores, score_name, cold = [], {}, None, False
        else:
            q = learner.query(min(self.cfg.protocol.budget, unlabeled))
            raw = q.candidate_scores if q.candidate_scores is not None else []
            picks, score_name, cold = [str(i) for i in q.ids], q.score_name, q.cold_start
            scores = {str(i): float(s) for i, s in zip(q.candidate_ids, raw)}
        t1 = time.perf_counter()
        predicted = None
        if not cold:
            predicted = dict(zip(learner.ids, learner.predict(learner.ids)))
        ranking = {
            "version": self.version + 1,
            "labels": labels,
            "picks": picks,
            "scores": scores,
            "score_name": score_name,
            "predicted": predicted,
            "cold_start": cold,
            "complete": unlabeled == 0,
            "fit_and_query_seconds": round(t1 - t0, 3),
            "label_studio_version": self.ranking.get("label_studio_version"),
        }
        ranking["rank_seconds"] = round(time.perf_counter() - t1, 3)
        self._save_learner(learner)
        atomic_write_text(self.state / "ranking.json", json.dumps(ranking))
        with self.lock:
            self.ranking = ranking
        if self.refresh is not None:
            t2 = time.perf_counter()
            used = self.refresh(self.all_predictions())
            ranking["refresh_seconds"] = round(time.perf_counter() - t2, 3)
            ranking["label_studio_version"] = used or self.ranking.get("label_studio_version")
            atomic_write_text(self.state / "ranking.json", json.dumps(ranking))
        return ranking

    def all_predictions(self) -> dict[str, dict[str, Any]]:
        """path -> prediction for every image of the pool (what a refresh sends to Label Studio)."""
        return dict(zip(self.data.ids, self.predictions(self.data.ids)))

    def _save_learner(self, learner: ActiveLearner) -> None:
        """The learner into ``learner/``, swapped in whole: a kill leaves the old or the new one."""
        tmp, final, old = self.state / "learner.tmp", self.state / "learner", self.state / "learner.old"
        for d in (tmp, old):
            shutil.rmtree(d, ignore_errors=True)
        learner.save(tmp)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def wait_idle(self, timeout: float = 600) -> bool:
        """Block until no retrain is pending or running (tests, the check script)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.pending.is_set() and not self.training.is_set():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.stopped.set()
        self.worker.join(timeout=5)
        self._lock_file.close()


def _hold_lock(state: Path) -> contextlib.ExitStack:
    """An exclusive lock on the state folder for this process's life (closing the stack releases
    it): a second server on the same folder is refused at once instead of mixing the two states."""
    stack = contextlib.ExitStack()
    stack.enter_context(
        held_lock(
            state / ".serve.lock",
            busy=lambda pid: TavaalError(
                f"another tavaal serve (pid {pid}) is using the state folder {state}; stop it or give "
                "another --state"
            ),
        )
    )
    return stack


def _annotation_id(value: Any) -> str:
    """An annotation id as Label Studio gives it: a whole number (or its digits as text)."""
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())
    ):
        raise BadRequest(f"annotation id {value!r} is not a whole number; nothing was stored")
    return str(int(value))


# The state folder's files: what each must hold, to find a damaged one at start.
STATE_FILES: dict[str, type] = {
    "annotations.json": dict,
    "labeling.json": dict,
    "ranking.json": dict,
    "retrain.json": dict,
}


def read_state(state: Path) -> dict[str, Any]:
    """Every state file (None when absent), checked at start: all the damaged ones are reported
    together, one line each, before the backend serves anything."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, kind in STATE_FILES.items():
        path = state / name
        out[name] = None
        if not os.path.lexists(path):
            continue
        try:
            value = read_json(
                path, "state", "state file", "restore it, delete it, or start with a new --state"
            )
        except TavaalError as e:
            problems.append(str(e))
            continue
        if not isinstance(value, kind) or not _well_formed(name, value):
            problems.append(
                f"state file {path} does not hold what tavaal serve wrote there; restore it, delete it, "
                "or start with a new --state"
            )
            continue
        out[name] = value
    if problems:
        raise TavaalError("\n".join(problems))
    return out


def _well_formed(name: str, value: dict[str, Any]) -> bool:
    if name == "annotations.json":
        return all(
            isinstance(a, dict)
            and isinstance(a.get("path"), str)
            and (a.get("label") is None or isinstance(a["label"], str))
            for a in value.values()
        )
    if name == "labeling.json":
        return (
            set(value) <= {"from_name", "to_name", "classes"}
            and isinstance(value.get("classes"), list)
            and all(isinstance(c, str) for c in value["classes"])
        )
    if name == "ranking.json":
        return isinstance(value.get("picks", []), list) and isinstance(value.get("labels", {}), dict)
    return isinstance(value.get("changes", 0), int) and value.get("changes", 0) >= 0
