"""Opening a saved learner never runs code; a damaged one is a one-line error."""

import io
import json
import sys
import textwrap

import pytest
import torch

from tavaal import ActiveLearner
from tavaal.errors import TavaalError


@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits):
    """A fitted, saved learner folder (copied by each test before it is tampered with)."""
    x = digits.x_train[:120].numpy()
    learner = ActiveLearner("entropy", "smallcnn", x, epochs=2, batch_size=16, lr_milestones=[], budget=5)
    learner.label(list(range(30)), digits.y_train[:30].tolist())
    learner.fit(budget=5)
    root = tmp_path_factory.mktemp("saved") / "s"
    learner.save(root)
    return root


def _copy(saved, tmp_path):
    import shutil

    dst = tmp_path / "s"
    shutil.copytree(saved, dst)
    return dst


class Boom:
    """Unpickling this runs a command that leaves a marker file: what an attacker would ship."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _one_line(e: TavaalError) -> str:
    text = str(e)
    assert "\n" not in text and "Traceback" not in text
    return text


def _write_bomb(path, key, marker):
    """A .pt file whose entry ``key`` runs a command when unpickled."""
    buf = io.BytesIO()
    torch.save({key: Boom(marker)}, buf)
    path.write_bytes(buf.getvalue())


def test_a_crafted_pool_file_is_refused_and_runs_nothing(saved, tmp_path):
    root = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    _write_bomb(root / "pool.pt", "x", marker)
    with pytest.raises(TavaalError) as err:
        ActiveLearner.load(root)
    assert "never unpickles" in _one_line(err.value)
    assert not marker.exists()


def test_a_networks_path_outside_the_folder_is_refused(saved, tmp_path):
    root = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    _write_bomb(tmp_path / "evil.pt", "model", marker)
    meta = json.loads((root / "learner.json").read_text())
    meta["fit"]["networks"] = "../evil.pt"
    (root / "learner.json").write_text(json.dumps(meta))
    with pytest.raises(TavaalError, match="networks-<hex>.pt inside its own folder") as err:
        ActiveLearner.load(root)
    _one_line(err.value)
    assert not marker.exists()


def test_a_model_path_in_learner_json_is_never_imported(saved, tmp_path, monkeypatch):
    root = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "evil_nets.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            pathlib.Path({str(marker)!r}).touch()

            def make_net(num_classes):
                pathlib.Path({str(marker)!r}).touch()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    meta = json.loads((root / "learner.json").read_text())
    meta["config"]["model"] = "evil_nets:make_net"
    meta["python_model"] = False
    (root / "learner.json").write_text(json.dumps(meta))
    with pytest.raises(TavaalError, match=r"loading never imports code") as err:
        ActiveLearner.load(root)
    _one_line(err.value)
    assert not marker.exists() and "evil_nets" not in sys.modules


@pytest.mark.parametrize(
    "damage",
    ["truncate_pool", "no_networks", "labels_out_of_range", "config_list", "bad_value"],
)
def test_a_damaged_folder_is_one_clear_error(saved, tmp_path, damage):
    root = _copy(saved, tmp_path)
    meta = json.loads((root / "learner.json").read_text())
    if damage == "truncate_pool":
        data = (root / "pool.pt").read_bytes()
        (root / "pool.pt").write_bytes(data[: len(data) // 2])
    elif damage == "no_networks":
        (root / meta["fit"]["networks"]).unlink()
    elif damage == "labels_out_of_range":
        meta["labels"].append([10**6, 3])
    elif damage == "config_list":
        meta["config"] = [1, 2]
    else:
        meta["config"]["epochs"] = -3
    (root / "learner.json").write_text(json.dumps(meta))
    with pytest.raises(TavaalError) as err:
        ActiveLearner.load(root)
    _one_line(err.value)


def test_an_untouched_folder_still_loads(saved, tmp_path):
    root = _copy(saved, tmp_path)
    assert ActiveLearner.load(root).query(5).ids


# ------------------------------------------------------------------------ labels.csv is never lost
from test_labeling import _labels  # noqa: E402
from test_labeling import pool as pool  # noqa: E402,F401 (the fixture)
from test_labelstudio import _export_task  # noqa: E402


def _import(export, labels, root):
    from tavaal.cli import main

    return main(["labels", "import-labelstudio", str(export), "--labels", str(labels), "--pool", str(root)])


def test_two_imports_at_once_both_land(tmp_path, pool):  # noqa: F811
    import os
    import subprocess

    root, truth = pool
    paths = sorted(truth)
    labels = _labels(tmp_path / "labels.csv", [(paths[0], truth[paths[0]])])
    os.chmod(labels, 0o644)
    procs = []
    for k in range(2):  # each export labels its own 10 images
        export = tmp_path / f"export{k}.json"
        mine = paths[1 + 10 * k : 11 + 10 * k]
        export.write_text(json.dumps([_export_task(i, p, truth[p]) for i, p in enumerate(mine)]))
        cmd = [sys.executable, "-m", "tavaal", "labels", "import-labelstudio", str(export), "--labels",
               str(labels), "--pool", str(root)]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "10 labels added" in out
    from tavaal.labeling.labels import read_labels

    got = read_labels(labels)
    assert len(got) == 21 and all(got[p] == truth[p] for p in got)
    assert oct(labels.stat().st_mode & 0o777) == oct(0o644)  # the file keeps its mode


@pytest.mark.parametrize(
    "choices, problem",
    [([""], "is not a class name"), ([["cat"]], "is not a class name"), ([3], "is not a class name"),
     (["a", "b"], "picks 2 choices"), ("cat", "'choices' is not a list")],
)  # fmt: skip
def test_a_choice_must_be_one_class_name(tmp_path, pool, capsys, choices, problem):  # noqa: F811
    root, truth = pool
    paths = sorted(truth)
    labels = _labels(tmp_path / "labels.csv", [(paths[0], truth[paths[0]])])
    before = labels.read_bytes()
    task = _export_task(7, paths[1], "red")
    task["annotations"][0]["result"][0]["value"]["choices"] = choices
    (tmp_path / "e.json").write_text(json.dumps([task]))
    assert _import(tmp_path / "e.json", labels, root) == 2
    err = capsys.readouterr().err
    assert "task 7" in err and problem in err and "Traceback" not in err
    assert labels.read_bytes() == before


def test_annotations_that_are_not_a_list_are_a_clear_error(tmp_path, pool, capsys):  # noqa: F811
    root, truth = pool
    task = _export_task(7, sorted(truth)[1], "red")
    task["annotations"] = "red"
    (tmp_path / "e.json").write_text(json.dumps([task]))
    assert _import(tmp_path / "e.json", tmp_path / "labels.csv", root) == 2
    err = capsys.readouterr().err
    assert "not Label Studio's JSON export" in err and "Traceback" not in err


def test_query_out_never_replaces_the_labels_an_image_or_a_folder(tmp_path, pool, capsys):  # noqa: F811
    from tavaal.cli import main

    root, truth = pool
    paths = sorted(truth)
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in paths[:9]])
    before = labels.read_bytes()
    image = (root / paths[20]).read_bytes()
    base = ["query", "--pool", str(root), "--labels", str(labels), "--preset", "digits", "--quiet"]
    for out, problem in (
        (labels, "is your --labels file"),
        (root / paths[20], "is inside the pool folder"),
        (tmp_path, "is a folder"),
    ):
        assert main([*base, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert problem in err and "Traceback" not in err
    assert labels.read_bytes() == before and (root / paths[20]).read_bytes() == image
    assert main([*base, "--labels", str(tmp_path), "--out", str(tmp_path / "n.csv")]) == 2
    assert "is a folder" in capsys.readouterr().err


# ------------------------------------------------------------- every flag's bad values: exit 2, one line
def _cli(argv, capsys):
    from tavaal.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own usage errors (exit 2)
        code = e.code
    return code, capsys.readouterr().err


def test_every_run_flag_with_bad_values_is_exit_2_without_a_traceback(tmp_path, capsys, monkeypatch):
    """Each config field through `tavaal run` with -1, 0 and a wrong type: accepted (where 0 or -1
    mean something documented) or one clear line, exit 2; never a traceback. The jobs themselves
    are skipped (run_job patched out): every check before them runs."""
    import tavaal.runner.experiment
    from tavaal.config import FIELDS

    monkeypatch.setattr(tavaal.runner.experiment, "run_job", lambda *a, **k: [])
    base = ["run", "--dataset", "moons", "--trials", "1", "--cycles", "1", "--epochs", "1", "--quiet"]
    accepted = []
    for k, (name, (_, kind)) in enumerate(FIELDS.items()):
        if name == "preset":
            continue
        flag = "--" + name.replace("_", "-")
        values = ["-1", "0", "abc"] if kind != "bool" else ["=-1", "=abc"]
        for n, v in enumerate(values):
            arg = [flag + v] if kind == "bool" else [flag, v]
            code, err = _cli([*base, *arg, "--out", str(tmp_path / f"{k}-{n}")], capsys)
            assert "Traceback" not in err, (name, v, err)
            assert code in (0, 2), (name, v, code, err)
            if code == 2:
                assert len(err.strip().splitlines()) == 1, (name, v, err)
            else:
                accepted.append((name, v))
    # Only documented meanings of 0 / -1 (and free text where text is the value) are accepted.
    numeric_ok = {("subset_size", "0"), ("seed", "0"), ("image_size", "0"), ("crop_pad", "-1"),
                  ("crop_pad", "0"), ("crop_size", "0"), ("weight_decay", "0"), ("eta", "0"), ("lam", "0"),
                  ("beta", "0"), ("margin", "0"), ("momentum", "0"), ("dropout", "0"),
                  ("vae_batch_size", "0"), ("ranker_freeze_fraction", "0"),
                  ("ranker_detach_fraction", "0"), ("threads", "0")}  # fmt: skip
    text_ok = {"data_dir", "train_dir", "test_dir", "feature_layers", "embedding_layer", "lr_milestones"}
    unexpected = [(f, v) for f, v in accepted if (f, v) not in numeric_ok and f not in text_ok]
    assert not unexpected, unexpected


@pytest.mark.parametrize(
    "content, problem",
    [(b"\x80\x81\xfe binary", "is not UTF-8 text"), (b"- 1\n- 2\n", "must hold a mapping"),
     (b"epochs: [1, 2\n", "is not valid YAML")],
)  # fmt: skip
def test_bad_config_files_are_one_line(tmp_path, capsys, content, problem):
    (tmp_path / "c.yaml").write_bytes(content)
    code, err = _cli(["run", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and problem in err and "Traceback" not in err


def _finished_folder(tmp_path, moons):
    from conftest import tiny_config
    from tavaal.runner import run_experiment

    cfg = tiny_config("moons", cycles=2)
    run_experiment(cfg, ["random"], tmp_path / "r", ds=moons)
    return cfg, tmp_path / "r"


@pytest.mark.parametrize("damage", ["config_list", "state_without_labeled", "records_disagree"])
def test_a_damaged_results_folder_is_one_clear_error(tmp_path, moons, damage):
    from tavaal.runner import run_experiment

    cfg, root = _finished_folder(tmp_path, moons)
    state = root / "jobs" / "random-trial0" / "state.json"
    if damage == "config_list":
        (root / "config.yaml").write_text("- 1\n- 2\n")
    elif damage == "state_without_labeled":
        s = json.loads(state.read_text())
        del s["pool"]["labeled"]
        state.write_text(json.dumps(s))
    else:  # one record dropped: the pool holds more labels than the records make
        s = json.loads(state.read_text())
        s["records"] = s["records"][:1]
        state.write_text(json.dumps(s))
    with pytest.raises(TavaalError) as err:
        run_experiment(cfg.replace(cycles=3), ["random"], root, ds=moons) if damage != "config_list" else (
            run_experiment(cfg, ["random"], root, ds=moons)
        )
    _one_line(err.value)


def test_disk_full_is_exit_1_and_loses_nothing(tmp_path, pool, capsys, monkeypatch):  # noqa: F811
    import errno
    import os

    import tavaal.atomic

    root, truth = pool
    paths = sorted(truth)
    labels = _labels(tmp_path / "labels.csv", [(paths[0], truth[paths[0]])])
    before = labels.read_bytes()
    (tmp_path / "e.json").write_text(json.dumps([_export_task(1, paths[1], truth[paths[1]])]))

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tavaal.atomic.os, "fsync", full)
    code, err = _cli(
        ["labels", "import-labelstudio", str(tmp_path / "e.json"), "--labels", str(labels)], capsys
    )
    assert code == 1 and "no space left on device while writing" in err and "nothing was lost" in err
    assert "Traceback" not in err and labels.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_nan_in_a_pool_and_bad_query_sizes_are_clear_errors(digits):
    import numpy as np

    x = digits.x_train[:60].float().numpy()
    x[[3, 17]] = np.nan
    with pytest.raises(TavaalError, match=r"NaN or infinite values in 2 rows \(first: 3, 17\)"):
        ActiveLearner("random", "smallcnn", x)
    with pytest.raises(TavaalError, match="holds object values, not numbers"):
        ActiveLearner("random", "smallcnn", np.array([[1, "a"]] * 10, dtype=object))
    good = ActiveLearner("random", "smallcnn", digits.x_train[:60].numpy(), epochs=1)
    good.label(list(range(20)), digits.y_train[:20].tolist())
    for n in (0, -3, 2.7, True, "5"):
        with pytest.raises(TavaalError, match=r"query\(n\): n must be a positive whole number"):
            good.query(n)
    with pytest.raises(TavaalError, match=r"fit\(budget\): budget must be a positive whole number"):
        good.fit(budget=-5)
    good.fit()
    bad_x = digits.x_train[:10].float().numpy()
    bad_x[0, 0, 0, 0] = np.inf
    with pytest.raises(TavaalError, match="NaN or infinite"):
        good.evaluate(bad_x, digits.y_train[:10].tolist())


def test_label_studio_errors_never_echo_the_key():
    from tavaal.labeling.labelstudio import redact

    class ApiError(Exception):
        status_code = 401
        body = {"detail": "Invalid token."}

        def __str__(self):
            return "headers: {'Authorization': 'Token s3cr3t-key'}, status_code: 401"

    text = redact(ApiError(), "s3cr3t-key")
    assert text == "ApiError: HTTP 401: Invalid token." and "s3cr3t" not in text
    plain = redact(ConnectionError("could not reach http://x with Token s3cr3t-key\nmore"), "s3cr3t-key")
    assert "s3cr3t" not in plain and "\n" not in plain
