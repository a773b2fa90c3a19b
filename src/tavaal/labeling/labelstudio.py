"""A round trip with Label Studio: a query's picks as its task-import JSON, its JSON export of
choices annotations merged back into ``labels.csv``, and (extra ``tavaal[labelstudio]``) a push of
the tasks into a project through its SDK.

Formats (Label Studio's documentation, "Import pre-annotated data" and "Export annotations"):
a task is ``{"data": {...}, "predictions": [{"model_version", "score", "result": [...]}]}``; a choices
result is ``{"from_name", "to_name", "type": "choices", "value": {"choices": [label]}}``; an export
is a list of tasks, each with ``id``, ``data`` and ``annotations`` (``was_cancelled`` marks a skip).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tavaal.atomic import atomic_write_bytes, atomic_write_text, file_lock
from tavaal.errors import TavaalError, first_line
from tavaal.labeling.labels import RowWriter, read_labels
from tavaal.learner.result import QueryResult
from tavaal.paths import read_json

logger = logging.getLogger("tavaal")

LOCAL_FILES = "/data/local-files/?d="  # Label Studio's local-storage URLs (LOCAL_FILES_DOCUMENT_ROOT)
API_KEY_ENV = "LABEL_STUDIO_API_KEY"


def priority_score(rank: int | None, n: int) -> float:
    """The prediction score that puts pick ``rank`` (1 first) of ``n`` where Label Studio shows
    it: the Data Manager sorts by prediction score with the lowest first (its API reference: "Task
    with the lowest score will be shown first"), so the first pick gets the lowest, 1 / (n + 1),
    and an image the query did not pick (``rank`` None) gets 1. The score orders the query; it is
    not a confidence."""
    return 1.0 if rank is None else rank / (n + 1)


def export_tasks(
    result: QueryResult,
    predicted: list[Any] | None,
    method: str,
    image_prefix: str = LOCAL_FILES,
    from_name: str = "choice",
    to_name: str = "image",
) -> list[dict[str, Any]]:
    """One task per pick, first pick first. ``data.image`` is ``image_prefix`` + the pool-relative
    path; ``data`` also carries the tavaal id, rank and method score. The prediction's ``score``
    rises with the rank (``priority_score``), so Label Studio's sort by prediction score (lowest
    first) shows the first pick first, whichever way the method's own score runs (VAAL picks its
    smallest D); the predicted class (absent on a cold start) is the pre-annotation."""
    n = len(result.ids)
    tasks = []
    for k, (rank, sid, score) in enumerate(result.rows()):
        prediction: dict[str, Any] = {
            "model_version": f"tavaal-{method}",
            "score": priority_score(rank, n),
            "result": [],
        }
        if predicted is not None:
            prediction["result"] = [
                {
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "choices",
                    "value": {"choices": [str(predicted[k])]},
                }
            ]
        data = {
            to_name: f"{image_prefix}{sid}",
            "tavaal_id": sid,
            "rank": rank,
            "score": score,
            "score_name": result.score_name,
            "score_order": result.score_order,
        }
        tasks.append({"data": data, "predictions": [prediction]})
    return tasks


def write_tasks(path: Path, tasks: list[dict[str, Any]]) -> None:
    atomic_write_text(path, json.dumps(tasks, indent=1))


def task_image_path(task: dict[str, Any], image_prefix: str, to_name: str) -> str:
    """The pool path a task shows: its ``tavaal_id``, or its image URL without ``image_prefix``."""
    data = task.get("data") or {}
    if "tavaal_id" in data:
        return str(data["tavaal_id"])
    image = str(data.get(to_name, ""))
    if image_prefix and image.startswith(image_prefix):
        return image[len(image_prefix) :]
    raise TavaalError(
        f"task {task.get('id')}: data has no tavaal_id and its {to_name!r} ({image!r}) does not start with "
        f"{image_prefix!r}; pass --image-prefix as used for the export"
    )


def annotation_choice(annotation: Any, from_name: str, task: Any) -> str | None:
    """The one class an annotation picks, or None when it picks none; anything else (several
    choices, an empty or non-text choice, a malformed annotation) is an error naming the task."""
    where = f"task {task}, annotation {annotation.get('id') if isinstance(annotation, dict) else '?'}"
    results = annotation.get("result") if isinstance(annotation, dict) else None
    if results is not None and not isinstance(results, list):
        raise TavaalError(f"{where}: 'result' is not a list; is this Label Studio's JSON export?")
    for r in results or []:
        if not isinstance(r, dict):
            raise TavaalError(f"{where}: a result is not an object; is this Label Studio's JSON export?")
        if r.get("type") == "choices" and (not from_name or r.get("from_name") == from_name):
            choices = (r.get("value") or {}).get("choices") or []
            if not isinstance(choices, list):
                raise TavaalError(f"{where}: 'choices' is not a list")
            if len(choices) > 1:
                raise TavaalError(f"{where} picks {len(choices)} choices; tavaal needs one")
            if len(choices) == 1:
                c = choices[0]
                if not isinstance(c, str) or not c.strip():
                    raise TavaalError(f"{where}: the choice {c!r} is not a class name (one non-empty text)")
                return c.strip()
    return None


def read_export(
    path: Path, image_prefix: str = LOCAL_FILES, from_name: str = "choice", to_name: str = "image"
) -> tuple[dict[str, str], dict[str, int], int]:
    """(path -> label, path -> task id, skipped) from Label Studio's JSON export. Cancelled
    (skipped) annotations and tasks without an annotation are left out; annotations of one task
    that disagree are an error naming the task."""
    tasks = read_json(path, "export", "export", "export the project from Label Studio as JSON")
    if not isinstance(tasks, list) or any(
        not isinstance(t, dict) or not isinstance(t.get("annotations"), list) for t in tasks
    ):
        raise TavaalError(
            f"{path} is not Label Studio's JSON export (a list of tasks with 'annotations'); "
            "export as JSON, not JSON-MIN or CSV"
        )
    labels: dict[str, str] = {}
    task_of: dict[str, int] = {}
    skipped = 0
    for t in tasks:
        found = {
            c
            for a in t["annotations"]
            if not (isinstance(a, dict) and a.get("was_cancelled"))
            and (c := annotation_choice(a, from_name, t.get("id"))) is not None
        }
        if not found:
            skipped += 1
            continue
        p = task_image_path(t, image_prefix, to_name)
        if len(found) > 1:
            raise TavaalError(
                f"task {t.get('id')} ({p}): its annotations disagree ({sorted(found)}); "
                "resolve it in Label Studio"
            )
        lab = found.pop()
        if p in labels and labels[p] != lab:
            raise TavaalError(
                f"task {t.get('id')} labels {p!r} {lab!r} but task {task_of[p]} says {labels[p]!r}"
            )
        labels[p], task_of[p] = lab, t.get("id")
    return labels, task_of, skipped


def merge_labels(
    export: Path, labels_file: Path, known: set[str] | None = None, **fmt: str
) -> tuple[int, int, int]:
    """Merge an export's labels into ``labels_file`` (created if missing), atomically and under a
    lock (a second import at the same moment waits, so neither is lost); the file keeps its mode,
    byte-order mark, line endings and delimiter. A label that differs from one already there is an
    error naming the task and path, and nothing is written. Returns (added, already there, skipped)."""
    new, task_of, skipped = read_export(export, **fmt)
    if known is not None:  # Label Studio's storage sync URL-encodes the path in its links
        plain = {p: p if p in known else unquote(p) for p in new}
        new = {plain[p]: lab for p, lab in new.items()}
        task_of = {plain[p]: t for p, t in task_of.items()}
        unknown = [p for p in new if p not in known]
        if unknown:
            raise TavaalError(
                f"task {task_of[unknown[0]]} names {unknown[0]!r}, which is not an image in the pool folder"
            )
    if labels_file.is_dir():
        raise TavaalError(f"--labels {labels_file} is a folder; give the labels CSV file")
    with file_lock(labels_file):
        old = read_labels(labels_file, known) if labels_file.exists() else {}
        for p, lab in new.items():
            if p in old and old[p] != lab:
                raise TavaalError(
                    f"task {task_of[p]} labels {p!r} {lab!r} but {labels_file} says {old[p]!r}; "
                    "fix one of them, nothing was written"
                )
        added = {p: lab for p, lab in new.items() if p not in old}
        raw = labels_file.read_bytes() if labels_file.exists() else b""
        bom = raw.startswith(b"\xef\xbb\xbf")
        first = raw.decode("utf-8-sig", errors="replace").split("\n", 1)[0]
        delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
        buf = io.StringIO()
        w = RowWriter(buf, delimiter=delimiter, lineterminator="\r\n" if b"\r\n" in raw else "\n")
        w.writerow(["path", "label"])
        for p, lab in {**old, **added}.items():
            w.writerow([p, lab])
        atomic_write_bytes(labels_file, (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode())
    return len(added), len(new) - len(added), skipped


def sdk_client(url: str, flag: str, extra: str) -> tuple[Any, str]:
    """(the SDK's client for the Label Studio at ``url``, the API key): the key from
    $LABEL_STUDIO_API_KEY only, never the command line; ``flag`` and ``extra`` name what needs it
    in the errors."""
    key = os.environ.get(API_KEY_ENV)
    if not key:
        raise TavaalError(f"{flag} needs the Label Studio API key in the environment variable {API_KEY_ENV}")
    try:
        from label_studio_sdk import LabelStudio  # an extra
    except ImportError:
        raise TavaalError(f"{flag} needs the Label Studio SDK: pip install 'tavaal[{extra}]'") from None
    return LabelStudio(base_url=url, api_key=key), key


def push_tasks(url: str, project: int, tasks: list[dict[str, Any]]) -> int:
    """Import ``tasks`` into project ``project`` of the Label Studio at ``url`` through its SDK."""
    client, key = sdk_client(url, "--push", "labelstudio")
    try:
        client.projects.import_tasks(id=project, request=tasks)
    except Exception as e:  # connection refused, 401, 404: the SDK's own exception types
        raise TavaalError(
            f"pushing {len(tasks)} tasks to {url} project {project} failed: {redact(e, key)}"
        ) from None
    return len(tasks)


def redact(e: BaseException, key: str) -> str:
    """An SDK error as one short line that never carries the API key or the request's headers: the
    HTTP status when the error has one, else the first line of its message, the key masked."""
    status = getattr(e, "status_code", None)
    body = getattr(e, "body", None)
    if status is not None:
        detail = body.get("detail") if isinstance(body, dict) else None
        text = f"HTTP {status}" + (f": {detail}" if isinstance(detail, str) else "")
    else:
        text = first_line(e, None)  # cut below, with the type
    text = text.replace(key, "***") if key else text
    return f"{type(e).__name__}: {text}"[:300]


class LabelStudioLink:
    """The backend's own calls to Label Studio's API (the SDK, an extra): read the project's
    annotations (a restart catches up on what happened while it was down) and replace the
    project's predictions after a retrain. The API key comes from the environment only, and never
    appears in an error."""

    def __init__(self, url: str, project: int, image_prefix: str):
        self.client, self.key = sdk_client(url, "--label-studio", "serve")
        self.url, self.project, self.image_prefix = url, project, image_prefix

    def _tasks(self) -> list[dict[str, Any]]:
        out = []
        for t in self.client.tasks.list(project=self.project, fields="all"):
            anns = [a if isinstance(a, dict) else a.model_dump() for a in (t.annotations or [])]
            out.append({"id": t.id, "data": t.data, "annotations": anns})
        return out

    def annotations(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (annotation, task) of the project, for ``Backend.sync``."""
        try:
            return [(a, t) for t in self._tasks() for a in t["annotations"]]
        except Exception as e:  # the SDK's own errors: one line, the key masked
            raise TavaalError(
                f"reading project {self.project} at {self.url} failed: {redact(e, self.key)}"
            ) from None

    def refresh(self, predictions: dict[str, dict[str, Any]]) -> str | None:
        """Replace the project's predictions (one action deletes them all, one import adds the new
        ones); returns the model version they were written under, the project's own (Label Studio
        sorts by that version's scores), or None when it failed (logged)."""
        try:
            version = self.client.projects.get(id=self.project).model_version or None
            request = []
            for t in self._tasks():
                try:
                    path = task_image_path(t, self.image_prefix, "image")
                except TavaalError:
                    continue
                if path in predictions:
                    p = predictions[path]
                    mv = version or p["model_version"]
                    request.append(
                        {"task": t["id"], "result": p["result"], "score": p["score"], "model_version": mv}
                    )
            everything = {"all": True, "excluded": []}
            self.client.actions.create(
                id="delete_tasks_predictions", project=self.project, selected_items=everything
            )
            if request:
                self.client.projects.import_predictions(id=self.project, request=request)
            logger.info("replaced the predictions of %d tasks in project %d", len(request), self.project)
            return version
        except Exception as e:  # the SDK's own errors: one line, the key masked
            logger.warning("refreshing Label Studio's predictions failed: %s", redact(e, self.key))
            return None
