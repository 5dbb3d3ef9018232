"""Tiny network sizes so that the network tests run in seconds on two cores."""

from __future__ import annotations

import pytest

from usx_model.network.config import CompletionConfig, Variant
from usx_model.network.config import tiny_config as _tiny


def tiny_config(variant: Variant | str = Variant.FULL, **kw) -> CompletionConfig:
    """The core's tiny preset with 96 output points and no folding unless overridden."""
    return _tiny(variant, **{"n_out": 96, "up_ratio": 4, "renet_points": (48, 24, 16), **kw})


@pytest.fixture
def tiny():
    return tiny_config
