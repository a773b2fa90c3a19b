"""Networks a user might bring, for the tests of ``--model module:factory`` (not part of tavaal)."""

from torch import nn


def make_net(num_classes: int) -> nn.Module:
    """A small CNN for 1x8x8 digits, written the way a user would, with a dropout layer."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(32, num_classes),
    )


def make_plain_net() -> nn.Module:
    """No argument, no dropout: MC dropout must refuse it."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def make_wrong_net() -> nn.Module:
    """Three outputs for a ten-class dataset."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def not_a_net() -> str:
    return "nope"
