import csv

import numpy as np
import pytest
from PIL import Image

from tavaal.cli import main


@pytest.fixture
def pool(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "pool"
    (root / "batch1").mkdir(parents=True)
    colors = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    truth = {}
    for i in range(60):
        name = list(colors)[i % 3]
        arr = np.clip(np.array(colors[name]) + rng.integers(-30, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
        rel = f"batch1/img{i:03d}.png" if i % 2 else f"img{i:03d}.png"
        Image.fromarray(arr).save(root / rel)
        truth[rel] = name
    return root, truth


def _labels(path, rows, header="path,label"):
    path.write_text(header + "\n" + "".join(f"{p},{lab}\n" for p, lab in rows))
    return path


ARGS = ["--preset", "digits", "--epochs", "2", "--budget", "5", "--quiet"]


@pytest.mark.parametrize("method", ["random", "entropy", "tavaal"])
def test_query_suggests_unlabeled_images(tmp_path, pool, capsys, method):
    root, truth = pool
    labeled = sorted(truth)[:9]
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in labeled])
    out = tmp_path / "next.csv"
    code = main(
        ["query", "--pool", str(root), "--labels", str(labels), "--method", method, "--out", str(out), *ARGS]
    )
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    paths = [r["path"] for r in rows]
    assert len(set(paths)) == 5 and set(paths) <= set(truth) and not set(paths) & set(labeled)
    again = tmp_path / "again.csv"
    main(
        [
            "query",
            "--pool",
            str(root),
            "--labels",
            str(labels),
            "--method",
            method,
            "--out",
            str(again),
            *ARGS,
        ]
    )
    assert again.read_text() == out.read_text()  # deterministic for the same labels and seed


@pytest.mark.parametrize(
    "rows,header,needle",
    [
        ([], "file,label", "line 1 must be the header 'path,label'"),
        ([("nope.png", "red")], "path,label", "line 2 names 'nope.png', which is not an image"),
        ([("img000.png", "")], "path,label", "line 2 must be 'path,label' with both filled in"),
        ([("img000.png", "red"), ("img000.png", "blue")], "path,label", "line 3 labels 'img000.png' 'blue'"),
    ],
)
def test_malformed_labels_file_is_one_clear_line(tmp_path, pool, capsys, rows, header, needle):
    root, _ = pool
    labels = _labels(tmp_path / "labels.csv", rows, header)
    code = main(
        ["query", "--pool", str(root), "--labels", str(labels), "--out", str(tmp_path / "n.csv"), *ARGS]
    )
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err and not (tmp_path / "n.csv").exists()


def test_budget_larger_than_the_pool_and_missing_files(tmp_path, pool, capsys):
    root, truth = pool
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in sorted(truth)[:9]])
    code = main(
        [
            "query",
            "--pool",
            str(root),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "n.csv"),
            "--preset",
            "digits",
            "--budget",
            "100",
            "--quiet",
        ]
    )
    assert code == 2 and "budget 100 is larger than the 51 unlabeled candidates" in capsys.readouterr().err
    code = main(["query", "--pool", str(tmp_path / "none"), "--labels", str(labels), *ARGS])
    assert code == 2 and "pool folder" in capsys.readouterr().err
    code = main(["query", "--pool", str(root), "--labels", str(tmp_path / "missing.csv"), *ARGS])
    assert code == 2 and "create it with the header 'path,label'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "encoding,text",
    [
        ("utf-8-sig", "path,label\r\n{a},cat\r\n{b},dog\r\n"),  # Excel's "CSV UTF-8": BOM + CRLF
        ("utf-8", "path;label\n{a};cat\n{b};dog\n"),  # a ';' locale
        ("utf-8", "path\tlabel\n{a}\tcat\n{b}\tdog\n"),  # tab-separated export
    ],
)
def test_labels_as_spreadsheets_write_them(tmp_path, encoding, text):
    from tavaal.labeling import read_labels

    f = tmp_path / "labels.csv"
    f.write_bytes(text.format(a="x/1.png", b="x/2.png").encode(encoding))
    assert read_labels(f, {"x/1.png", "x/2.png"}) == {"x/1.png": "cat", "x/2.png": "dog"}


def test_labels_not_in_utf8_are_one_clear_error(tmp_path):
    from tavaal.errors import TavaalError
    from tavaal.labeling import read_labels

    f = tmp_path / "labels.csv"
    f.write_bytes("path,label\nx/1.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(TavaalError, match="is not UTF-8 text"):
        read_labels(f, {"x/1.png"})


def test_a_first_query_without_two_classes_picks_at_random_with_a_warning(tmp_path, pool, capsys):
    """Cold start: with no labels, or one class, the method cannot rank; the picks are random."""
    root, truth = pool
    labels = _labels(tmp_path / "labels.csv", [("img000.png", "red")])
    out = tmp_path / "n.csv"
    code = main(["query", "--pool", str(root), "--labels", str(labels), "--out", str(out), *ARGS])
    err = capsys.readouterr().err
    assert code == 0 and "cannot rank the pool yet: the labels hold a single class ('red')" in err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and all(r["score"] == "" and r["predicted"] == "" for r in rows)
    assert "img000.png" not in {r["path"] for r in rows}
