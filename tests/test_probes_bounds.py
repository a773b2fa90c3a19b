"""Probes, nothing unbounded: every number is finite and bounded wherever it comes from, networks
and decoded pools are measured before they are allocated, files read whole have a cap, and one
large image does not set the size of all the others."""

import numpy as np
import pytest
import torch
from PIL import Image

from probes import one_line, refused
from tavaal import ActiveLearner
from tavaal.config import FIELDS, make_config
from tavaal.errors import TavaalError


def _float_fields():
    return [name for name, (_, kind) in FIELDS.items() if kind == "float"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_field_refuses_non_finite_values_from_python(value):
    for name in _float_fields():
        with pytest.raises(TavaalError, match="must be a finite number") as err:
            make_config("digits", {name: value})
        one_line(str(err.value))


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999"])
def test_every_float_flag_refuses_non_finite_values(tmp_path, capsys, text):
    for name in _float_fields():
        flag = "--" + name.replace("_", "-")
        argv = ["run", "--dataset", "moons", f"{flag}={text}", "--out", tmp_path / "o"]
        refused(argv, capsys, "not a finite number")
    assert not (tmp_path / "o").exists()


def test_yaml_non_finite_values_are_refused(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("lr: .nan\n")
    refused(
        ["run", "--config", tmp_path / "c.yaml", "--out", tmp_path / "o"], capsys, "must be a finite number"
    )
    (tmp_path / "c.yaml").write_text("vae_lr: .inf\n")
    refused(
        ["run", "--config", tmp_path / "c.yaml", "--out", tmp_path / "o"], capsys, "must be a finite number"
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("threads", 10**6),
        ("latent_dim", 10**7),
        ("disc_layers", 10**4),
        ("epochs", 10**9),
        ("vae_epochs", 10**9),
        ("image_size", 10**5),
        ("vae_image_size", 10**5),
        ("batch_size", 10**9),
        ("mc_samples", 10**9),
        ("cycles", 10**9),
        ("seed", 2**64),
        ("lr_milestones", (10**9,)),
    ],
)
def test_every_size_has_an_upper_bound(field, value, tmp_path, capsys):
    with pytest.raises(TavaalError, match=r"at most") as err:
        make_config("digits", {field: value})
    one_line(str(err.value))
    with pytest.raises(TavaalError, match=r"at most"):
        ActiveLearner("random", pool=np.zeros((10, 4), dtype=np.float32), **{field: value})


MOONS = ["compare", "--preset", "moons", "--methods", "random"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["serve", "--pool", "p", "--state", "s", "--port", "0"], "--port: 0 is outside 1..65535"),
        (["serve", "--pool", "p", "--state", "s", "--port", "70000"], "--port: 70000 is outside"),
        ([*MOONS, "--cpus-per-job", "1e9"], "--cpus-per-job"),
        ([*MOONS, "--cpus-per-job", "nan"], "not a finite number"),
        ([*MOONS, "--jobs", "100000"], "--jobs: 100000 is outside"),
        ([*MOONS, "--gpus-per-job", "inf"], "not a finite"),
        (["toy", "--seed", "-1"], "--seed: -1 is outside"),
    ],
)  # fmt: skip
def test_command_line_numbers_are_bounded(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(argv, capsys, needle)
    assert list(tmp_path.iterdir()) == []


def test_a_vae_that_would_not_fit_is_refused_before_it_is_allocated(monkeypatch):
    import tavaal.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1 << 30)  # a 1 GiB machine
    x = np.zeros((40, 3, 32, 32), dtype=np.uint8)
    with pytest.raises(TavaalError, match=r"the VAE and discriminator would need about [\d.]+ GiB") as err:
        ActiveLearner("tavaal", pool=x, preset="quick", latent_dim=65_536)
    one_line(str(err.value))
    ActiveLearner("tavaal", pool=x, preset="quick")  # the preset's own size fits


def test_a_task_learner_that_would_not_fit_is_refused(monkeypatch):
    import tavaal.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1 << 30)
    x = np.zeros((40, 3, 32, 32), dtype=np.uint8)
    with pytest.raises(TavaalError, match=r"training resnet18 on batches of 100000 would need"):
        ActiveLearner("random", pool=x, preset="cifar10", batch_size=100_000)


def test_decoding_a_pool_too_large_for_memory_is_refused_before_allocating(tmp_path, monkeypatch):
    import tavaal.memory as memory

    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1 << 20)
    for i in range(4):
        Image.new("RGB", (16, 16)).save(tmp_path / f"{i}.png")
    with pytest.raises(TavaalError, match=r"decoding 4 images at 4096x4096 would need"):
        ActiveLearner("random", pool=tmp_path, image_size=4096)


def test_one_large_image_does_not_set_the_size_of_the_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    pool = tmp_path / "pool"
    pool.mkdir()
    Image.new("RGB", (3000, 2000)).save(pool / "a_panorama.png")  # sorted first
    for i in range(6):
        Image.new("RGB", (24, 24), (i * 30, 0, 0)).save(pool / f"img{i}.png")
    learner = ActiveLearner("random", pool=pool, preset="quick")
    assert tuple(learner.ds.input_shape) == (3, 24, 24)


def test_16_bit_pngs_are_scaled_by_their_range_not_clipped(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    pool = tmp_path / "pool"
    pool.mkdir()
    for i, level in enumerate([1000, 20000, 40000, 65535]):
        Image.fromarray(np.full((16, 16), level, dtype=np.uint16)).save(pool / f"{i}.png")
    learner = ActiveLearner("random", pool=pool, preset="quick")
    means = learner.pool_data.x.float().mean(dim=(1, 2, 3)).tolist()
    assert means == pytest.approx([1000 / 257, 20000 / 257, 40000 / 257, 255], abs=0.6)


def test_a_file_read_whole_has_a_size_cap(tmp_path, capsys, monkeypatch):
    import tavaal.paths as paths

    monkeypatch.setitem(paths.CAPS, "config", 1000)
    (tmp_path / "c.yaml").write_text("epochs: 1\n" + "# padding\n" * 200)
    refused(
        ["run", "--config", tmp_path / "c.yaml", "--out", tmp_path / "o"], capsys, "over tavaal's limit of"
    )
    monkeypatch.setitem(paths.CAPS, "export", 1000)
    (tmp_path / "e.json").write_text("[" + ",".join(["{}"] * 600) + "]")
    argv = ["labels", "import-labelstudio", tmp_path / "e.json", "--labels", tmp_path / "l.csv"]
    refused(argv, capsys, "over tavaal's limit of")
    assert not (tmp_path / "l.csv").exists()


def test_a_compressed_results_file_is_capped_once_decompressed(tmp_path, capsys, monkeypatch):
    import gzip

    import tavaal.paths as paths

    monkeypatch.setitem(paths.CAPS, "records", 10_000)
    (tmp_path / "results.jsonl.gz").write_bytes(gzip.compress(b"{}\n" * 100_000))  # 300 kB inside ~1 kB
    refused(["summary", tmp_path / "results.jsonl.gz"], capsys, "once decompressed")


def test_a_learner_with_a_negative_trial_is_refused():
    with pytest.raises(TavaalError, match="trial must be a whole number, 0 or more"):
        ActiveLearner("random", pool=torch.zeros(10, 4), trial=-1)
