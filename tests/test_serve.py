"""``tavaal serve``: the Label Studio ML backend driven through its endpoints with the payloads
Label Studio sends (the ML API connector's /setup and /predict requests, the webhook events), bad
ones included, and restarted on the same state folder."""

import json

import pytest

from tavaal.config import make_config
from tavaal.errors import TavaalError
from test_labeling import pool as pool  # noqa: F401 (the fixture)

flask = pytest.importorskip("flask")
from tavaal.labeling.backend import Backend  # noqa: E402
from tavaal.labeling.serve import make_app  # noqa: E402

PREFIX = "/data/local-files/?d="
CONFIG = """<View><Image name="image" value="$image"/>
<Choices name="choice" toName="image">
<Choice value="red"/><Choice value="green"/><Choice value="blue"/></Choices></View>"""


def _task(task_id, path):
    return {
        "id": task_id,
        "data": {"image": PREFIX + path},
        "project": 1,
        "annotations": [],
        "predictions": [],
    }


def _event(action, ann_id, task_id, path, choice=None, cancelled=False):
    value = {"choices": [choice]}
    result = [{"id": "r1", "type": "choices", "value": value, "from_name": "choice", "to_name": "image"}]
    result = [] if choice is None else result
    ann = {"id": ann_id, "result": result, "was_cancelled": cancelled, "task": task_id, "project": 1}
    return {"action": action, "annotation": ann, "task": _task(task_id, path), "project": {"id": 1}}


@pytest.fixture
def backend(tmp_path, pool):  # noqa: F811
    root, truth = pool
    cfg = make_config("digits", {"epochs": 2, "budget": 5, "image_size": 12})
    made = []

    def make(**kw):
        b = Backend(root, tmp_path / "state", "entropy", cfg, retrain_every=kw.pop("every", 4), **kw)
        made.append(b)
        return b

    yield make, root, truth, tmp_path / "state"
    for b in made:
        b.close()


def test_health_setup_and_predict_before_any_training(backend):
    make, root, truth, _ = backend
    client = make_app(make()).test_client()
    assert client.get("/health").get_json()["status"] == "UP"
    setup_request = {
        "project": "1.1700000000",
        "schema": CONFIG,
        "hostname": "http://localhost:8080",
        "access_token": "x",
        "extra_params": None,
    }  # what Label Studio's ML API connector sends
    setup = client.post("/setup", json=setup_request)
    assert setup.status_code == 200 and setup.get_json()["model_version"] == "tavaal-entropy"
    paths = sorted(truth)[:3]
    tasks = [_task(i, p) for i, p in enumerate(paths)]
    params = {"login": None, "password": None, "context": None}
    r = client.post(
        "/predict", json={"tasks": tasks, "project": "1.1700000000", "label_config": CONFIG, "params": params}
    )
    results = r.get_json()["results"]
    assert r.status_code == 200 and len(results) == 3
    assert all(x["result"] == [] and x["score"] == 1.0 for x in results)  # nothing ranked yet


def test_annotations_retrain_and_the_first_pick_sorts_first(backend):
    make, root, truth, state = backend
    b = make(every=6)
    client = make_app(b).test_client()
    client.post("/setup", json={"project": "1.1", "schema": CONFIG})
    paths = sorted(truth)
    for k, p in enumerate(paths[:6]):
        r = client.post("/webhook", json=_event("ANNOTATION_CREATED", 100 + k, k, p, truth[p]))
        assert r.status_code == 201
    assert b.wait_idle(300) and b.ranking["version"] == 1 and b.last_error is None
    picks = b.ranking["picks"]
    assert len(picks) == 5 and not set(picks) & set(paths[:6])
    tasks = [_task(k, p) for k, p in enumerate(paths)]
    results = client.post("/predict", json={"tasks": tasks, "label_config": CONFIG}).get_json()["results"]
    by_score = [p for _, p in sorted(zip([x["score"] for x in results], paths), key=lambda t: t[0])]
    assert by_score[:5] == picks  # Label Studio's order (lowest score first) is the pick order
    assert all(x["result"][0]["value"]["choices"][0] in {"red", "green", "blue"} for x in results)
    assert results[paths.index(picks[0])]["model_version"] == "tavaal-entropy"
    assert client.get("/health").get_json()["version"] == 1
    # labels.csv is what `tavaal query --labels` reads
    rows = (state / "labels.csv").read_text().splitlines()
    assert rows[0] == "path,label" and len(rows) == 7
    assert (state / "learner" / "learner.json").is_file()


def test_update_and_delete_change_the_label(backend):
    make, root, truth, state = backend
    b = make(every=100)
    client = make_app(b).test_client()
    client.post("/setup", json={"schema": CONFIG})
    p = sorted(truth)[0]
    client.post("/webhook", json=_event("ANNOTATION_CREATED", 7, 0, p, "red"))
    client.post("/webhook", json=_event("ANNOTATION_UPDATED", 7, 0, p, "blue"))
    assert b.labels() == {p: "blue"}
    client.post(
        "/webhook", json=_event("ANNOTATION_CREATED", 8, 1, sorted(truth)[1], "green", cancelled=True)
    )
    assert b.labels() == {p: "blue"}  # a skipped task labels nothing
    r = client.post(
        "/webhook", json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 7}], "project": {"id": 1}}
    )
    assert r.status_code == 201 and b.labels() == {}
    assert json.loads((state / "annotations.json").read_text()) == {
        "8": {"task": 1, "path": sorted(truth)[1], "label": None}
    }


@pytest.mark.parametrize(
    "route, payload, status, message",
    [
        ("/predict", {"tasks": [_task(5, "nope.png")]}, 422, "not an image of the pool"),
        ("/webhook", "EVENT_UNKNOWN_TASK", 422, "not an image of the pool"),
        ("/webhook", "EVENT_BAD_CHOICE", 422, "'purple' is not in the labeling config"),
        ("/webhook", {"annotation": {"id": 1}}, 400, "needs 'action'"),
        ("/predict", {"tasks": "all"}, 400, "needs 'tasks'"),
        ("/setup", {"schema": "<View><Image"}, 400, "not valid XML"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_lose_nothing(backend, route, payload, status, message):
    make, root, truth, state = backend
    b = make(every=100)
    client = make_app(b).test_client()
    client.post("/setup", json={"schema": CONFIG})
    first = sorted(truth)[0]
    client.post("/webhook", json=_event("ANNOTATION_CREATED", 1, 0, first, truth[first]))
    if payload == "EVENT_UNKNOWN_TASK":
        payload = _event("ANNOTATION_CREATED", 2, 9, "nope.png", "red")
    elif payload == "EVENT_BAD_CHOICE":
        payload = _event("ANNOTATION_CREATED", 2, 1, sorted(truth)[1], "purple")
    r = client.post(route, json=payload)
    assert r.status_code == status and message in r.get_json()["error"]
    assert b.labels() == {first: truth[first]}
    assert json.loads((state / "annotations.json").read_text())["1"]["label"] == truth[first]


def test_malformed_json_is_a_400(backend):
    make, *_ = backend
    client = make_app(make()).test_client()
    r = client.post("/webhook", data="{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON object" in r.get_json()["error"]


def test_a_restart_loses_no_label_and_reruns_an_interrupted_retrain(backend):
    make, root, truth, state = backend
    b = make(every=4)
    b.stopped.set()  # the retrain never runs: as if the process was killed before it could
    b.worker.join()
    client = make_app(b).test_client()
    client.post("/setup", json={"schema": CONFIG})
    paths = sorted(truth)
    for k, p in enumerate(paths[:6]):
        client.post("/webhook", json=_event("ANNOTATION_CREATED", k, k, p, truth[p]))
    with pytest.raises(TavaalError, match="another tavaal serve \\(pid \\d+\\) is using the state folder"):
        make()
    b.close()
    again = make(every=100)
    assert again.labels() == {p: truth[p] for p in paths[:6]}
    assert again.wait_idle(300) and again.ranking["labels"] == again.labels()  # the due retrain ran
    assert again.config.classes == ("red", "green", "blue")


def test_a_restart_keeps_the_retrain_rule(backend):
    """Three changes with --retrain-every 4, a restart: no retrain below the rule, and the count
    goes on from three, so the fourth change retrains."""
    make, root, truth, state = backend
    b = make(every=4)
    client = make_app(b).test_client()
    paths = sorted(truth)
    for k, p in enumerate(paths[:3]):
        client.post("/webhook", json=_event("ANNOTATION_CREATED", k, k, p, truth[p]))
    b.close()
    again = make(every=4)
    assert again.wait_idle(60) and "labels" not in again.ranking and again.changes == 3
    client = make_app(again).test_client()
    client.post("/webhook", json=_event("ANNOTATION_CREATED", 3, 3, paths[3], truth[paths[3]]))
    assert again.wait_idle(300) and len(again.ranking["labels"]) == 4


def test_sync_takes_in_what_changed_while_the_backend_was_down(backend):
    """On a restart with --label-studio, the project's annotations replace the backend's own:
    new ones are added, deleted ones dropped, a bad one left out with a warning."""
    make, root, truth, state = backend
    b = make(every=100)
    b.use_config(CONFIG)
    paths = sorted(truth)
    b.webhook(_event("ANNOTATION_CREATED", 1, 0, paths[0], truth[paths[0]]))
    b.webhook(_event("ANNOTATION_CREATED", 2, 1, paths[1], truth[paths[1]]))
    project = [
        (_event("", 2, 1, paths[1], truth[paths[1]])["annotation"], _task(1, paths[1])),
        (_event("", 3, 2, paths[2], truth[paths[2]])["annotation"], _task(2, paths[2])),
        (_event("", 4, 3, paths[3], "purple")["annotation"], _task(3, paths[3])),
    ]
    assert b.sync(project) == 2  # paths[0] deleted, paths[2] added
    assert b.labels() == {paths[1]: truth[paths[1]], paths[2]: truth[paths[2]]}
    assert json.loads((state / "annotations.json").read_text()).keys() == {"2", "3"}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--retrain-every", "0"], "--retrain-every: 0 is outside 1..1e+06"),
        (["--label-studio", "http://localhost:1"], "--label-studio URL and --project ID go together"),
        (["--label-studio", "http://localhost:1", "--project", "1"], "API key in the environment variable"),
    ],
)
def test_serve_command_errors_are_one_line(tmp_path, pool, capsys, monkeypatch, extra, message):  # noqa: F811
    from tavaal.cli import main

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    root, _ = pool
    assert main(["serve", "--pool", str(root), "--state", str(tmp_path / "st"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_label_studio_errors_never_carry_the_key(monkeypatch, caplog):
    """The SDK's errors (here one that quotes the token) reach the log and the user as one line,
    the key masked."""
    from tavaal.labeling.labelstudio import LabelStudioLink

    key = "secret-token-123"

    class Failing:
        def list(self, **kw):
            raise RuntimeError(f"401 Unauthorized for Authorization: Token {key}")

        get = list

    link = LabelStudioLink.__new__(LabelStudioLink)  # no SDK needed: its client is replaced
    link.key, link.url, link.project, link.image_prefix = key, "http://localhost:1", 3, PREFIX
    link.client = type("Client", (), {"tasks": Failing(), "projects": Failing()})()
    with caplog.at_level("WARNING", logger="tavaal"):
        assert link.refresh({}) is None
    assert "refreshing Label Studio's predictions failed" in caplog.text
    assert key not in caplog.text and "***" in caplog.text
    with pytest.raises(TavaalError) as e:
        link.annotations()
    assert key not in str(e.value) and "reading project 3" in str(e.value)


def test_retrains_are_logged_start_end_and_failure(backend, caplog):
    make, root, truth, _ = backend
    b = make(every=3)
    client = make_app(b).test_client()
    paths = sorted(truth)
    with caplog.at_level("INFO", logger="tavaal"):
        for k, p in enumerate(paths[:3]):
            client.post("/webhook", json=_event("ANNOTATION_CREATED", 100 + k, k, p, truth[p]))
        assert b.wait_idle(300)
    assert "retraining on 3 labels (entropy, 3 changes)" in caplog.text
    assert "retrained in" in caplog.text and "on 3 labels: version 1, first pick" in caplog.text


def test_the_command_shows_the_retrain_log_unless_quiet(tmp_path, pool, monkeypatch):  # noqa: F811
    import logging

    from tavaal.cli import main

    root, _ = pool
    seen = []

    def fake_serve(b, *a, **k):
        seen.append(logging.getLogger("tavaal").level)
        b.close()

    monkeypatch.setattr("tavaal.labeling.serve.serve", fake_serve)
    logger = logging.getLogger("tavaal")
    try:
        for extra, level in (([], logging.INFO), (["--quiet"], logging.NOTSET)):
            logger.setLevel(logging.NOTSET)
            argv = [
                "serve",
                "--pool",
                str(root),
                "--state",
                str(tmp_path / f"state{len(seen)}"),
                "--preset",
                "digits",
            ]
            assert main([*argv, *extra]) == 0
            assert seen[-1] == level
    finally:
        logger.setLevel(logging.NOTSET)
