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


def test_a_crafted_pool_file_is_refused_and_runs_nothing(saved, tmp_path):
    root = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"x": Boom(marker)}, buf)
    (root / "pool.pt").write_bytes(buf.getvalue())
    with pytest.raises(TavaalError) as err:
        ActiveLearner.load(root)
    assert "never unpickles" in _one_line(err.value)
    assert not marker.exists()


def test_a_networks_path_outside_the_folder_is_refused(saved, tmp_path):
    root = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"model": Boom(marker)}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
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
