import numpy as np
import pytest
import torch

from tavaal.config import make_config
from tavaal.data import load_dataset

torch.set_num_threads(2)


def tiny_config(preset: str = "digits", **kw):
    """A preset shrunk so that a cycle takes a fraction of a second on CPU."""
    base = dict(epochs=2, vae_epochs=1, cycles=2, trials=1, mc_samples=3, lr_milestones=())
    if preset == "digits":
        base.update(initial=20, budget=10, batch_size=16, latent_dim=8)
    else:
        base.update(initial=20, budget=10, batch_size=16)
    base.update(kw)
    return make_config(preset, base)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def moons():
    return load_dataset("moons")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def cpu_runtime(cfg=None):
    """The CPU Runtime of ``cfg`` (default: the digits preset)."""
    return (cfg or make_config("digits")).replace(device="cpu").runtime


# Fields that measure the machine rather than the method; equal runs differ only in these.
TIMING_FIELDS = ("train_seconds", "select_seconds", "eval_seconds", "wall_seconds", "device")


def strip_timing(record):
    """The record without machine-dependent fields, for comparing two runs."""
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def one_cycle(cfg, strategy, ds, trial=0):
    """The first cycle of a trial through the engine (``run_trial`` over an ``ActiveLearner``):
    its record, and the networks the learner holds after it."""
    from tavaal.learner import ActiveLearner
    from tavaal.runner.cycle import run_trial

    learner = ActiveLearner(strategy, pool=ds, trial=trial, config=cfg, cold_start="train")
    return next(run_trial(learner, ds)), learner.networks()


def one_thread_records(cfg, methods, out, ds):
    """The sequential executor's records with one torch thread: what a one-CPU worker (a Ray task,
    a --jobs process with --cpus-per-job 1) computes, for comparing executors record for record."""
    from tavaal.runner import run_experiment

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_experiment(cfg, methods, out, ds=ds)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def folder_pool(tmp_path, monkeypatch):
    """A 30-image pool, a labels file with 9 labels, and the decode cache in tmp_path (the probes)."""
    from probes import make_pool, write_labels

    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "pool"
    truth = make_pool(root)
    paths = sorted(truth)
    labels = write_labels(tmp_path / "labels.csv", [(p, truth[p]) for p in paths[:9]])
    return root, truth, labels


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A small finished results folder (random on moons, 2 cycles; the probes damage copies of it)."""
    from probes import MOONS
    from tavaal.cli import main

    out = tmp_path_factory.mktemp("results") / "r"
    assert main(["compare", "--methods", "random", *MOONS, "--out", str(out)]) == 0
    return out
