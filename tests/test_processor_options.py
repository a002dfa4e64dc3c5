"""The image processors' parameters: every one is checked, every per-call option applies, and nothing is ignored.

Also the inputs that used to fail without saying why: target sizes of zero, a bfloat16 tensor, a string too long to
be a path, a bare base64 image given to the pipeline, and the PIL modes RGBX and RGBa.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from carseg_hf import CarSegImageProcessor, CarSegImageProcessorPil, ImageDecodeError
from carseg_hf.image_io import load_rgb
from carseg_hf.inference import Segmenter

BACKENDS = [CarSegImageProcessor, CarSegImageProcessorPil]


def _rgb(height: int = 40, width: int = 60, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("cls", BACKENDS)
def test_per_call_options_apply(cls):
    processor = cls(size={"height": 64, "width": 96}, keep_aspect_ratio=True)
    with pytest.raises(ImageDecodeError, match="over the limit of 10"):
        processor(_rgb(), max_pixels=10)
    assert processor(_rgb(), max_pixels=None)["pixel_values"].shape == (1, 3, 64, 96)  # None keeps the processor's
    portrait = _rgb(400, 300)
    assert processor(portrait)["pixel_values"].shape == (1, 3, 96, 64)
    assert processor(portrait, ensure_multiple_of=48)["pixel_values"].shape == (1, 3, 96, 48)
    raw = processor(_rgb(), image_mean=[0, 0, 0], image_std=[1, 1, 1])["pixel_values"]
    assert 0.0 <= raw.min() and raw.max() <= 1.0 and not torch.equal(raw, processor(_rgb())["pixel_values"])
    halved = processor(_rgb(), image_mean=[0, 0, 0], image_std=[1, 1, 1], rescale_factor=0.5 / 255)["pixel_values"]
    assert torch.allclose(halved, raw / 2)
    assert (
        processor.image_mean != [0.0, 0.0, 0.0] and processor.rescale_factor == 1 / 255
    )  # the call left it as it was


def test_per_call_resample_applies_in_the_pil_backend_and_is_refused_by_the_torch_one():
    pil = CarSegImageProcessorPil(size={"height": 32, "width": 48})
    nearest = pil(_rgb(), resample=Image.NEAREST)["pixel_values"]
    assert not torch.equal(nearest, pil(_rgb())["pixel_values"])
    assert torch.equal(
        nearest, CarSegImageProcessorPil(size={"height": 32, "width": 48}, resample=0)(_rgb())["pixel_values"]
    )
    with pytest.raises(ValueError, match=r"resample=0 \(NEAREST\) is not available in this backend.*backend='pil'"):
        CarSegImageProcessor(size=32)(_rgb(), resample=Image.NEAREST)
    with pytest.raises(ValueError, match="not available in this backend"):
        CarSegImageProcessor(resample=Image.BICUBIC)


@pytest.mark.parametrize("cls", BACKENDS)
def test_unknown_and_post_processing_keywords_are_refused(cls):
    processor = cls(size=32)
    with pytest.raises(ValueError, match=r"unexpected keyword arguments \['colour'\].*'max_pixels'"):
        processor(_rgb(), colour="red")
    with pytest.raises(
        ValueError, match="threshold is not a preprocessing option.*post_process_semantic_segmentation"
    ):
        processor(_rgb(), threshold=0.7)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_pixels", -1, "max_pixels must be a positive whole number"),
        ("max_pixels", 2.5, "max_pixels must be a positive whole number"),
        ("resample", 99, "resample must be one of PIL's filters"),
        ("rescale_factor", -1, "rescale_factor must be a positive number"),
        ("rescale_factor", float("nan"), "rescale_factor must be a positive number"),
        ("image_std", [0, 1, 1], "image_std needs 3 positive numbers"),
        ("image_mean", [0.5, 0.5], "image_mean needs 3 values"),
        ("ensure_multiple_of", 0, "ensure_multiple_of must be a positive integer"),
    ],
)
def test_bad_parameter_values_are_refused_in_the_constructor_and_per_call(option, value, message):
    with pytest.raises(ValueError, match=message):
        CarSegImageProcessorPil(**{option: value})
    with pytest.raises(ValueError, match=message):
        CarSegImageProcessorPil(size=32)(_rgb(), **{option: value})


@pytest.mark.parametrize("cls", BACKENDS)
def test_no_pixel_bound_survives_a_save_and_reload(cls, tmp_path):
    cls(max_pixels=None).save_pretrained(tmp_path / "none")
    assert cls.from_pretrained(tmp_path / "none").max_pixels is None
    assert cls(max_pixels=0).max_pixels is None  # 0 is how no bound is saved
    cls(max_pixels=1234).save_pretrained(tmp_path / "bound")
    assert cls.from_pretrained(tmp_path / "bound").max_pixels == 1234
    assert cls.from_pretrained(tmp_path / "none", max_pixels=99).max_pixels == 99


def test_target_sizes_must_be_whole_positive_pixels(tiny_processor):
    logits = torch.zeros(1, 1, 8, 8)
    assert tiny_processor.post_process_semantic_segmentation(logits, target_sizes=[(4.0, 6)])[0].shape == (4, 6)
    assert tiny_processor.post_process_semantic_segmentation(logits, target_sizes=torch.tensor([[5, 7]]))[0].shape == (
        5,
        7,
    )
    for bad, message in (
        ((0, 480), "at least 1x1"),
        ((3,), "whole pixels"),
        ((2.5, 3), "whole pixels"),
        (("a", 3), "whole pixels"),
    ):
        with pytest.raises(ValueError, match=rf"target_sizes\[0\] must be .*{message}"):
            tiny_processor.post_process_semantic_segmentation(logits, target_sizes=[bad])


def test_segmenter_refuses_a_threshold_that_is_not_a_number(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    with pytest.raises(ValueError, match="threshold must be a probability.*'0.5' \\(a str, not a number\\)"):
        segmenter.segment(_rgb(), threshold="0.5")
    assert segmenter.segment(_rgb(), threshold=0.5).mask.shape == (40, 60)


def test_half_precision_tensors_and_rgbx_photos_decode_like_their_float32_and_rgb_twins():
    image = _rgb()
    chw = torch.from_numpy(image).permute(2, 0, 1).float() / 255  # (3, height, width) in [0, 1]
    for dtype in (torch.bfloat16, torch.float16):
        assert np.abs(load_rgb(chw.to(dtype)).astype(int) - image.astype(int)).max() <= 1
    pil = Image.fromarray(image)
    assert np.array_equal(load_rgb(pil.convert("RGBX")), image)
    assert np.array_equal(load_rgb(pil.convert("RGBA").convert("RGBa")), image)  # opaque: premultiplied = plain


def test_a_string_too_long_for_a_path_is_named_briefly():
    with pytest.raises(ImageDecodeError, match=r"x{60}\.\.\. \(5000 characters\): not a usable file path"):
        load_rgb("x" * 5000)


def test_the_pipeline_decodes_a_bare_base64_image_like_the_stock_one(tiny_model, tiny_processor, tmp_path):
    from transformers import pipeline

    tiny_model.save_pretrained(tmp_path)
    tiny_processor.save_pretrained(tmp_path)
    segmenter = pipeline("image-segmentation", model=str(tmp_path))
    photo = Image.fromarray(_rgb(48, 72, seed=3))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    for text, zoom in ((encoded, False), (encoded, True), (f"data:image/png;base64,{encoded}", False)):
        expected = [np.asarray(r["mask"]) for r in segmenter(photo, zoom=zoom)]
        got = [np.asarray(r["mask"]) for r in segmenter(text, zoom=zoom)]
        assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))
    with pytest.raises(ImageDecodeError, match="no such file"):
        segmenter(str(tmp_path / "missing.jpg"))  # a path is still a path
