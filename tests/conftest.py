"""Shared fixtures: tiny configs and models that build in milliseconds on the CPU."""

from __future__ import annotations

import pytest
import torch

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor

#: Devices for the tests that check a fast path on each device: the CPU always, CUDA where there is one. CI has no
#: GPU, so there the CUDA cases are reported as skipped; `benchmarks/gpu_checks.sh` runs them on a lent GPU.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]


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
