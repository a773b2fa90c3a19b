"""The precision field (fp32 | bf16): its values, its former name, what --fast picks on a CPU with
and without bf16 units, and bf16 autocast reaching every network of every path."""

import gzip
import json
from pathlib import Path

import pytest
import torch
import yaml

from autocast_spy import AutocastSpy
from conftest import one_cycle, tiny_config
from tavaal import runtime
from tavaal.cli import build_parser, resolve_config
from tavaal.config import config_from_dict, make_config
from tavaal.errors import TavaalError
from tavaal.runtime import cpu_has_bf16, fast_settings
from tavaal.strategies import STRATEGIES, get_strategy

RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "quality-cpu-2026-11-29"


def test_precision_is_fp32_or_bf16():
    assert make_config("digits").runtime.precision == "fp32"
    with pytest.raises(
        TavaalError, match=r"precision \(--precision\) must be one of fp32, bf16, auto, got 'fp16'"
    ):
        make_config("digits", {"precision": "fp16"})


@pytest.mark.parametrize(
    "units, device, expect", [(True, "cpu", "bf16"), (False, "cpu", "fp32"), (True, "cuda", "fp32")]
)
def test_auto_is_bf16_on_a_cpu_with_the_units_and_resolved_when_built(monkeypatch, units, device, expect):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: units)
    cfg = make_config("digits", {"precision": "auto", "device": device})
    assert cfg.runtime.precision == expect and cfg.to_dict()["precision"] == expect
    assert (
        cfg.experiment_hash()
        == make_config("digits", {"precision": expect, "device": device}).experiment_hash()
    )


def test_the_quick_preset_people_use_on_a_cpu_is_bf16_where_the_units_are(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    assert make_config("quick").runtime.precision == "bf16"
    assert make_config("quick", {"precision": "fp32"}).runtime.precision == "fp32"  # asked for: kept
    assert make_config("cifar10").runtime.precision == "fp32"  # the paper's presets stay fp32
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    assert make_config("quick").runtime.precision == "fp32"


def test_the_former_name_amp_is_still_read():
    assert make_config("digits", {"amp": "bf16"}).runtime.precision == "bf16"
    assert make_config("digits", {"amp": "none"}).runtime.precision == "fp32"
    assert config_from_dict({"amp": "bf16", "preset": "digits"}).runtime.precision == "bf16"
    with pytest.raises(TavaalError, match="amp is the former name of precision; give only precision"):
        make_config("digits", {"amp": "none", "precision": "bf16"})


def test_a_folder_written_before_the_rename_keeps_its_hash_and_resumes():
    saved = yaml.safe_load((RESULTS / "digits-own-config.yaml").read_text())["config"]
    with gzip.open(RESULTS / "digits-own.jsonl.gz", "rt") as f:
        written = json.loads(f.readline())["config_hash"]
    cfg = config_from_dict(saved)
    assert saved["amp"] == "none" and cfg.runtime.precision == "fp32"
    assert cfg.experiment_hash() == written
    assert cfg.replace(precision="bf16").experiment_hash() != written  # bf16 is another experiment


@pytest.mark.parametrize(
    "amx, avx512_bf16, expect", [(True, False, True), (False, True, True), (False, False, False)]
)
def test_bf16_units_are_detected_not_assumed(monkeypatch, amx, avx512_bf16, expect):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert cpu_has_bf16() is expect


def test_fast_on_a_cpu_without_bf16_units_keeps_fp32_with_one_line(monkeypatch, caplog):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    assert fast_settings("cpu") == {}
    assert "no bf16 matrix units" in caplog.text and "keeping fp32" in caplog.text
    assert len(caplog.records) == 1
    cfg = resolve_config(build_parser().parse_args(["run", "--preset", "digits", "--fast"]), "digits")
    assert cfg.runtime.precision == "fp32" and cfg.runtime.channels_last is False
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    assert fast_settings("cpu") == {"precision": "bf16"}
    assert fast_settings("cpu", {"precision": "fp32"}) == {}  # given: kept


def test_records_say_which_precision_ran(digits):
    for precision in ("fp32", "bf16"):
        cfg = tiny_config("digits", precision=precision)
        rec, _ = one_cycle(cfg, get_strategy("random", cfg), digits)
        assert rec["precision"] == precision


def _roles(cfg, method, ds):
    with AutocastSpy() as spy:
        rec, nets = one_cycle(cfg, get_strategy(method, cfg), ds)
    return rec, spy.by_role(nets)


# Every registered method, the official schedule of the adversarial ones, and selection-eval's
# common learner: T, the VAE, MC dropout, BADGE's embedding, Core-set's features and inference run
# every layer under bf16 autocast, and the Ranker and D train under it. The Ranker and D score in
# fp32 (in bf16 their outputs tie by the dozen at the cut: test_scores_stay_fp32_under_bf16_autocast).
CASES = [(m, {}) for m in sorted(STRATEGIES)] + [
    ("vaal", {"schedule": "official"}),
    ("tavaal", {"schedule": "official"}),
    ("random", {"selection_eval": True}),
]


@pytest.mark.parametrize("method, extra", CASES, ids=[f"{m}-{'-'.join(e) or 'default'}" for m, e in CASES])
def test_bf16_reaches_every_network_of_every_path(digits, method, extra):
    cfg = tiny_config("digits", precision="bf16", **extra)
    rec, roles = _roles(cfg, method, digits)
    assert rec["precision"] == "bf16"
    assert roles["model"] and all(roles["model"]), "T ran a layer outside autocast"
    for role in ("vae", "other"):
        assert all(roles.get(role, [])), f"{role} ran a layer outside autocast"
    for role in ("ranker", "disc"):  # trained in bf16, scored in fp32
        if role in roles:
            assert any(roles[role]) and not all(roles[role])
    if get_strategy(method, cfg).ranker_loss:
        assert roles.get("ranker")
    if method in ("vaal", "tavaal", "vaal-lloss"):
        assert roles.get("vae") and roles.get("disc")
    if extra.get("selection_eval"):
        assert roles.get("other") and "selection_accuracy" in rec


@pytest.mark.parametrize("method", ["mcdropout", "tavaal"])
def test_fp32_runs_no_layer_under_autocast(digits, method):
    cfg = tiny_config("digits")
    _, roles = _roles(cfg, method, digits)
    assert roles and not any(on for calls in roles.values() for on in calls)
