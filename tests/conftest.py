"""Shared fixtures: tiny configs and models that build in milliseconds on the CPU."""

from __future__ import annotations

import pytest
import torch

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor


def tiny_config(**overrides) -> CarSegConfig:
    """A 3-level U-Net with a handful of channels, for fast tests."""
    values = dict(encoder_channels=(4, 8, 16), center_channels=16, decoder_convs=2)
    values.update(overrides)
    return CarSegConfig(**values)


@pytest.fixture
def tiny_model() -> CarSegForSemanticSegmentation:
    torch.manual_seed(0)
    return CarSegForSemanticSegmentation(tiny_config()).eval()


@pytest.fixture
def tiny_processor() -> CarSegImageProcessor:
    return CarSegImageProcessor(size={"height": 64, "width": 96})
