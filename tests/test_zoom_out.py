"""Zoom out: a car that runs off both sides of a tall frame is segmented again, whole, at a smaller input.

`zoom_out_size` decides; every door (Segmenter, evaluation, `carseg predict`, the pipeline) must then give exactly
the mask of one pass of the whole image at that size.
"""

from __future__ import annotations

import numpy as np
import pytest

from carseg_hf import CarSegImageProcessor
from carseg_hf.evaluation_prediction import PredictionSettings, predict_batch
from carseg_hf.inference import Segmenter
from carseg_hf.zoom import zoom_out_size
from tests.zoom_doors import assert_batch_and_pipeline_zoom_like_one_pass

#: A 9:16 portrait photo; with a kept-aspect 64x96 processor its input is 96x64, taller than 1.2 x 64 rounds to (64).
TALL = (320, 180)
TALL_INPUT = (96, 64)
ZOOMED_OUT = (64, 32)


def _band(height: int, width: int, top: int, bottom: int, left: int = 0, right: int | None = None) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[top:bottom, left:right] = True
    return mask


def test_zoom_out_size_for_a_car_cut_by_both_sides_of_a_tall_frame():
    mask = _band(1920, 1080, 900, 1500)  # a car across the whole width of a 9:16 phone photo
    assert zoom_out_size(mask, (1056, 576), 640) == (768, 416)
    assert zoom_out_size(mask, (896, 672), 640) == (768, 576)  # a 3:4 input
    assert zoom_out_size(mask, (1056, 576), 640, height_ratio=1.0) == (640, 352)


def test_zoom_out_size_leaves_whole_cars_short_inputs_and_empty_masks_alone():
    assert zoom_out_size(_band(1920, 1080, 900, 1500, 0, 900), (1056, 576), 640) is None  # one side only
    assert zoom_out_size(_band(1920, 1080, 900, 1500, 100, 900), (1056, 576), 640) is None  # a whole car
    assert zoom_out_size(_band(1280, 1280, 400, 900), (768, 768), 640) is None  # square: not taller than 768
    assert zoom_out_size(_band(1280, 1918, 400, 900), (640, 960), 640) is None  # landscape
    assert zoom_out_size(np.zeros((1920, 1080), bool), (1056, 576), 640) is None


def test_zoom_out_size_looks_at_the_largest_region_only():
    mask = _band(1920, 1080, 900, 1500, 100, 900)  # the car, inside the frame
    mask[100:110, :] = True  # a thin false positive across the whole width
    assert zoom_out_size(mask, (1056, 576), 640) is None
    mask[900:1500, :] = True  # now the car itself runs off both sides
    assert zoom_out_size(mask, (1056, 576), 640) == (768, 416)


def _tall_photo(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((*TALL, 3)) * 255).astype(np.uint8)


@pytest.fixture
def kept(tiny_model) -> tuple:
    """The random tiny model with a kept-aspect processor, a 64x96 one fixed at the zoomed-out size, and a threshold
    so low that the first pass labels nearly every pixel car (so the car runs off both sides)."""
    processor = CarSegImageProcessor(size={"height": 64, "width": 96}, keep_aspect_ratio=True)
    fixed = CarSegImageProcessor(size={"height": ZOOMED_OUT[0], "width": ZOOMED_OUT[1]})
    probabilities = Segmenter(tiny_model, processor).segment(_tall_photo()).probabilities
    return tiny_model, processor, fixed, float(np.quantile(probabilities, 0.02))


def test_segmenter_zooms_out_to_one_pass_of_the_whole_image(kept):
    model, processor, fixed, threshold = kept
    photo = _tall_photo()
    first = Segmenter(model, processor).segment(photo, threshold=threshold)
    assert first.input_size == TALL_INPUT and zoom_out_size(first.mask, TALL_INPUT, 64) == ZOOMED_OUT
    zoomed = Segmenter(model, processor).segment(photo, threshold=threshold, zoom=True)
    direct = Segmenter(model, fixed).segment(photo, threshold=threshold)
    assert zoomed.zoom_out_size == ZOOMED_OUT and zoomed.zoom_box is None and zoomed.input_size == TALL_INPUT
    assert np.allclose(zoomed.probabilities, direct.probabilities, atol=1e-6)
    assert not np.allclose(zoomed.probabilities, first.probabilities, atol=1e-3)
    native = Segmenter(model, processor).segment(photo, threshold=threshold, zoom=True, native_size=True)
    assert native.zoom_out_size is None  # the native size is what was asked for


def test_evaluation_zooms_out_like_one_pass_at_the_smaller_size(kept):
    model, processor, fixed, threshold = kept
    photo = _tall_photo()
    [zoomed] = predict_batch(model, processor, [photo], PredictionSettings(threshold=threshold, zoom=True))
    [direct] = predict_batch(model, fixed, [photo], PredictionSettings(threshold=threshold))
    [first] = predict_batch(model, processor, [photo], PredictionSettings(threshold=threshold))
    assert np.array_equal(zoomed, direct) and not np.array_equal(zoomed, first)


def test_batch_prediction_and_pipeline_zooms_out_like_one_pass_at_the_smaller_size(kept, tmp_path):
    model, processor, fixed, threshold = kept
    assert_batch_and_pipeline_zoom_like_one_pass(model, processor, fixed, _tall_photo(), tmp_path, threshold)
