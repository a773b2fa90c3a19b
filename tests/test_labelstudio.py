"""The Label Studio round trip on fixtures in its documented formats (task import with predictions;
JSON export with annotations), through the command line."""

import csv
import json

import pytest

from tavaal.cli import main
from test_labeling import ARGS, _labels
from test_labeling import pool as pool  # noqa: F401 (the fixture)


def _export_task(task_id, path, choice=None, cancelled=False, annotations=None):
    """One task as Label Studio's JSON export writes it (Export > JSON)."""
    if annotations is None:
        result = (
            []
            if choice is None
            else [
                {
                    "id": "a1",
                    "type": "choices",
                    "value": {"choices": [choice]},
                    "origin": "manual",
                    "to_name": "image",
                    "from_name": "choice",
                }
            ]
        )
        annotations = [
            {
                "id": 100 + task_id,
                "completed_by": 1,
                "result": result,
                "was_cancelled": cancelled,
                "ground_truth": False,
                "created_at": "2026-11-27T10:00:00.000000Z",
                "updated_at": "2026-11-27T10:00:00.000000Z",
                "lead_time": 2.5,
                "task": task_id,
                "project": 1,
            }
        ]
    return {
        "id": task_id,
        "annotations": annotations,
        "drafts": [],
        "predictions": [],
        "data": {"image": f"/data/local-files/?d={path}", "tavaal_id": path, "rank": 1, "score": 0.5},
        "meta": {},
        "created_at": "2026-11-27T09:00:00.000000Z",
        "updated_at": "2026-11-27T10:00:00.000000Z",
        "project": 1,
    }


def test_query_exports_label_studio_tasks_in_pick_order(tmp_path, pool, capsys):  # noqa: F811
    root, truth = pool
    labeled = sorted(truth)[:9]
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in labeled])
    out = tmp_path / "tasks.json"
    argv = ["query", "--pool", str(root), "--labels", str(labels), "--method", "entropy", "--out", str(out)]
    code = main([*argv, "--format", "labelstudio", "--image-prefix", "https://host/img/", *ARGS])
    assert code == 0, capsys.readouterr().err
    tasks = json.loads(out.read_text())
    assert len(tasks) == 5
    for rank, t in enumerate(tasks, start=1):
        assert (
            t["data"]["rank"] == rank and t["data"]["image"] == "https://host/img/" + t["data"]["tavaal_id"]
        )
        assert t["data"]["tavaal_id"] in truth and t["data"]["tavaal_id"] not in labeled
        (pred,) = t["predictions"]
        (res,) = pred["result"]
        assert res["type"] == "choices" and res["from_name"] == "choice" and res["to_name"] == "image"
        assert res["value"]["choices"][0] in {"red", "green", "blue"}
    # Label Studio shows the lowest prediction score first: the method's first pick comes first,
    # and no score reads as full confidence.
    by_score = sorted(tasks, key=lambda t: t["predictions"][0]["score"])
    assert [t["data"]["rank"] for t in by_score] == [1, 2, 3, 4, 5]
    assert [t["predictions"][0]["score"] for t in tasks] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    scores = [t["data"]["score"] for t in tasks]
    assert scores == sorted(scores, reverse=True)  # entropy: the highest first


def test_import_merges_annotations_and_ignores_skips(tmp_path, pool, capsys):  # noqa: F811
    root, truth = pool
    paths = sorted(truth)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(("\ufeffpath,label\r\n" + f"{paths[0]},{truth[paths[0]]}\r\n").encode("utf-8"))
    export = tmp_path / "export.json"
    tasks = [
        _export_task(1, paths[1], truth[paths[1]]),
        _export_task(2, paths[2], truth[paths[2]], cancelled=True),  # skipped by the annotator
        _export_task(3, paths[3], annotations=[]),  # not annotated yet
        _export_task(4, paths[0], truth[paths[0]]),  # already in labels.csv, same label
        _export_task(5, paths[5], truth[paths[5]]),
    ]
    export.write_text(json.dumps(tasks))
    code = main(["labels", "import-labelstudio", str(export), "--labels", str(labels), "--pool", str(root)])
    assert code == 0, capsys.readouterr().err
    assert "2 labels added" in capsys.readouterr().out
    rows = list(csv.reader(labels.open(encoding="utf-8-sig", newline="")))
    assert rows == [["path", "label"], *[[p, truth[p]] for p in (paths[0], paths[1], paths[5])]]
    raw = labels.read_bytes()  # the spreadsheet's byte-order mark and CRLF line ends are kept
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == 4 and raw.count(b"\n") == 4
    # The merged file feeds the next query.
    out = tmp_path / "next.csv"
    main(
        [
            "query",
            "--pool",
            str(root),
            "--labels",
            str(labels),
            "--out",
            str(out),
            "--method",
            "random",
            *ARGS,
        ]
    )
    picked = [r["path"] for r in csv.DictReader(out.open())]
    assert len(picked) == 5 and not set(picked) & {paths[0], paths[1], paths[5]}


@pytest.mark.parametrize(
    "tasks,needle",
    [
        ([_export_task(7, "img000.png", "blue")], "task 7 labels 'img000.png' 'blue' but"),
        (
            [
                {
                    **_export_task(8, "img002.png"),
                    "annotations": [
                        _export_task(8, "img002.png", "red")["annotations"][0],
                        _export_task(8, "img002.png", "green")["annotations"][0],
                    ],
                }
            ],
            "task 8 (img002.png): its annotations disagree",
        ),
        ([{"image": "x.png", "choice": "red"}], "is not Label Studio's JSON export"),
        ([_export_task(9, "nope.png", "red")], "task 9 names 'nope.png', which is not an image"),
    ],
)
def test_import_conflicts_are_clear_errors_and_write_nothing(tmp_path, pool, capsys, tasks, needle):  # noqa: F811
    root, truth = pool
    labels = _labels(tmp_path / "labels.csv", [("img000.png", truth["img000.png"])])
    before = labels.read_bytes()
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    code = main(["labels", "import-labelstudio", str(export), "--labels", str(labels), "--pool", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert labels.read_bytes() == before


def test_import_of_a_file_that_is_not_json(tmp_path, capsys):
    export = tmp_path / "export.json"
    export.write_text("id,image,choice\n1,a.png,red\n")
    code = main(["labels", "import-labelstudio", str(export), "--labels", str(tmp_path / "l.csv")])
    assert code == 2 and "is not valid JSON" in capsys.readouterr().err and not (tmp_path / "l.csv").exists()


def test_push_needs_the_api_key_from_the_environment(tmp_path, pool, capsys, monkeypatch):  # noqa: F811
    root, truth = pool
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in sorted(truth)[:9]])
    argv = ["query", "--pool", str(root), "--labels", str(labels), "--out", str(tmp_path / "t.json"), *ARGS]
    assert main([*argv, "--push", "http://localhost:1"]) == 2
    assert "--push sends Label Studio tasks: add --format labelstudio" in capsys.readouterr().err
    assert main([*argv, "--format", "labelstudio", "--push", "http://localhost:1", "--project", "1"]) == 2
    assert "LABEL_STUDIO_API_KEY" in capsys.readouterr().err
