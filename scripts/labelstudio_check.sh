#!/usr/bin/env bash
# A round trip with a real Label Studio (not in CI): install it into its own venv, start it on
# localhost with its default SQLite, create an image-classification project through the SDK, push
# tavaal's picks into it (tavaal query --format labelstudio --push), read them back ordered by
# prediction score, annotate a few through the API (one skipped), export the project as JSON, merge
# the export into labels.csv (tavaal labels import-labelstudio) and run the next query.
# Usage: bash scripts/labelstudio_check.sh   (needs .venv from scripts/install.sh; ~3 min + install)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/labelstudio_lib.sh
trap ls_stop EXIT
ls_install labelstudio

ls_pool 9  # 60 small images of three colours in $WORK/pool, 9 of them in $WORK/labels.csv
ls_start "$WORK/pool"

PROJECT=$("$LS_VENV/bin/python" - <<'PY'
import os
from label_studio_sdk import LabelStudio
ls = LabelStudio(base_url=os.environ["URL"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
config = """<View><Image name="image" value="$image"/>
<Choices name="choice" toName="image"><Choice value="red"/><Choice value="green"/><Choice value="blue"/></Choices></View>"""
print(ls.projects.create(title="tavaal check", label_config=config).id)
PY
)
echo "project $PROJECT created"

.venv/bin/tavaal query --pool "$WORK/pool" --labels "$WORK/labels.csv" --method entropy --preset digits \
    --epochs 3 --budget 6 --quiet --format labelstudio --out "$WORK/tasks.json" --push "$URL" --project "$PROJECT"

"$LS_VENV/bin/python" - "$PROJECT" "$WORK/tasks.json" "$WORK/export.json" <<'PY'
import json, os, sys
from label_studio_sdk import LabelStudio
project, tasks_file, export_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ls = LabelStudio(base_url=os.environ["URL"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
query = json.dumps({"filters": {"conjunction": "and", "items": []}, "ordering": ["tasks:predictions_score"]})
tasks = list(ls.tasks.list(project=project, query=query, fields="all"))
print("tasks read back, ordered by prediction score (ascending, Label Studio's lowest-first):")
for t in tasks:
    pred = t.predictions[0] if t.predictions else {}
    score = pred.get("score") if isinstance(pred, dict) else pred.score
    print(f"  task {t.id}: rank {t.data['rank']}  {t.data['tavaal_id']}  prediction score {score:.3f}")
ranks = [t.data["rank"] for t in tasks]
assert ranks == sorted(ranks), f"not in pick order: {ranks}"
desc = json.dumps({"filters": {"conjunction": "and", "items": []}, "ordering": ["-tasks:predictions_score"]})
reverse = [t.data["rank"] for t in ls.tasks.list(project=project, query=desc, fields="all")]
assert reverse == ranks[::-1], f"descending prediction score does not reverse the order: {reverse}"
print(f"the first pick comes first (lowest score first): ranks {ranks} (descending: {reverse})")
truth = {0: "red", 1: "green", 2: "blue"}
for k, t in enumerate(tasks[:4]):
    label = truth[int(t.data["tavaal_id"][3:6]) % 3]
    result = [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
    ls.annotations.create(id=t.id, result=result, was_cancelled=(k == 3))
    print(f"  annotated task {t.id} {t.data['tavaal_id']} as {label}" + (" (then skipped)" if k == 3 else ""))
data = b"".join(ls.projects.exports.download_sync(project, export_type="JSON", download_all_tasks=True))
open(export_file, "wb").write(data)
print(f"exported {len(json.loads(data))} tasks to JSON")
PY

.venv/bin/tavaal labels import-labelstudio "$WORK/export.json" --labels "$WORK/labels.csv" --pool "$WORK/pool"
echo "labels.csv now has $(($(wc -l <"$WORK/labels.csv") - 1)) labels"
.venv/bin/tavaal query --pool "$WORK/pool" --labels "$WORK/labels.csv" --method entropy --preset digits \
    --epochs 3 --budget 6 --quiet --out "$WORK/next.csv"
echo "round trip complete"
