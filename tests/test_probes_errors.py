"""Probes, no tracebacks: deep nesting, devices and folders given as files, results folders
damaged by hand, full disks and denied permissions in every writer, names that need quoting, and
library messages passed on with care. Each is exit 2 (1 for the machine), one line, nothing lost."""

import csv
import errno
import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from probes import MOONS, QUERY, cli, digest, export_task, is_device, make_pool, one_line, refused

DEEP = "[" * 100_000 + "]" * 100_000


def _inputs(tmp_path, root, labels):
    """Argument lists that take each kind of input file or folder, with {} where it goes."""
    return {
        "config": ["run", "--config", "{}", "--out", tmp_path / "o"],
        "labels": ["query", "--pool", root, "--labels", "{}", "--out", tmp_path / "next.csv", *QUERY],
        "export": ["labels", "import-labelstudio", "{}", "--labels", labels, "--pool", root],
        "pool": ["query", "--pool", "{}", "--labels", labels, "--out", tmp_path / "next.csv", *QUERY],
        "results": ["summary", "{}"],
        "selection-eval": ["selection-eval", "{}", "--quiet"],
        "serve pool": ["serve", "--pool", "{}", "--state", tmp_path / "state"],
    }


def _fill(argv, value):
    return [value if a == "{}" else a for a in argv]


# ------------------------------------------------------------------ deep nesting and odd paths
@pytest.mark.parametrize("kind", ["config", "export"])
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_deeply_nested_files_are_one_line(tmp_path, folder_pool, capsys, kind, suffix):
    root, _, labels = folder_pool
    deep = tmp_path / f"deep{suffix}"
    deep.write_text(DEEP)
    before = digest(labels)
    refused(_fill(_inputs(tmp_path, root, labels)[kind], deep), capsys, "nested too deeply")
    assert digest(labels) == before


def test_a_deeply_nested_results_file_and_job_state_are_one_line(results, tmp_path, capsys):
    root = tmp_path / "r"
    shutil.copytree(results, root)
    (root / "results.jsonl").write_text(DEEP + "\n")
    refused(["summary", root], capsys, "nested too deeply")
    shutil.copy(results / "results.jsonl", root / "results.jsonl")
    state = sorted(root.glob("jobs/*/state.json"))[0]
    state.write_text(DEEP)
    refused(["selection-eval", root, "--quiet"], capsys, "nested too deeply")


def test_a_deeply_nested_saved_learner_is_one_line(tmp_path, digits):
    from tavaal import ActiveLearner
    from tavaal.errors import TavaalError

    x = digits.x_train[:40].numpy()
    learner = ActiveLearner("random", "smallcnn", x, epochs=1, batch_size=16, lr_milestones=[])
    learner.save(tmp_path / "s")
    (tmp_path / "s" / "learner.json").write_text(DEEP)
    with pytest.raises(TavaalError, match="nested too deeply") as err:
        ActiveLearner.load(tmp_path / "s")
    one_line(str(err.value))


@pytest.mark.parametrize(
    "kind", ["config", "labels", "export", "pool", "results", "selection-eval", "serve pool"]
)
@pytest.mark.parametrize("what", ["/dev/null", "/dev/zero", "folder", "file", "missing"])
def test_devices_folders_and_missing_paths_are_one_line(tmp_path, folder_pool, capsys, kind, what):
    root, _, labels = folder_pool
    if what.startswith("/dev/") and not is_device(what):
        pytest.skip(f"this machine's {what} is not a device")
    value = {
        "folder": tmp_path / "afolder",
        "file": tmp_path / "afile.txt",
        "missing": tmp_path / "nothing" / "here",
    }.get(what, what)
    (tmp_path / "afolder").mkdir()
    (tmp_path / "afile.txt").write_text("path,label\n")
    argv = _inputs(tmp_path, root, labels)[kind]
    if what == "folder" and kind in ("pool", "serve pool", "results", "selection-eval"):
        pytest.skip("a folder is what this argument takes")
    if what == "file" and kind in ("config", "labels", "export"):
        pytest.skip("a file is what this argument takes")
    before, pool_before = digest(labels), digest(root)
    code, err = cli(_fill(argv, value), capsys)
    assert code == 2, err
    one_line(err)
    assert digest(labels) == before and digest(root) == pool_before


# ------------------------------------------------------------------ results folders damaged by hand
def _damage(root: Path, damage: str) -> None:
    state = sorted(root.glob("jobs/*/state.json"))[0]
    s = json.loads(state.read_text())
    for r in s["records"]:
        r.pop("selection_accuracy", None)
    first = s["records"][0]
    if damage == "index_out_of_range":
        first["selected"][-1] = 10**9
    elif damage == "negative_index":
        first["initial"][-1] = -5
    elif damage == "index_as_text":
        first["selected"] = "abc"
    elif damage == "index_as_float":
        first["selected"] = [1.5] * len(first["selected"])
    elif damage == "sample_twice":
        first["selected"] = [first["initial"][0]] * len(first["selected"])
    elif damage == "records_not_a_list":
        s["records"] = {"a": 1}
    elif damage == "records_of_text":
        s["records"] = ["x", "y"]
    elif damage == "n_labeled_as_text":
        first["n_labeled"] = "10"
    elif damage == "unknown_method":
        s["method"] = "nosuch"
        for r in s["records"]:
            r["method"] = "nosuch"
    state.write_text(json.dumps(s))
    if damage == "state_is_a_folder":
        state.unlink()
        state.mkdir()
    elif damage == "state_is_binary":
        state.write_bytes(bytes(range(256)) * 2)
    elif damage == "state_is_empty":
        state.write_text("")
    elif damage == "config_is_a_folder":
        (root / "config.yaml").unlink()
        (root / "config.yaml").mkdir()
    elif damage == "results_is_a_folder":
        (root / "results.jsonl").unlink()
        (root / "results.jsonl").mkdir()
    elif damage == "jobs_is_a_file":
        shutil.rmtree(root / "jobs")
        (root / "jobs").write_text("x")


@pytest.mark.parametrize(
    "damage",
    [
        "index_out_of_range",
        "negative_index",
        "index_as_text",
        "index_as_float",
        "sample_twice",
        "records_not_a_list",
        "records_of_text",
        "n_labeled_as_text",
        "unknown_method",
        "state_is_a_folder",
        "state_is_binary",
        "state_is_empty",
        "config_is_a_folder",
        "results_is_a_folder",
        "jobs_is_a_file",
    ],
)
def test_selection_eval_of_a_folder_damaged_by_hand_is_one_line(results, tmp_path, capsys, damage):
    root = tmp_path / "r"
    shutil.copytree(results, root)
    _damage(root, damage)
    before = digest(root)
    refused(["selection-eval", root, "--quiet"], capsys, "")
    assert digest(root) == before  # nothing half-filled


# ------------------------------------------------------------------ disks and permissions
DISK = [errno.ENOSPC, errno.EDQUOT, errno.EFBIG]


def _fail_writes(monkeypatch, code):
    import tavaal.atomic

    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tavaal.atomic.os, "fsync", fail)


def _writers(tmp_path, root, labels, results):
    """(argv, files that must stay byte-identical) for each command that writes."""
    paths = sorted(p.name for p in root.iterdir())
    export = tmp_path / "e.json"
    export.write_text(json.dumps([export_task(1, paths[20], "red")]))
    (tmp_path / "next.csv").write_text("rank,path,score,predicted,label\n")
    return {
        "labels import": (
            ["labels", "import-labelstudio", export, "--labels", labels, "--pool", root],
            labels,
        ),
        "query": (
            ["query", "--pool", root, "--labels", labels, "--out", tmp_path / "next.csv", *QUERY],
            None,
        ),
        "compare": (["compare", "--methods", "random", *MOONS, "--out", tmp_path / "new"], None),
        "report": (["report", results, "--out", tmp_path / "rep"], None),
    }


@pytest.mark.parametrize("code", DISK, ids=[errno.errorcode[c] for c in DISK])
@pytest.mark.parametrize("writer", ["labels import", "query", "compare", "report"])
def test_every_disk_error_in_every_writer_is_exit_1_and_one_line(
    tmp_path, folder_pool, results, capsys, monkeypatch, code, writer
):
    if writer == "report":
        pytest.importorskip("matplotlib")
    root, _, labels = folder_pool
    argv, _ = _writers(tmp_path, root, labels, results)[writer]
    if writer == "query":  # the decode cache is not what this probe is about: decode it first
        assert (
            cli(
                ["query", "--pool", root, "--labels", labels, "--out", tmp_path / "warm.csv", *QUERY], capsys
            )[0]
            == 0
        )
    before = {p: digest(p) for p in (labels, tmp_path / "next.csv", root) if p.exists()}
    _fail_writes(monkeypatch, code)
    got, err = cli(argv, capsys)
    assert got == 1, err
    one_line(err)
    assert "Traceback" not in err
    assert {p: digest(p) for p in before} == before
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("code", DISK, ids=[errno.errorcode[c] for c in DISK])
def test_a_disk_error_while_saving_a_learner_keeps_the_saved_one(tmp_path, digits, monkeypatch, code):
    from tavaal import ActiveLearner
    from tavaal.atomic import DiskFull

    x = digits.x_train[:40].numpy()
    learner = ActiveLearner("random", "smallcnn", x, epochs=1, batch_size=16, lr_milestones=[])
    learner.save(tmp_path / "s")
    before = digest(tmp_path / "s")
    learner.label([0, 1], digits.y_train[:2].tolist())
    _fail_writes(monkeypatch, code)
    with pytest.raises(DiskFull) as err:
        learner.save(tmp_path / "s")
    one_line(str(err.value))
    assert digest(tmp_path / "s") == before and ActiveLearner.load(tmp_path / "s").labeled_ids == []


@pytest.mark.parametrize("code", DISK, ids=[errno.errorcode[c] for c in DISK])
def test_a_decode_cache_that_cannot_be_written_is_a_warning(tmp_path, folder_pool, capsys, monkeypatch, code):
    import tavaal.data.cache

    root, _, labels = folder_pool
    real_write = tavaal.data.cache.atomic_write_bytes

    def fail(path, data):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(tavaal.data.cache, "atomic_write_bytes", fail)
    got, err = cli(
        ["query", "--pool", root, "--labels", labels, "--out", tmp_path / "next.csv", *QUERY], capsys
    )
    assert got == 0, err
    assert "could not keep the decoded images in the cache" in err and "Traceback" not in err
    assert len((tmp_path / "next.csv").read_text().splitlines()) == 4
    monkeypatch.setattr(tavaal.data.cache, "atomic_write_bytes", real_write)


def _deny(monkeypatch, target: Path):
    """Reading ``target`` fails as it does for a user without the read bit (root is never denied)."""
    real_read = Path.read_bytes
    real_access = os.access

    def read_bytes(self):
        if Path(os.path.realpath(self)) == Path(os.path.realpath(target)):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    def access(path, mode, *a, **kw):
        if mode & os.R_OK and os.path.realpath(path) == os.path.realpath(target):
            return False
        return real_access(path, mode, *a, **kw)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("kind", ["config", "labels", "export"])
@pytest.mark.parametrize("layer", ["access", "read"])
def test_permission_denied_on_a_read_is_one_line(tmp_path, folder_pool, capsys, monkeypatch, kind, layer):
    root, truth, labels = folder_pool
    files = {
        "config": tmp_path / "c.yaml",
        "labels": labels,
        "export": tmp_path / "e.json",
    }
    files["config"].write_text("epochs: 1\n")
    files["export"].write_text(json.dumps([export_task(1, sorted(truth)[20], "red")]))
    target = files[kind]
    if layer == "access":
        _deny(monkeypatch, target)
    else:  # the file became unreadable after the check: the read itself fails
        real_read = Path.read_bytes

        def read_bytes(self):
            if os.path.realpath(self) == os.path.realpath(target):
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real_read(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    argv = _fill(_inputs(tmp_path, root, labels)[kind], target)
    if kind == "config":
        argv = ["query", "--pool", root, "--labels", labels, "--out", tmp_path / "n.csv", "--config", target]
    before = digest(labels)
    code, err = cli(argv, capsys)
    assert code == 2, err
    one_line(err)
    assert "permission denied" in err.lower()
    assert digest(labels) == before


def test_permission_denied_on_a_write_is_exit_2_and_loses_nothing(tmp_path, folder_pool, capsys, monkeypatch):
    import tavaal.atomic

    root, truth, labels = folder_pool
    export = tmp_path / "e.json"
    export.write_text(json.dumps([export_task(1, sorted(truth)[20], "red")]))
    before = digest(labels)

    def deny(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(tavaal.atomic.os, "replace", deny)
    err = refused(["labels", "import-labelstudio", export, "--labels", labels, "--pool", root], capsys, "")
    assert "permission denied" in err.lower()
    assert digest(labels) == before and not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------ a user's model, names that need quoting
def test_a_user_model_that_does_not_fit_the_pool_is_found_at_construction(digits):
    import torch.nn as nn

    from tavaal import ActiveLearner
    from tavaal.errors import TavaalError

    x = digits.x_train[:40].numpy()  # 1 x 8 x 8 images
    wrong_input = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    with pytest.raises(TavaalError) as err:
        ActiveLearner("random", wrong_input, x, classes=list(range(10)), feature_layers=["0"], epochs=1)
    one_line(str(err.value))
    assert "shape" in str(err.value) or "mat1" in str(err.value)


ODD = ["a,b.png", 'say "cheese".png', "cr\rin.png", "lf\nin.png", " lead.png", "semi;colon.png"]
ODD_CLASSES = ["red, dark", 'the "green" one', "blue"]


def test_names_with_commas_quotes_and_line_breaks_round_trip(tmp_path, monkeypatch, capsys):
    from tavaal.labeling.labels import read_labels

    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "pool"
    truth = make_pool(root, n=24)
    for k, name in enumerate(ODD):
        (root / sorted(truth)[k]).rename(root / name)
    rows = [(name, ODD_CLASSES[k % 3]) for k, name in enumerate(ODD)]
    export = tmp_path / "e.json"
    # Label Studio's storage sync writes the path URL-encoded; our own tasks carry it as it is.
    tasks = [export_task(k, quote(p) if k % 2 else p, c) for k, (p, c) in enumerate(rows, start=1)]
    export.write_text(json.dumps(tasks))
    labels = tmp_path / "labels.csv"
    code, err = cli(["labels", "import-labelstudio", export, "--labels", labels, "--pool", root], capsys)
    assert code == 0, err
    assert read_labels(labels, set(ODD)) == dict(rows)
    code, err = cli(
        ["query", "--pool", root, "--labels", labels, "--out", tmp_path / "next.csv", *QUERY], capsys
    )
    assert code == 0, err
    picked = list(csv.DictReader(io.StringIO((tmp_path / "next.csv").read_text(), newline="")))
    assert len(picked) == 3 and all((root / r["path"]).is_file() for r in picked)
    assert not {r["path"] for r in picked} & set(ODD)


# ------------------------------------------------------------------ library messages
def test_unsafe_advice_and_terminal_escapes_are_not_passed_on():
    from tavaal.errors import first_line

    torch_says = (
        "Weights only load failed. This file can still be loaded, to do so you have two options, do those "
        "steps only if you trust the source of the checkpoint. (1) In PyTorch 2.6, we changed the default "
        "value of the `weights_only` argument in `torch.load` from `False` to `True`. Re-running "
        "`torch.load` with `weights_only` set to `False` will likely succeed, but it can result in "
        "arbitrary code execution."
    )
    said = first_line(Exception(torch_says), None)
    assert said.startswith("Weights only load failed.") and "False" not in said and "arbitrary" not in said
    assert first_line(Exception("\x1b]0;owned\x07bad \x1b[31mred\x1b[0m file\x9b2J")) == "bad red file"


def test_a_crafted_saved_pool_is_refused_without_the_unsafe_advice(tmp_path, digits):
    import pickle

    from tavaal import ActiveLearner
    from tavaal.errors import TavaalError

    x = digits.x_train[:40].numpy()
    ActiveLearner("random", "smallcnn", x, epochs=1, batch_size=16, lr_milestones=[]).save(tmp_path / "s")
    import torch

    buf = io.BytesIO()
    torch.save({"x": os.getcwd, "y": 1}, buf, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    (tmp_path / "s" / "pool.pt").write_bytes(buf.getvalue())
    with pytest.raises(TavaalError) as err:
        ActiveLearner.load(tmp_path / "s")
    one_line(str(err.value))
    assert "weights_only" not in str(err.value) and "trust" not in str(err.value)


def test_a_file_name_with_terminal_escapes_does_not_reach_the_terminal(tmp_path, folder_pool, capsys):
    root, _, labels = folder_pool
    (root / "\x1b[2J\x1b]0;owned\x07broken.png").write_bytes(b"not an image at all")
    code, err = cli(
        ["query", "--pool", root, "--labels", labels, "--out", tmp_path / "n.csv", *QUERY], capsys
    )
    assert "\x1b" not in err and "\x07" not in err, err
    if code != 0:
        one_line(err)
