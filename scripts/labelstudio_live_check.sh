#!/usr/bin/env bash
# The live loop against a real Label Studio (not in CI): start Label Studio on localhost, import a
# pool of 60 images as tasks, start `tavaal serve` and connect it to the project as its ML backend,
# annotate through the API (Label Studio sends the webhooks), see the backend retrain and the
# project's order by prediction score change, kill the backend (SIGKILL), annotate while it is down,
# restart it on the same state, and see that no label was lost.
# Usage: bash scripts/labelstudio_live_check.sh   (needs .venv from scripts/install.sh; ~3 min + install)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/labelstudio_lib.sh
ML_PORT=${ML_PORT:-9091}
ML_PID=
cleanup() {
    local rc=$?
    [ "$rc" -ne 0 ] && [ -f "$WORK/serve.log" ] && { echo "--- tavaal serve's log:"; tail -20 "$WORK/serve.log"; }
    [ -n "$ML_PID" ] && kill "$ML_PID" 2>/dev/null
    ls_stop
}
trap cleanup EXIT
ls_install serve

ls_pool 0  # 60 small images of three colours in $WORK/pool, none labeled

# The backend listens on localhost, which Label Studio refuses by default (SSRF protection); this
# check runs both on one machine, so it turns that off for its own throwaway instance.
export SSRF_PROTECTION_ENABLED=false ML_BLOCK_LOCAL_IP=false
ls_start "$WORK/pool"
export ML="http://localhost:$ML_PORT" STATE="$WORK/state"
export EXPECTED="$WORK/expected_labels.json"

PROJECT=$("$LS_VENV/bin/python" - <<'PY'
import os
from label_studio_sdk import LabelStudio
ls = LabelStudio(base_url=os.environ["URL"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
config = """<View><Image name="image" value="$image"/>
<Choices name="choice" toName="image"><Choice value="red"/><Choice value="green"/><Choice value="blue"/></Choices></View>"""
p = ls.projects.create(title="tavaal live check", label_config=config)
tasks = [{"data": {"image": f"/data/local-files/?d=img{i:03d}.png"}} for i in range(60)]
ls.projects.import_tasks(id=p.id, request=tasks)
print(p.id)
PY
)
echo "project $PROJECT created with 60 tasks"

start_backend() {
    .venv/bin/tavaal serve --pool "$WORK/pool" --state "$STATE" --method entropy --preset digits \
        --epochs 3 --budget 6 --retrain-every 4 --port "$ML_PORT" \
        --label-studio "$URL" --project "$PROJECT" >>"$WORK/serve.log" 2>&1 &
    ML_PID=$!
    for _ in $(seq 60); do curl -sf "$ML/health" >/dev/null && return 0; sleep 1; done
    tail -20 "$WORK/serve.log"; exit 1
}
start_backend
echo "tavaal serve is up on $ML: $(curl -s "$ML/health")"

"$LS_VENV/bin/python" - "$PROJECT" <<'PY'
import json, os, sys, time, urllib.request
from label_studio_sdk import LabelStudio

project = int(sys.argv[1])
ls = LabelStudio(base_url=os.environ["URL"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
ml = ls.ml.create(project=project, url=os.environ["ML"], title="tavaal")
print(f"ML backend {ml.id} connected to project {project}")
truth = {0: "red", 1: "green", 2: "blue"}
tasks = {t.data["image"].split("=")[-1]: t.id for t in ls.tasks.list(project=project, fields="all")}


def health():
    return json.load(urllib.request.urlopen(os.environ["ML"] + "/health"))


def wait_version(v):
    for _ in range(300):
        h = health()
        if h["version"] == v and not h["training"]:
            return h
        time.sleep(1)
    raise SystemExit(f"the backend did not reach version {v}: {health()}")


def order():
    """The project's tasks as Label Studio orders them by prediction score, ascending (a click on
    the column in the Data Manager sets this ordering)."""
    q = json.dumps({"filters": {"conjunction": "and", "items": []}, "ordering": ["tasks:predictions_score"]})
    out = []
    for t in ls.tasks.list(project=project, query=q, fields="all"):
        pred = t.predictions[0] if t.predictions else None
        score = pred.get("score") if isinstance(pred, dict) else getattr(pred, "score", None)
        out.append((t.data["image"].split("=")[-1], score))
    return out


def ranking():
    return json.load(open(os.path.join(os.environ["STATE"], "ranking.json")))


def annotate(paths):
    for p in paths:
        label = truth[int(p[3:6]) % 3]
        result = [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
        ls.annotations.create(id=tasks[p], result=result)
        print(f"  annotated {p} as {label}")


t0 = time.perf_counter()
annotate([f"img{i:03d}.png" for i in (0, 1, 2, 3)])
h = wait_version(1)
r1 = ranking()
print(f"retrained: version {h['version']} on {h['labels']} labels, {time.perf_counter() - t0:.1f} s after the "
      f"first annotation (fit + query {r1['fit_and_query_seconds']} s, refresh {r1.get('refresh_seconds')} s)")
print(f"Label Studio: project model_version {ls.projects.get(id=project).model_version!r}, "
      f"ML backend model_version {ls.ml.get(id=ml.id).model_version!r}")
default = [t.data["image"].split("=")[-1] for t in ls.tasks.list(project=project)][:6]
print(f"Label Studio's default order (no sort): {default}")
first = order()
view = ls.views.create(project=project, data={"title": "by score", "ordering": ["tasks:predictions_score"],
                                              "filters": {"conjunction": "and", "items": []}})
in_view = [t.data["image"].split("=")[-1] for t in ls.tasks.list(project=project, view=view.id)][:6]
print(f"a Data Manager tab sorted by prediction score (what a click on the column sets): {in_view}")
assert in_view == r1["picks"], in_view
print("order by prediction score (ascending):", [f"{p} {s}" for p, s in first[:8]])
assert [p for p, _ in first[:6]] == r1["picks"], (first[:6], r1["picks"])
print(f"the first pick comes first: {r1['picks']}")

t0 = time.perf_counter()
annotate(r1["picks"][:4])
h = wait_version(2)
r2 = ranking()
second = order()
print(f"retrained: version {h['version']} on {h['labels']} labels, {time.perf_counter() - t0:.1f} s")
print("order by prediction score (ascending):", [f"{p} {s}" for p, s in second[:8]])
assert [p for p, _ in second[:6]] == r2["picks"] and r2["picks"] != r1["picks"]
print(f"the ranking changed: {r1['picks']} -> {r2['picks']}")
assert len(r2["labels"]) == 8, r2["labels"]
open(os.environ["EXPECTED"], "w").write(json.dumps(r2["labels"]))
PY

echo "killing the backend (SIGKILL), annotating 2 tasks while it is down, starting it again on the same state"
kill -9 "$ML_PID"; wait "$ML_PID" 2>/dev/null || true
"$LS_VENV/bin/python" - "$PROJECT" <<'PY'
import json, os, sys
from label_studio_sdk import LabelStudio
project = int(sys.argv[1])
ls = LabelStudio(base_url=os.environ["URL"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
tasks = {t.data["image"].split("=")[-1]: t.id for t in ls.tasks.list(project=project)}
path = os.environ["EXPECTED"]
expected = json.load(open(path))
for p in ("img050.png", "img051.png"):
    label = {0: "red", 1: "green", 2: "blue"}[int(p[3:6]) % 3]
    result = [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
    ls.annotations.create(id=tasks[p], result=result)  # the webhook to the dead backend fails
    expected[p] = label
    print(f"  annotated {p} as {label} (backend down)")
json.dump(expected, open(path, "w"))
PY
start_backend
.venv/bin/python - <<'PY'
import json, os, urllib.request
state = os.environ["STATE"]
expected = json.load(open(os.environ["EXPECTED"]))
health = json.load(urllib.request.urlopen(os.environ["ML"] + "/health"))
rows = open(os.path.join(state, "labels.csv")).read().splitlines()[1:]
kept = dict(r.split(",", 1) for r in rows)
print(f"after the restart: {health['labels']} labels, ranking version {health['version']}")
assert kept == expected and health["labels"] == len(expected), (kept, expected)
print("no label lost")
PY
echo "live loop check complete"
