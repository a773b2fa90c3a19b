"""Probes, serve under abuse: body limits, bulk events that do not pair up, ids that are not whole
numbers, the most recent annotation, a fully labeled pool, damaged state, Host headers."""

import json

import pytest

from probes import make_pool, refused
from tavaal.config import make_config
from tavaal.errors import TavaalError

flask = pytest.importorskip("flask")
from tavaal.labeling.backend import Backend  # noqa: E402
from tavaal.labeling.serve import host_names, make_app, url_host  # noqa: E402

PREFIX = "/data/local-files/?d="


def _task(task_id, path):
    return {"id": task_id, "data": {"image": PREFIX + path}, "project": 1}


def _ann(ann_id, task_id, choice):
    result = [{"type": "choices", "value": {"choices": [choice]}, "from_name": "choice", "to_name": "image"}]
    return {"id": ann_id, "result": result, "was_cancelled": False, "task": task_id}


def _created(ann_id, task_id, path, choice, action="ANNOTATION_CREATED"):
    return {"action": action, "annotation": _ann(ann_id, task_id, choice), "task": _task(task_id, path)}


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "pool"
    truth = make_pool(root, n=12)
    cfg = make_config("digits", {"epochs": 1, "budget": 3, "image_size": 12})
    made = []

    def make(every=100, **kw):
        b = Backend(root, tmp_path / "state", "entropy", cfg, retrain_every=every)
        made.append(b)
        return b, make_app(b, **kw).test_client()

    yield make, sorted(truth), truth, tmp_path / "state"
    for b in made:
        b.close()


def _stored(state):
    return (state / "annotations.json").read_bytes()


def test_a_body_over_the_limit_is_413(served):
    make, paths, truth, state = served
    b, client = make(max_body_mb=1)
    before = _stored(state)
    r = client.post("/webhook", data=b"{" + b" " * (2 << 20) + b"}", content_type="application/json")
    assert r.status_code == 413 and "--max-body-mb" in r.get_json()["error"]
    assert _stored(state) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "ANNOTATIONS_CREATED", "annotation": [_ann(1, 1, "red"), _ann(2, 2, "red")],
         "task": [_task(1, "img000.png")]},  # two annotations, one task
        {"action": "ANNOTATION_CREATED", "annotation": _ann("abc", 1, "red"), "task": _task(1, "img000.png")},
        {"action": "ANNOTATION_CREATED", "annotation": _ann(1.5, 1, "red"), "task": _task(1, "img000.png")},
        {"action": "ANNOTATION_CREATED", "annotation": _ann(True, 1, "red"), "task": _task(1, "img000.png")},
        {"action": "ANNOTATION_CREATED", "annotation": _ann(7, 2, "red"), "task": _task(1, "img000.png")},
        {"action": "ANNOTATIONS_CREATED", "annotation": [_ann(1, 1, "red"), _ann("x", 2, "red")],
         "task": [_task(1, "img000.png"), _task(2, "img001.png")]},  # the first is good: not stored either
        {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}, "two"]},
    ],
)  # fmt: skip
def test_bulk_events_that_do_not_pair_up_store_nothing(served, payload):
    make, paths, truth, state = served
    b, client = make()
    before = _stored(state)
    r = client.post("/webhook", json=payload)
    assert r.status_code == 422, r.get_json()
    assert "nothing was" in r.get_json()["error"] or "not a whole number" in r.get_json()["error"]
    assert _stored(state) == before and b.labels() == {}


def test_a_tasks_label_is_its_most_recent_annotation_updates_included(served):
    make, paths, truth, state = served
    b, client = make()
    p = paths[0]
    client.post("/webhook", json=_created(1, 1, p, "red"))
    client.post("/webhook", json=_created(2, 1, p, "green"))
    assert b.labels() == {p: "green"}
    client.post("/webhook", json=_created(1, 1, p, "blue", "ANNOTATION_UPDATED"))  # the older one, updated
    assert b.labels() == {p: "blue"}
    b.close()
    again, _ = make()
    assert again.labels() == {p: "blue"}  # the order of changes survives a restart


def test_a_fully_labeled_pool_stops_querying_and_health_says_so(served):
    make, paths, truth, state = served
    b, client = make(every=len(paths))
    for k, p in enumerate(paths):
        client.post("/webhook", json=_created(k + 1, k + 1, p, truth[p]))
    assert b.wait_idle(300)
    health = client.get("/health").get_json()
    assert health["complete"] is True and health["unlabeled"] == 0 and health["last_error"] is None
    assert b.ranking["picks"] == [] and b.ranking["predicted"] and b.version == 1
    client.post("/webhook", json={"action": "START_TRAINING"})
    assert b.wait_idle(300) and b.last_error is None and b.version == 2


def test_every_damaged_state_file_is_named_at_start(served):
    make, paths, truth, state = served
    b, _ = make()
    b.close()
    (state / "annotations.json").write_text("{not json")
    (state / "ranking.json").write_text(json.dumps([1, 2]))
    (state / "labeling.json").write_text(json.dumps({"classes": "red"}))
    with pytest.raises(TavaalError) as err:
        make()
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and all("state file" in ln and "Traceback" not in ln for ln in lines)
    assert {
        n for n in ("annotations.json", "ranking.json", "labeling.json") if any(n in ln for ln in lines)
    } == {
        "annotations.json",
        "ranking.json",
        "labeling.json",
    }


def test_labels_csv_is_rebuilt_from_the_annotations_at_start(served):
    make, paths, truth, state = served
    b, client = make()
    client.post("/webhook", json=_created(1, 1, paths[0], "red"))
    good = (state / "labels.csv").read_text()
    b.close()
    (state / "labels.csv").write_text("garbage")
    make()
    assert (state / "labels.csv").read_text() == good


def test_requests_naming_another_host_are_refused(served):
    make, paths, truth, state = served
    b, client = make(allowed_hosts=host_names("127.0.0.1", ("labelstudio-ml",)))
    assert client.get("/health", headers={"Host": "127.0.0.1:9090"}).status_code == 200
    assert client.get("/health", headers={"Host": "localhost:9090"}).status_code == 200
    assert client.get("/health", headers={"Host": "labelstudio-ml:9090"}).status_code == 200
    r = client.post(
        "/webhook", headers={"Host": "attacker.example:9090"}, json=_created(1, 1, paths[0], "red")
    )
    assert r.status_code == 403 and "--allow-host" in r.get_json()["error"] and b.labels() == {}
    assert host_names("127.0.0.1", ("*",)) is None
    assert "::1" in host_names("::1")


def test_an_ipv6_address_is_written_in_brackets():
    assert url_host("::1") == "[::1]" and url_host("127.0.0.1") == "127.0.0.1"


def test_serve_checks_the_method_before_reading_anything(tmp_path, capsys):
    refused(["serve", "--pool", tmp_path, "--state", tmp_path / "s", "--method", "tavall"], capsys, "tavall")
    assert not (tmp_path / "s").exists()
