"""Tiny network sizes so that the network tests run in seconds on two cores."""

from __future__ import annotations

import pytest

from usx_model.network.config import CompletionConfig, Variant


def tiny_config(variant: Variant | str = Variant.FULL, **kw) -> CompletionConfig:
    args = dict(
        variant=Variant(variant),
        n_partial=64,
        n_xray=32,
        n_coarse=64,
        n_out=96,
        pcn_widths=(16, 32, 64, 64),
        fusion_hidden=64,
        z_dim=8,
        decoder_hidden=64,
        renet_widths=(32, 64, 128, 256),
        renet_points=(48, 24, 16),
        k=8,
        pool_k=4,
        global_conv=64,
        global_hidden=32,
        dense=16,
        expand=8,
        dropout=0.0,
    )
    args.update(kw)
    return CompletionConfig(**args)


@pytest.fixture
def tiny():
    return tiny_config
