"""Shared fixtures: tiny configs and models that build in milliseconds on the CPU."""

from __future__ import annotations

from pathlib import Path

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


def fit_tiny_model(dataset: Path, processor: CarSegImageProcessor, steps: int = 60) -> CarSegForSemanticSegmentation:
    """A tiny model fitted for a few seconds on a Carvana-layout fixture, so that its logits are confident.

    Args:
        dataset: A `tests.fixture.make_carvana_fixture` folder; every `train/*.jpg` with its GIF mask is used.
        processor: The processor that prepares the batch (its size is the training size).
        steps: Adam steps at lr 1e-2 on the whole batch.

    Returns:
        The model, in eval mode.
    """
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(tiny_config())
    images = sorted((dataset / "train").glob("*.jpg"))
    masks = [dataset / "train_masks" / f"{path.stem}_mask.gif" for path in images]
    batch = processor(images=[str(p) for p in images], masks=[str(p) for p in masks])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny kernels: extra threads only contend on the shared cores
    try:
        model.train()
        for _ in range(steps):
            loss = model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
