"""The device and its backend switches."""

import pytest
import torch

from tavaal.cli import build_parser, resolve_config
from tavaal.config import make_config
from tavaal.device import setup_device
from tavaal.errors import TavaalError


def test_unknown_device_names_the_choices():
    with pytest.raises(TavaalError, match=r"device \(--device\) must be cpu, cuda or cuda:N, got 'tpu'"):
        setup_device(make_config("digits", {"device": "tpu"}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_to_use_cpu():
    with pytest.raises(TavaalError, match="no CUDA GPU is available; use --device cpu"):
        setup_device(make_config("digits", {"device": "cuda"}))


@pytest.mark.parametrize("flag", [True, False])
def test_cudnn_benchmark_follows_the_config_on_cuda(monkeypatch, flag):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", not flag)
    dev = setup_device(make_config("cifar10", {"device": "cuda", "cudnn_benchmark": flag}))
    assert dev.type == "cuda" and torch.backends.cudnn.benchmark is flag


def test_cudnn_benchmark_is_on_by_default_and_can_be_turned_off():
    p = build_parser()
    on = resolve_config(p.parse_args(["run", "--preset", "cifar10"]), "cifar10")
    off = resolve_config(p.parse_args(["run", "--preset", "cifar10", "--no-cudnn-benchmark"]), "cifar10")
    assert on.runtime.cudnn_benchmark is True and off.runtime.cudnn_benchmark is False
    assert on.experiment_hash() == off.experiment_hash()  # a speed switch: the same experiment


@pytest.mark.parametrize(
    "device,expect",
    [
        ("cpu", {"channels_last": False, "precision": "bf16", "cuda_graphs": False, "fused": False}),
        ("cuda", {"channels_last": True, "precision": "bf16", "cuda_graphs": True, "fused": True}),
    ],
)
def test_fast_picks_the_devices_measured_settings(device, expect, monkeypatch):
    monkeypatch.setattr("tavaal.runtime.cpu_has_bf16", lambda: True)
    cfg = resolve_config(
        build_parser().parse_args(["run", "--preset", "cifar10", "--device", device, "--fast"]), "cifar10"
    )
    assert {k: cfg.get(k) for k in expect} == expect


def test_fast_keeps_a_setting_given_explicitly():
    cfg = resolve_config(
        build_parser().parse_args(
            ["run", "--preset", "cifar10", "--device", "cuda", "--fast", "--precision", "fp32"]
        ),
        "cifar10",
    )
    assert cfg.runtime.precision == "fp32" and cfg.runtime.cuda_graphs is True
