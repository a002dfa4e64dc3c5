"""Tests of the CPU inference speed-ups: BatchNorm folding, the allocator setting and compile with freezing."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.batchnorm_folding import fold_batchnorm
from carseg_hf.cpu_runtime import retain_freed_memory
from carseg_hf.inference import Segmenter
from carseg_hf.predict import BatchPredictor, PredictOptions
from tests.conftest import tiny_config


def _with_trained_statistics(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters, as training would."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(channels, generator=generator) * 2 + 0.1)
            module.weight.data.copy_(torch.randn(channels, generator=generator))
            module.bias.data.copy_(torch.randn(channels, generator=generator))
    return model.eval()


def _count(model: nn.Module, kind: type) -> int:
    return sum(type(module) is kind for module in model.modules())


@pytest.mark.parametrize(
    "config",
    [tiny_config(), CarSegConfig(encoder_name="resnet18", encoder_channels=(16, 32, 64))],
    ids=["carseg-unet", "smp-resnet18"],
)
def test_folded_copy_matches_the_model_and_leaves_it_untouched(config):
    torch.manual_seed(0)
    model = _with_trained_statistics(CarSegForSemanticSegmentation(config))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    norms = _count(model, nn.BatchNorm2d)
    pixel_values = torch.randn(2, 3, 70, 100)  # (batch, 3, height, width), not a multiple of the size divisor

    folded, count = fold_batchnorm(model)

    assert count > 0
    assert _count(folded, nn.BatchNorm2d) == norms - count
    assert not folded.training
    with torch.inference_mode():
        expected = model(pixel_values=pixel_values).logits
        actual = folded(pixel_values=pixel_values).logits
    # Exact up to float32 rounding of the folded weights, which deep random networks amplify: compare at the scale
    # of the logits (a wrong fold differs by the order of the logits themselves).
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
    # The model itself keeps its BatchNorm layers and weights, so it can still be trained or saved.
    assert _count(model, nn.BatchNorm2d) == norms
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_every_carseg_batchnorm_is_folded():
    model = _with_trained_statistics(CarSegForSemanticSegmentation(tiny_config()))
    folded, count = fold_batchnorm(model)
    assert count == _count(model, nn.BatchNorm2d)
    assert _count(folded, nn.BatchNorm2d) == 0


def test_model_without_batchnorm_is_copied_unchanged():
    model = CarSegForSemanticSegmentation(tiny_config(norm="none")).eval()
    folded, count = fold_batchnorm(model)
    assert count == 0 and folded is not model
    pixel_values = torch.randn(1, 3, 32, 48)  # (batch, 3, height, width)
    with torch.inference_mode():
        torch.testing.assert_close(folded(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)


def test_segmenter_runs_a_folded_copy_and_keeps_its_model():
    torch.manual_seed(0)
    model = _with_trained_statistics(CarSegForSemanticSegmentation(tiny_config()))
    processor = CarSegImageProcessor(size={"height": 64, "width": 96})
    image = (torch.rand(120, 180, 3) * 255).to(torch.uint8).numpy()  # (height, width, 3)
    plain = Segmenter(model, processor, fold_batchnorm=False).segment(image)
    fast = Segmenter(model, processor).segment(image)
    assert _count(model, nn.BatchNorm2d) == _count(Segmenter(model, processor).model, nn.BatchNorm2d) > 0
    assert abs(plain.probabilities - fast.probabilities).max() < 1e-4
    assert (plain.mask == fast.mask).mean() >= 0.999


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_retain_freed_memory_applies_once_and_allocation_still_works():
    assert retain_freed_memory() is True
    assert retain_freed_memory() is True  # idempotent
    big = torch.ones(64, 1024, 1024)  # 256 MiB, which glibc would otherwise mmap and unmap
    del big
    again = torch.zeros(64, 1024, 1024)
    assert float(again.sum()) == 0.0


@pytest.mark.slow
def test_cpu_compile_with_freezing_matches_eager_fp32():
    """`carseg predict --compile default` on the CPU: masks equal to eager fp32 on >= 99.9% of pixels."""
    torch.manual_seed(0)
    model = _with_trained_statistics(CarSegForSemanticSegmentation(tiny_config()))
    processor = CarSegImageProcessor(size={"height": 64, "width": 96})
    pixel_values = torch.randn(2, 3, 64, 96)  # (batch, 3, height, width)
    eager = BatchPredictor(model, processor, "cpu", PredictOptions(fold_batchnorm=False, channels_last=False))
    compiled = BatchPredictor(model, processor, "cpu", PredictOptions(batch_size=2, compile="default"))
    reference = eager.forward(pixel_values)
    fast = compiled.forward(pixel_values)
    assert fast.shape == reference.shape
    assert ((fast > 0) == (reference > 0)).float().mean() >= 0.999
    torch.testing.assert_close(fast, reference, rtol=1e-3, atol=1e-3)
