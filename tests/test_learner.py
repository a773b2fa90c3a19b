"""``tavaal.ActiveLearner``: the library's labeling session, on data and models a user brings."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tavaal import ActiveLearner, TavaalError
from tavaal.strategies import STRATEGIES
from user_nets import make_net

FAST = dict(
    preset="digits", epochs=2, vae_epochs=1, batch_size=16, latent_dim=8, mc_samples=3, lr_milestones=()
)
NAMES = [f"digit-{k}" for k in range(10)]


@pytest.fixture(scope="module")
def data(digits):
    """Digits as a user would have them: NHWC uint8 arrays, string ids, class names."""
    x = digits.x_train[:300].permute(0, 2, 3, 1).numpy()
    y = [NAMES[k] for k in digits.y_train[:300].tolist()]
    ids = [f"img-{i:04d}" for i in range(300)]
    return x, y, ids


def _learner(data, method="entropy", model="smallcnn", **kw):
    x, _, ids = data
    return ActiveLearner(method, model, x, ids=ids, **{**FAST, **kw})


def _label_first(learner, data, n=30):
    _, y, ids = data
    learner.label(ids[:n], y[:n])


def test_query_answers_ids_scores_and_ranks(data):
    learner = _learner(data)
    _label_first(learner, data)
    q = learner.query(8)
    assert len(q.ids) == len(set(q.ids)) == 8 and q.ranks == list(range(1, 9))
    assert not set(q.ids) & set(learner.labeled_ids) and set(q.ids) <= set(q.candidate_ids)
    assert len(q.candidate_ids) == len(q.candidate_scores) == 80  # the subset: 10 x the query size
    score = dict(zip(q.candidate_ids, q.candidate_scores))
    assert q.scores == [score[i] for i in q.ids] and q.scores == sorted(q.scores, reverse=True)
    assert learner.query(8).ids == q.ids  # no new labels: the same fitted networks, the same answer
    again = _learner(data)
    _label_first(again, data)
    assert again.query(8).ids == q.ids


def test_a_round_labels_and_moves_on(data):
    _, y, ids = data
    learner = _learner(data, method="tavaal")
    _label_first(learner, data)
    q = learner.query(10)
    pos = {i: k for k, i in enumerate(ids)}
    learner.label(q.ids, [y[pos[i]] for i in q.ids])
    assert learner.stale and learner.cycle == 1 and len(learner.labeled_ids) == 40
    q2 = learner.query(10)
    assert not set(q2.ids) & set(learner.labeled_ids)
    assert set(learner.classes) <= set(NAMES) and learner.classes == sorted(learner.classes)


@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_every_method_with_a_users_module_instance(data, method):
    """An nn.Module the package does not ship, tapped by layer names, runs every method."""
    learner = _learner(
        data, method=method, model=make_net(10), feature_layers=["1", "3"], embedding_layer="6"
    )
    _label_first(learner, data)
    q = learner.query(5)
    assert len(set(q.ids)) == 5 and not set(q.ids) & set(learner.labeled_ids)
    assert learner.spec.label == "python:torch.nn.modules.container.Sequential"


def test_a_zero_argument_factory_and_a_torch_dataset(digits):
    x = digits.x_train[:200].float() / 255  # float images in [0, 1], as ToTensor gives
    dataset = torch.utils.data.TensorDataset(x, digits.y_train[:200])
    learner = ActiveLearner(
        "coreset", lambda: make_net(10), dataset, feature_layers=["1", "3"], classes=list(range(10)), **FAST
    )
    assert learner.ids == list(range(200))
    learner.label(range(40), digits.y_train[:40].tolist())
    q = learner.query(5)
    assert all(isinstance(i, int) for i in q.ids) and len(set(q.ids)) == 5
    acc = learner.evaluate(digits.x_test[:100].float() / 255, digits.y_test[:100])
    logits = learner.model.eval()(
        (digits.x_test[:100].float() / 255 - torch.tensor(learner.ds.mean)) / torch.tensor(learner.ds.std)
    )[0]
    assert acc == pytest.approx((logits.argmax(1) == digits.y_test[:100]).float().mean().item())


def test_evaluate_maps_class_names(data, digits):
    learner = _learner(data)
    _label_first(learner, data, 60)
    learner.fit()
    x_test = digits.x_test[:50].numpy()
    names = [NAMES[k] for k in digits.y_test[:50].tolist()]
    assert 0.0 <= learner.evaluate(x_test, names) <= 1.0
    with pytest.raises(TavaalError, match="are not among the classes"):
        learner.evaluate(x_test, ["cat"] * 50)
    with pytest.raises(TavaalError, match="one label per sample"):
        learner.evaluate(x_test, names[:3])


def test_cold_start_falls_back_to_random_with_a_warning(data, caplog):
    learner = _learner(data, method="tavaal")
    with caplog.at_level(logging.WARNING, logger="tavaal"):
        q = learner.query(6)
    assert q.cold_start and q.scores == [None] * 6 and "no sample is labeled yet" in caplog.text
    _, y, ids = data
    one = [i for i, lab in zip(ids, y) if lab == NAMES[3]][:5]
    learner.label(one, [NAMES[3]] * 5)
    q = learner.query(6)
    assert q.cold_start and not set(q.ids) & set(one) and "a single class ('digit-3')" in caplog.text
    strict = _learner(data, method="tavaal", cold_start="error")
    strict.label(one, [NAMES[3]] * 5)
    with pytest.raises(TavaalError, match="cannot query with tavaal: the labels hold a single class"):
        strict.query(6)


def test_bad_ids_and_labels_are_clear_errors(data):
    x, y, ids = data
    with pytest.raises(TavaalError, match="id 'a' is given twice"):
        ActiveLearner("random", "smallcnn", x[:3], ids=["a", "b", "a"], **FAST)
    with pytest.raises(TavaalError, match="ids has 2 entries but the pool has 3"):
        ActiveLearner("random", "smallcnn", x[:3], ids=["a", "b"], **FAST)
    learner = _learner(data)
    with pytest.raises(TavaalError, match=r"1 unknown id\(s\), e.g. \['nope'\]"):
        learner.label(["nope"], ["digit-1"])
    with pytest.raises(TavaalError, match="ids given twice in one call"):
        learner.label([ids[0], ids[0]], [y[0], y[0]])
    learner.label([ids[0]], ["digit-1"])
    learner.label([ids[0]], ["digit-1"])  # the same label again is fine
    with pytest.raises(TavaalError, match="is labeled 'digit-1' already; refusing to relabel it 'digit-2'"):
        learner.label([ids[0]], ["digit-2"])
    fixed = _learner(data, classes=NAMES)
    with pytest.raises(TavaalError, match="label 'cat' is not a class"):
        fixed.label([ids[0]], ["cat"])
    assert learner.labeled_ids == [ids[0]]  # nothing half-applied


def test_bad_models_are_clear_errors(data):
    x, _, ids = data
    with pytest.raises(TavaalError, match="outputs shape .* but the data has 10 classes"):
        learner = ActiveLearner(
            "random", make_net(3), x, ids=ids, feature_layers=["1"], classes=NAMES, **FAST
        )
        learner.build_model()
    # A wrong layer name fails when the learner is built, with the closest names and the top blocks.
    with pytest.raises(TavaalError, match=r"layers '99' \(did you mean 0, 1, 2\?\)|layers '99' are not"):
        ActiveLearner("random", make_net(10), x, ids=ids, feature_layers=["1", "99"], classes=NAMES, **FAST)
    from torchvision.models import resnet18

    with pytest.raises(TavaalError) as err:
        ActiveLearner(
            "random", resnet18(num_classes=10), x, ids=ids, feature_layers=["layer1", "layr4"], **FAST
        )
    text = str(err.value)
    assert "'layr4' (did you mean layer4" in text and "top-level blocks are: conv1, bn1, relu" in text
    assert "layer4.1.bn2" not in text and len(text) < 400
    with pytest.raises(TavaalError, match="module 'no_such_pkg.nets' does not import"):
        ActiveLearner(
            "random", "no_such_pkg.nets:make", x, feature_layers=["a"], classes=NAMES, **FAST
        ).build_model()
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(TavaalError, match="mcdropout needs dropout layers"):
        ActiveLearner("mcdropout", plain, x, feature_layers=["1"], classes=NAMES, **FAST).build_model()


def _round(learner, data, n):
    _, y, ids = data
    pos = {i: k for k, i in enumerate(ids)}
    q = learner.query(n)
    learner.label(q.ids, [y[pos[i]] for i in q.ids])


@pytest.mark.parametrize("when", ["fitted", "stale"])
def test_save_and_load_give_the_same_next_query(tmp_path, data, when):
    """Saved after a fit (the networks, VAE and D included, are reloaded) or after new labels (the
    reload trains again from the same seeds): the next query is the same."""
    learner = _learner(data, method="tavaal")
    _label_first(learner, data)
    _round(learner, data, 10)
    if when == "fitted":
        learner.fit(budget=10)
    learner.save(tmp_path / "s")
    expected = learner.query(10)
    loaded = ActiveLearner.load(tmp_path / "s")
    assert (
        loaded.labels == learner.labels
        and loaded.cycle == learner.cycle
        and loaded.stale == (when == "stale")
    )
    if when == "fitted":
        assert torch.equal(
            loaded.networks()["selector"].disc.state_dict()["net.0.weight"],
            learner.networks()["selector"].disc.state_dict()["net.0.weight"],
        )
    got = loaded.query(10)
    assert got.ids == expected.ids and np.array_equal(got.candidate_scores, expected.candidate_scores)


def test_a_reloaded_session_in_another_process_gives_the_same_query(tmp_path, data):
    learner = _learner(data, method="tavaal")
    _label_first(learner, data)
    learner.fit(budget=5)
    learner.save(tmp_path / "s")
    expected = learner.query(5).ids
    code = (
        "import json, sys; from tavaal import ActiveLearner; "
        "print(json.dumps(ActiveLearner.load(sys.argv[1]).query(5).ids))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s")], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected


def test_training_targets_follow_the_labels_as_classes_are_sorted_in(data):
    """Labels live in the pool; the dataset's targets are derived from them. A class that sorts
    before the ones seen renumbers them, and every target follows."""
    x, _, ids = data
    learner = ActiveLearner("random", "smallcnn", x, ids=ids, **FAST)
    learner.label(ids[:2], ["zebra", "yak"])
    assert learner.ds.y_train[:2].tolist() == [1, 0] and learner.classes == ["yak", "zebra"]
    learner.label(ids[2:4], ["ant", "zebra"])
    assert learner.classes == ["ant", "yak", "zebra"]
    assert learner.ds.y_train[:4].tolist() == [2, 1, 0, 2] and (learner.ds.y_train[4:] == -1).all()
    assert learner.labels == dict(zip(ids[:4], ["zebra", "yak", "ant", "zebra"]))
    assert learner.labeled_ids == ids[:4]


def test_a_learner_saved_in_format_1_loads_and_a_newer_format_is_refused(tmp_path, data):
    """Format 1 named the VAE and D ``adversarial``; they load as the ``selector``."""
    learner = _learner(data, method="vaal")
    _label_first(learner, data)
    learner.fit(budget=5)
    learner.save(tmp_path / "s")
    expected = learner.query(5)
    meta = json.loads((tmp_path / "s" / "learner.json").read_text())
    nets_file = tmp_path / "s" / meta["fit"]["networks"]
    nets = torch.load(nets_file, weights_only=True)
    nets["adversarial"] = nets.pop("selector")
    torch.save(nets, nets_file)
    meta["format_version"] = 1
    (tmp_path / "s" / "learner.json").write_text(json.dumps(meta))
    loaded = ActiveLearner.load(tmp_path / "s")
    assert loaded.networks()["selector"].fitted
    assert torch.equal(
        loaded.networks()["selector"].disc.state_dict()["net.0.weight"],
        learner.networks()["selector"].disc.state_dict()["net.0.weight"],
    )
    assert loaded.query(5).ids == expected.ids
    meta["format_version"] = 3
    (tmp_path / "s" / "learner.json").write_text(json.dumps(meta))
    with pytest.raises(TavaalError, match="format version 3 .* reads up to version 2: upgrade tavaal"):
        ActiveLearner.load(tmp_path / "s")
    for damaged in ("2", 0, None, True):
        meta["format_version"] = damaged
        (tmp_path / "s" / "learner.json").write_text(json.dumps(meta))
        with pytest.raises(TavaalError, match="not a version number: the file is damaged"):
            ActiveLearner.load(tmp_path / "s")


def test_save_refuses_a_folder_of_another_learner_and_load_needs_a_python_model(tmp_path, data):
    a, b = _learner(data), _learner(data)
    a.save(tmp_path / "a")
    with pytest.raises(TavaalError, match="holds another learner"):
        b.save(tmp_path / "a")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TavaalError, match="is not empty and holds no saved learner"):
        a.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    with pytest.raises(TavaalError, match="holds no saved learner"):
        ActiveLearner.load(tmp_path / "other")
    user = _learner(data, model=make_net(10), feature_layers=["1", "3"])
    _label_first(user, data)
    user.fit()
    user.save(tmp_path / "u")
    with pytest.raises(TavaalError, match=r"saved with a Python model .*pass the same network again"):
        ActiveLearner.load(tmp_path / "u")
    assert ActiveLearner.load(tmp_path / "u", model=make_net(10)).query(5).ids == user.query(5).ids
    with pytest.raises(TavaalError, match="does not fit the model given"):
        ActiveLearner.load(
            tmp_path / "u",
            model=nn.Sequential(
                nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 10)
            ),
        )
    assert (
        sorted(p.name for p in Path(tmp_path / "u").iterdir() if p.name.startswith("networks-")).__len__()
        == 1
    )
