"""``tavaal serve``: a Label Studio ML backend over an image folder, the live labeling loop.

Label Studio calls ``/setup`` and ``/health`` when the backend is connected, ``/predict`` for
pre-annotations (the prediction ``score`` is what its Data Manager sorts by, lowest first), and
``/webhook`` on annotation events. Each event updates the labels; every ``retrain_every`` new or
changed labels a background thread fits a fresh ``ActiveLearner`` on them, queries the next picks,
and (with ``--label-studio URL --project ID`` and the API key in $LABEL_STUDIO_API_KEY, through
``labelstudio.LabelStudioLink``) replaces the project's predictions, so sorting by prediction
score shows the new ranking.

The state folder holds, each written atomically after every change: ``annotations.json`` (every
annotation by id: task, image, label; the source of truth), ``labels.csv`` (path,label, as
``tavaal query`` reads it), ``ranking.json`` (the last ranking and predicted classes) and
``learner/`` (the last fitted learner, ``ActiveLearner.load``). A restart reloads them: no label
is lost, and a retrain that a kill interrupted runs again.
"""

from __future__ import annotations

import csv
import fcntl
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

from tavaal.atomic import atomic_write_text
from tavaal.config import RunConfig
from tavaal.errors import TavaalError, first_line
from tavaal.labelstudio import LOCAL_FILES, _choice, _task_path, priority_score
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
            raise BadRequest(f"the labeling config is not valid XML ({e})", 400) from None
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
        self.annotations: dict[str, dict[str, Any]] = _read_json(state / "annotations.json", {})
        saved = _read_json(state / "labeling.json", None)
        self.config = LabelingConfig(**{**saved, "classes": tuple(saved["classes"])}) if saved else None
        self.from_name = from_name
        self.ranking: dict[str, Any] = _read_json(state / "ranking.json", {})
        self.changes = 0  # label changes since the last retrain started
        self.training = threading.Event()
        self.pending = threading.Event()
        self.last_error: str | None = None
        self.stopped = threading.Event()
        self.worker = threading.Thread(target=self._work, name="tavaal-retrain", daemon=True)
        self.worker.start()
        if self.labels() and self.ranking.get("labels") != self.labels():
            self.pending.set()  # labels came in after the last ranking (or a retrain was killed)

    # ----------------------------------------------------------------- labels
    def labels(self) -> dict[str, str]:
        """path -> label: each task's most recent annotation that picks a class."""
        out: dict[str, str] = {}
        for a in self.annotations.values():
            if a["label"] is not None:
                out[a["path"]] = a["label"]
        return out

    def _persist_labels(self) -> None:
        atomic_write_text(self.state / "annotations.json", json.dumps(self.annotations))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "label"])
        w.writerows(self.labels().items())
        atomic_write_text(self.state / "labels.csv", buf.getvalue())

    def task_path(self, task: Any) -> str:
        if not isinstance(task, dict):
            raise BadRequest("a task must be a JSON object with 'id' and 'data'", 400)
        to_name = self.config.to_name if self.config else "image"
        try:
            path = _task_path(task, self.image_prefix, to_name)
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
            tasks = tasks if isinstance(tasks, list) else [tasks] * len(anns)
            with self.lock:
                updates = [self._annotation(a, t) for a, t in zip(anns, tasks)]
                changed = sum(self.annotations.get(k) != v for k, v in updates)
                self.annotations.update(updates)
                self._persist_labels()
                return self._changed(changed, action)
        if action == "ANNOTATIONS_DELETED":
            gone = payload.get("annotations")
            if not isinstance(gone, list):
                raise BadRequest("ANNOTATIONS_DELETED needs 'annotations', a list of {'id': ...}", 400)
            with self.lock:
                keys = [str(a.get("id")) for a in gone if isinstance(a, dict)]
                removed = [k for k in keys if self.annotations.pop(k, None) is not None]
                self._persist_labels()
                return self._changed(len(removed), action)
        if action == "START_TRAINING":
            self.pending.set()
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
            self._persist_labels()
        changed = len(set(before.items()) ^ set(after.items()))
        if after and after != self.ranking.get("labels"):
            self.pending.set()
        return changed

    def _annotation(self, ann: Any, task: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(ann, dict) or "id" not in ann:
            raise BadRequest("an annotation event needs 'annotation' with its 'id'", 400)
        path = self.task_path(task)
        try:
            label = None if ann.get("was_cancelled") else _choice(ann, self.from_name, task.get("id"))
        except TavaalError as e:
            raise BadRequest(str(e)) from None
        classes = self.config.classes if self.config else ()
        if label is not None and classes and label not in classes:
            raise BadRequest(
                f"task {task.get('id')}: the choice {label!r} is not in the labeling config "
                f"({', '.join(classes)})"
            )
        return str(ann["id"]), {"task": task.get("id"), "path": path, "label": label}

    def _changed(self, n: int, action: str) -> dict[str, Any]:
        """Count ``n`` label changes (under the lock, as ``retrain`` resets the count) and schedule a
        retrain every ``retrain_every``."""
        self.changes += n
        if n and self.changes >= self.retrain_every:
            self.pending.set()
        return {"status": "ok", "action": action, "changed": n, "labels": len(self.labels())}

    # ----------------------------------------------------------------- retraining
    def _work(self) -> None:
        while not self.stopped.is_set():
            if not self.pending.wait(timeout=0.2):
                continue
            self.pending.clear()
            self.training.set()
            try:
                self.retrain()
                self.last_error = None
            except Exception as e:  # reported by /health and the log; the server keeps serving
                self.last_error = f"{type(e).__name__}: {first_line(e)}"
                logger.warning("retraining failed: %s", self.last_error)
            finally:
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
        q = learner.query(min(self.cfg.protocol.budget, len(self.data.ids) - len(labels)))
        t1 = time.perf_counter()
        predicted = None
        if not q.cold_start:
            predicted = dict(zip(learner.ids, learner.predict(learner.ids)))
        raw = q.candidate_scores if q.candidate_scores is not None else []
        ranking = {
            "version": self.version + 1,
            "labels": labels,
            "picks": [str(i) for i in q.ids],
            "scores": {str(i): float(s) for i, s in zip(q.candidate_ids, raw)},
            "score_name": q.score_name,
            "predicted": predicted,
            "cold_start": q.cold_start,
            "fit_and_query_seconds": round(t1 - t0, 3),
            "label_studio_version": self.ranking.get("label_studio_version"),
        }
        ranking["rank_seconds"] = round(time.perf_counter() - t1, 3)
        self._save_learner(learner)
        atomic_write_text(self.state / "ranking.json", json.dumps(ranking))
        with self.lock:
            self.ranking = ranking
        logger.info(
            "retrained on %d labels in %.1f s: version %d, first pick %s",
            len(labels),
            ranking["fit_and_query_seconds"],
            ranking["version"],
            ranking["picks"][:1],
        )
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


def make_app(backend: Backend):
    """The Flask app speaking Label Studio's ML backend protocol over ``backend``."""
    from flask import Flask, jsonify, request  # an extra: tavaal[serve]

    app = Flask("tavaal")

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object", 400)
        return data

    @app.errorhandler(BadRequest)
    def bad(e: BadRequest):
        return jsonify({"error": str(e)}), e.status

    @app.errorhandler(TavaalError)
    def refused(e: TavaalError):
        return jsonify({"error": str(e)}), 422

    @app.get("/")
    @app.get("/health")
    def health():
        return jsonify(backend.health())

    @app.post("/setup")
    def setup():
        return jsonify(backend.setup(body()))

    @app.post("/predict")
    def predict():
        return jsonify(backend.predict(body()))

    @app.post("/webhook")
    def webhook():
        return jsonify(backend.webhook(body())), 201

    @app.post("/train")
    def train():  # older Label Studio versions start training here
        return jsonify(backend.webhook({"action": "START_TRAINING"})), 201

    return app


def serve(backend: Backend, host: str, port: int) -> None:
    """Run until Ctrl-C or SIGTERM; the state is on disk after every change."""
    from werkzeug.serving import make_server  # Flask's server (installed with it)

    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: reachable from other machines; the default is 127.0.0.1", host)
    server = make_server(host, port, make_app(backend), threaded=True)
    print(
        f"tavaal ML backend ({backend.method}) on http://{host}:{server.server_port}, state {backend.state}"
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        backend.close()


def _hold_lock(state: Path):
    """An exclusive lock on the state folder for this process's life: a second server on the same
    folder is refused at once instead of mixing the two states."""
    f = open(state / ".serve.lock", "w")  # noqa: SIM115 (held until close)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise TavaalError(
            f"another tavaal serve is using the state folder {state}; stop it or give another --state"
        ) from None
    return f


def _read_json(path: Path, default: Any) -> Any:
    if not os.path.lexists(path):
        return default
    return read_json(path, "state", "state file", "restore it or start with a new --state")
