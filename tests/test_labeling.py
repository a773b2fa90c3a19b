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
    assert code == 2 and "--budget 100 is more than the 51 unlabeled images" in capsys.readouterr().err
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
    from tavaal.labeling.labels import read_labels

    f = tmp_path / "labels.csv"
    f.write_bytes(text.format(a="x/1.png", b="x/2.png").encode(encoding))
    assert read_labels(f, {"x/1.png", "x/2.png"}) == {"x/1.png": "cat", "x/2.png": "dog"}


def test_labels_not_in_utf8_are_one_clear_error(tmp_path):
    from tavaal.errors import TavaalError
    from tavaal.labeling.labels import read_labels

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


def _query(root, labels, out, *extra):
    argv = ["query", "--pool", str(root), "--labels", str(labels), "--out", str(out)]
    return main([*argv, "--preset", "digits", "--epochs", "2", "--quiet", *extra])


def test_the_query_budget_is_a_labeling_batch_or_what_is_left(tmp_path, pool, capsys, caplog):
    root, truth = pool
    paths = sorted(truth)
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in paths[:9]])
    assert _query(root, labels, tmp_path / "a.csv") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert len(list(csv.DictReader((tmp_path / "a.csv").open()))) == 50  # not the preset's 50-image protocol
    first = out.splitlines()[0]
    assert first.startswith("tavaal query: method tavaal, preset digits, 2 epochs, smallcnn, device cpu")
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in paths[:55]])
    assert _query(root, labels, tmp_path / "b.csv") == 0
    assert len(list(csv.DictReader((tmp_path / "b.csv").open()))) == 5
    assert "only 5 images are unlabeled: the query returns all of them" in caplog.text


@pytest.mark.parametrize(
    "method, name, order",
    [
        ("entropy", "entropy", "higher first"),
        ("tavaal", "d_labeled_prob", "lower first"),
        ("badge", "gradient_norm", "not the order"),
    ],
)
def test_the_csv_names_the_score_and_how_it_runs_with_the_rank(tmp_path, pool, capsys, method, name, order):
    root, truth = pool
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in sorted(truth)[:9]])
    assert _query(root, labels, tmp_path / "n.csv", "--method", method, "--budget", "6") == 0
    rows = list(csv.DictReader((tmp_path / "n.csv").open()))
    assert {r["score_name"] for r in rows} == {name} and {r["score_order"] for r in rows} == {order}
    scores = [float(r["score"]) for r in rows]
    if order == "higher first":
        assert scores == sorted(scores, reverse=True)
    elif order == "lower first":
        assert scores == sorted(scores)
    assert f"rank 1 is labeled first; score: {name}" in capsys.readouterr().out


def test_a_class_with_one_label_among_many_is_named_as_a_possible_typo(tmp_path, pool, caplog):
    root, truth = pool
    rows = [(p, truth[p]) for p in sorted(truth)[:12]]
    rows[0] = (rows[0][0], "rde")  # red, misspelled once
    labels = _labels(tmp_path / "labels.csv", rows)
    assert _query(root, labels, tmp_path / "n.csv", "--budget", "3") == 0
    assert "class 'rde' has one label while the others have several (a typo of 'red'?)" in caplog.text


def test_absolute_paths_under_the_pool_are_its_images(tmp_path, pool, capsys):
    root, truth = pool
    paths = sorted(truth)
    labels = _labels(tmp_path / "labels.csv", [(str(root / p), truth[p]) for p in paths[:9]])
    assert _query(root, labels, tmp_path / "n.csv", "--budget", "3") == 0, capsys.readouterr().err
    picked = {r["path"] for r in csv.DictReader((tmp_path / "n.csv").open())}
    assert not picked & set(paths[:9])  # the absolute rows were taken as labeled
    outside = _labels(tmp_path / "labels.csv", [(str(tmp_path / "elsewhere.png"), "red")])
    assert _query(root, outside, tmp_path / "n.csv") == 2
    assert "(paths are relative to the pool folder" in capsys.readouterr().err


def test_query_and_serve_help_show_their_own_defaults(capsys):
    for argv in (["query", "--help"], ["serve", "--help"]):
        assert main(argv) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "default: tavaal; one of badge, coreset" in text and "default: quick on a CPU" in text
        assert "--trials" not in text and "--cycles" not in text and "--keep-models" not in text
        assert "(default: 50" in text
    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "new or changed labels (default: 10)" in text and "(default: 9090)" in text
