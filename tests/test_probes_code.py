"""Probes, data is not code: a results folder, a saved learner and serve's state are read without
importing or downloading anything they name; a saved learner's files stay inside its folder; a
learner damaged by hand is one line, never a traceback or a silent wrong label."""

import json
import shutil
import sys
import textwrap

import pytest
import torch

from probes import cli, one_line, refused
from tavaal import ActiveLearner
from tavaal.errors import TavaalError


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module that leaves a marker file when imported: what a shared folder could name."""
    marker = tmp_path / "pwned"
    (tmp_path / "evil_nets.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            pathlib.Path({str(marker)!r}).touch()

            def make_net(num_classes):
                return None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop("evil_nets", None)


def _with_config(results, tmp_path, **changes):
    import yaml

    root = tmp_path / "r"
    shutil.copytree(results, root)
    saved = yaml.safe_load((root / "config.yaml").read_text())
    saved["config"].update(changes)
    (root / "config.yaml").write_text(yaml.safe_dump(saved))
    for state in (root / "jobs").glob("*/state.json"):  # selection-eval has something to fill
        s = json.loads(state.read_text())
        for r in s["records"]:
            r.pop("selection_accuracy", None)
        state.write_text(json.dumps(s))
    return root


def test_selection_eval_never_imports_the_model_a_folder_names(results, tmp_path, evil, capsys):
    root = _with_config(results, tmp_path, model="evil_nets:make_net")
    err = refused(["selection-eval", root, "--quiet"], capsys, "pass --model evil_nets:make_net")
    assert "never imports code" in err
    assert not evil.exists() and "evil_nets" not in sys.modules


@pytest.mark.parametrize("command", [["summary"], ["summary", "--format", "csv"], ["report"]])
def test_summary_and_report_import_nothing_a_folder_names(results, tmp_path, evil, capsys, command):
    pytest.importorskip("matplotlib")
    root = _with_config(results, tmp_path, model="evil_nets:make_net")
    code, err = cli([command[0], root, *command[1:]], capsys)
    assert code == 0, err
    assert not evil.exists() and "evil_nets" not in sys.modules


def test_selection_eval_never_downloads_because_a_folder_says_so(results, tmp_path, capsys, monkeypatch):
    import tavaal.data.vision as vision

    asked = []

    def load_cifar(name, root, download):
        asked.append(download)
        raise TavaalError("not here")

    monkeypatch.setattr(vision, "load_cifar", load_cifar)
    root = _with_config(results, tmp_path, dataset="cifar10", download=True)
    cli(["selection-eval", root, "--quiet"], capsys)
    assert asked == [False]


# ------------------------------------------------------------- saved learners
@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits):
    x = digits.x_train[:80].numpy()
    learner = ActiveLearner("entropy", "smallcnn", x, epochs=1, batch_size=16, lr_milestones=[], budget=5)
    learner.label(list(range(20)), digits.y_train[:20].tolist())
    learner.fit(budget=5)
    root = tmp_path_factory.mktemp("saved") / "s"
    learner.save(root)
    return root


def _copy(saved, tmp_path):
    dst = tmp_path / "s"
    shutil.copytree(saved, dst)
    return dst


@pytest.mark.parametrize("name", ["pool.pt", "learner.json", "networks"])
def test_a_saved_learners_file_that_links_out_of_its_folder_is_refused(saved, tmp_path, name):
    root = _copy(saved, tmp_path)
    if name == "networks":
        name = json.loads((root / "learner.json").read_text())["fit"]["networks"]
    outside = tmp_path / f"elsewhere-{name}"
    (root / name).rename(outside)
    (root / name).symlink_to(outside)
    with pytest.raises(TavaalError, match="outside the saved learner's folder") as err:
        ActiveLearner.load(root)
    one_line(str(err.value))


def _edit(meta, damage):
    if damage == "negative_label_row":
        meta["labels"][0][0] = -1  # would silently label the last sample
    elif damage == "negative_trial":
        meta["trial"] = -2
    elif damage == "more_ids_than_rows":
        meta["ids"] = meta["ids"] + list(range(10**4, 10**4 + 50))
    elif damage == "fewer_ids_than_rows":
        meta["ids"] = meta["ids"][:10]
    elif damage == "candidates_out_of_range":
        meta["fit"]["candidates"][0] = 10**9
    elif damage == "label_row_twice":
        meta["labels"].append(list(meta["labels"][0]))
    elif damage == "cycle_as_text":
        meta["cycle"] = "3"
    elif damage == "n_labeled_too_large":
        meta["fit"]["n_labeled"] = 10**6


@pytest.mark.parametrize(
    "damage",
    [
        "negative_label_row",
        "negative_trial",
        "more_ids_than_rows",
        "fewer_ids_than_rows",
        "candidates_out_of_range",
        "label_row_twice",
        "cycle_as_text",
        "n_labeled_too_large",
        "nan_in_pool",
    ],
)
def test_a_learner_damaged_by_hand_is_one_line(saved, tmp_path, damage):
    root = _copy(saved, tmp_path)
    meta = json.loads((root / "learner.json").read_text())
    if damage == "nan_in_pool":
        pool = torch.load(root / "pool.pt", weights_only=True)
        pool["x"] = pool["x"].float()
        pool["x"][3] = float("nan")
        torch.save(pool, root / "pool.pt")
    _edit(meta, damage)
    (root / "learner.json").write_text(json.dumps(meta))
    with pytest.raises(TavaalError, match="damaged or was edited by hand") as err:
        ActiveLearner.load(root)
    one_line(str(err.value))
