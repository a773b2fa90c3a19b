import json

import pytest

from tavaal.cli import main
from tavaal.config import make_config
from tavaal.errors import TavaalError
from tavaal.strategies import get_strategy


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _err_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["run", "--preset", "nope"], "unknown preset 'nope'"),
        (["run", "--dataset", "digits", "--method", "magic"], "valid methods are: badge, coreset, entropy"),
        (["run", "--dataset", "digits", "--initial", "99999"], "larger than the pool"),
        (["run", "--dataset", "digits", "--budget", "500", "--cycles", "5"], "need 2050 samples"),
        (
            ["run", "--dataset", "digits", "--budget", "300", "--cycles", "5", "--final-selection"],
            "need 1550 samples",
        ),
        (["run", "--dataset", "digits", "--recipe", "author"], "valid recipes are: authors, paper"),
        (["run", "--dataset", "digits", "--budget", "0"], "budget (--budget) must be positive, got 0"),
        (["run", "--dataset", "digits", "--cycles", "-1"], "cycles (--cycles) must be positive, got -1"),
        (["run", "--dataset", "digits", "--schedule", "weird"], "must be one of paper, official"),
        (["run", "--dataset", "cifar10", "--data-dir", "/nonexistent"], "pass --download"),
        (["run", "--dataset", "cityscapes", "--data-dir", "/nonexistent"], "Cityscapes was not found under"),
        (["run", "--dataset", "moons", "--model", "resnet18"], "takes images"),
        (["compare", "--methods", "random"], "needs --preset"),
        (["run", "--dataset", "digits", "--cuda-graphs"], "cuda_graphs (--cuda-graphs) needs device cuda"),
        (
            ["run", "--dataset", "imagefolder", "--train-dir", "/nope", "--test-dir", "/nope"],
            "does not exist",
        ),
    ],
)
def test_bad_input_is_one_clear_line(capsys, tmp_path, argv, needle):
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2
    assert needle in _err_line(err)


def test_unknown_dataset_lists_valid_names(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--dataset", "nope", "--preset", "digits", "--out", str(tmp_path))
    assert code == 2 and "valid datasets are: caltech101, camvid, cifar10" in _err_line(err)


def test_run_writes_records_and_refuses_a_different_run(capsys, tmp_path):
    out = str(tmp_path / "o")
    args = [
        "run",
        "--dataset",
        "moons",
        "--method",
        "random",
        "--cycles",
        "2",
        "--trials",
        "1",
        "--epochs",
        "2",
        "--out",
        out,
        "--quiet",
    ]
    code, text, _ = run_cli(capsys, *args)
    assert code == 0 and "accuracy" in text
    recs = [json.loads(line) for line in open(f"{out}/results.jsonl")]
    assert len(recs) == 2
    keys = {
        "dataset",
        "method",
        "trial",
        "cycle",
        "n_labeled",
        "accuracy",
        "train_seconds",
        "select_seconds",
        "selected",
    }
    assert keys <= set(recs[0]) and "initial" in recs[0] and "initial" not in recs[1]
    code, _, err = run_cli(capsys, *args[:-3], "--epochs", "3", "--out", out, "--quiet")
    assert code == 2 and "different experiment" in _err_line(err)


def test_config_file_and_conflicts(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\ncycles: 1\n")
    code, _, err = run_cli(
        capsys,
        "run",
        "--dataset",
        "moons",
        "--method",
        "random",
        "--config",
        str(cfg),
        "--epochs",
        "3",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    assert code == 2 and "conflicting values for epochs" in _err_line(err)
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 2\n")
    code, _, err = run_cli(
        capsys, "run", "--dataset", "moons", "--config", str(bad), "--out", str(tmp_path / "p")
    )
    assert code == 2 and "unknown config field 'epochz'" in _err_line(err)


def test_presets_lists_the_papers_presets(capsys):
    code, out, _ = run_cli(capsys, "presets")
    for name in (
        "cifar10",
        "cifar100",
        "cifar10-imb10",
        "cifar10-imb100",
        "caltech101",
        "cityscapes",
        "svhn",
        "fashionmnist",
        "moons",
        "digits",
    ):
        assert name in out


def test_mlflow_without_the_extra_is_a_clear_error(capsys, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *a, **k):
        if name == "mlflow":
            raise ImportError("no mlflow")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    code, _, err = run_cli(capsys, "run", "--dataset", "moons", "--mlflow", "--out", str(tmp_path / "o"))
    assert code == 2 and "pip install 'tavaal[mlflow]'" in _err_line(err)


@pytest.mark.parametrize(
    "yaml_text,needle",
    [
        ("epochs: ten\n", "config field 'epochs' must be a whole number, got 'ten'"),
        ("lr_milestones: [abc]\n", "config field 'lr_milestones' must be a list of whole numbers"),
        ("lr_milestones: 30\n", "config field 'lr_milestones' must be a list of whole numbers"),
        ("lr: fast\n", "config field 'lr' must be a number, got 'fast'"),
        ("analysis: maybe\n", "config field 'analysis' must be true or false, got 'maybe'"),
        ("schedule: 3\n", "config field 'schedule' must be text, got 3"),
        ("recipe: mine\n", "valid recipes are: authors, paper"),
    ],
)
def test_yaml_values_of_the_wrong_type_name_the_field(capsys, tmp_path, yaml_text, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml_text)
    out = str(tmp_path / "o")
    code, _, err = run_cli(capsys, "run", "--dataset", "moons", "--config", str(bad), "--out", out)
    assert code == 2 and needle in _err_line(err)
    assert not (tmp_path / "o").exists()


def test_yaml_numbers_as_yaml_1_1_reads_them(tmp_path):
    from tavaal.config import load_yaml_overrides, make_config

    good = tmp_path / "good.yaml"
    good.write_text("weight_decay: 5e-4\nepochs: 3\nlr: 1\nfinal_selection: true\nlr_milestones: [2]\n")
    cfg = make_config("digits", load_yaml_overrides(good))
    got = (
        cfg.training.weight_decay,
        cfg.training.epochs,
        cfg.training.lr,
        cfg.protocol.final_selection,
        cfg.training.lr_milestones,
    )
    assert got == (5e-4, 3, 1.0, True, (2,))
    assert isinstance(cfg.training.lr, float)


def test_every_field_round_trips_from_the_cli_with_its_type():
    from tavaal.cli import build_parser
    from tavaal.config import FIELDS

    parse = build_parser().parse_args
    for name, (_, kind) in FIELDS.items():
        if name == "preset":
            continue
        flag = "--" + name.replace("_", "-")
        if kind == "bool":  # a pair of flags, never text ("False" would be true)
            assert getattr(parse(["run", flag]), name) is True, name
            assert getattr(parse(["run", "--no-" + flag[2:]]), name) is False, name
            assert getattr(parse(["run"]), name) is None, name  # unset: the preset decides
        elif kind in ("int", "float", "str"):
            text, value = {"int": ("7", 7), "float": ("0.25", 0.25), "str": ("x", "x")}[kind]
            got = getattr(parse(["run", flag, text]), name)
            assert got == value and type(got) is type(value), name
        else:
            assert kind.startswith("tuple[int") and getattr(parse(["run", flag, "3,5"]), name) == "3,5"


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--model", "user_nets:make_net"], "needs feature layers (--feature-layers"),
        (
            ["--model", "no_such_module:make_net", "--feature-layers", "1"],
            "module 'no_such_module' does not import",
        ),
        (["--model", "user_nets:missing", "--feature-layers", "1"], "has no callable 'missing'"),
        (["--model", "user_nets:make_net", "--feature-layers", "1,99"], "are not in the model"),
        (["--model", "user_nets:make_wrong_net", "--feature-layers", "1"], "the data has 10 classes"),
        (["--model", "user_nets:not_a_net", "--feature-layers", "1"], "not a torch.nn.Module"),
        (
            ["--model", "user_nets:make_plain_net", "--feature-layers", "2", "--method", "mcdropout"],
            "needs dropout layers",
        ),
    ],
)
def test_a_users_model_errors_are_one_clear_line(capsys, tmp_path, extra, needle):
    argv = [
        "run",
        "--dataset",
        "digits",
        "--cycles",
        "2",
        "--epochs",
        "1",
        "--initial",
        "20",
        "--budget",
        "10",
    ]
    code, _, err = run_cli(capsys, *argv, *extra, "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and needle in _err_line(err)


def test_a_users_model_from_the_command_line_with_keep_models(capsys, tmp_path):
    import torch

    out = tmp_path / "o"
    argv = [
        "run",
        "--dataset",
        "digits",
        "--method",
        "tavaal",
        "--model",
        "user_nets:make_net",
        "--feature-layers",
        "1,3",
        "--cycles",
        "2",
        "--epochs",
        "2",
        "--vae-epochs",
        "1",
        "--initial",
        "20",
        "--budget",
        "10",
        "--keep-models",
        "--out",
        str(out),
        "--quiet",
    ]
    code, text, err = run_cli(capsys, *argv)
    assert code == 0, err
    saved = torch.load(out / "jobs" / "tavaal-trial0" / "models" / "cycle0.pt", weights_only=True)
    assert set(saved) == {"model", "ranker", "selector"} and any(
        k.startswith("module.") for k in saved["model"]
    )


def test_one_function_decides_the_default_preset():
    from tavaal.presets import default_preset

    assert default_preset("cifar100", "digits") == "cifar100"  # named wins
    assert default_preset(None, "svhn") == "svhn"  # the dataset's own
    assert default_preset(None, "imagefolder") == "cifar10"  # an image folder: 32x32 ResNet-18 settings
    assert default_preset(None, None) == "digits"  # the embedded default


@pytest.mark.parametrize(
    "make, needle",
    [
        (
            lambda: make_config("digits", {"lattent_dim": 3}),
            "unknown config field 'lattent_dim'; did you mean 'latent_dim'?",
        ),
        (lambda: make_config("digitz"), "unknown preset 'digitz'; did you mean 'digits'?"),
        (
            lambda: get_strategy("tavall", make_config("digits")),
            "unknown method 'tavall'; did you mean 'tavaal'?",
        ),
        (lambda: make_config("digits", {"zzz": 1}), "unknown config field 'zzz'; valid config fields are"),
    ],
)
def test_a_misspelled_name_gets_the_nearest_valid_one(make, needle):
    with pytest.raises(TavaalError) as e:
        make()
    assert needle in str(e.value)
