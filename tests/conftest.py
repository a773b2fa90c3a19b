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
    from tavaal.runtime import Runtime

    return Runtime.from_config(cfg or make_config("digits"), torch.device("cpu"))
