"""Close-ups: when the first pass's car touches an edge, the whole image is checked again at a small input.

`close_up_size` decides whether to check and at what size, `close_up_pass_is_kept` whether the check's pass replaces
the first; every door (Segmenter, evaluation, `carseg predict`, the pipeline) must then give exactly the mask of one
pass of the whole image at that size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.evaluation_prediction import PredictionSettings, predict_batch
from carseg_hf.inference import Segmenter
from carseg_hf.zoom import close_up_pass_is_kept, close_up_size, edges_touched, largest_region
from tests.conftest import tiny_config
from tests.zoom_doors import assert_batch_and_pipeline_zoom_like_one_pass

#: A 3:2 photo; with a kept-aspect 160x240 processor the close-up check's input is 0.4 of that: 64x96.
PHOTO = (192, 288)
CHECK_SIZE = (64, 96)


def _box(height: int, width: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[top:bottom, left:right] = True
    return mask


def test_close_up_size_checks_cars_that_touch_an_edge_and_empty_first_passes():
    assert close_up_size(_box(1280, 1918, 400, 1280, 0, 900), (640, 960)) == (256, 384)  # cut by two edges
    assert close_up_size(_box(1280, 1918, 400, 1280, 300, 1500), (640, 960)) == (256, 384)  # the bottom edge only
    assert close_up_size(np.zeros((1280, 1918), bool), (640, 960)) == (256, 384)  # nothing found
    assert close_up_size(_box(1920, 1080, 0, 1500, 0, 1080), (640, 960)) == (416, 224)  # 9:16: aspect kept
    assert close_up_size(_box(1920, 1080, 0, 1500, 0, 1080), (640, 960), keep_aspect_ratio=False) == (256, 384)
    assert close_up_size(_box(1280, 1918, 0, 1280, 0, 1918), (768, 1152)) == (320, 448)  # a run's larger input
    assert close_up_size(np.zeros((1280, 1918), bool), (64, 96)) == (32, 32)  # never below the network's stride


def test_close_up_size_leaves_cars_inside_the_frame_alone():
    assert close_up_size(_box(1280, 1918, 300, 1100, 200, 1700), (640, 960)) is None  # a Carvana-style photo
    assert close_up_size(_box(1280, 1918, 600, 800, 800, 1100), (640, 960)) is None  # a small car in a street
    mask = _box(1280, 1918, 300, 1100, 200, 1700)
    mask[0:5, 0:40] = True  # a speck in the corner: not the largest region
    assert close_up_size(mask, (640, 960)) is None


def _sure(mask: np.ndarray, car: float = 0.99) -> np.ndarray:
    """Probabilities of `car` on the mask and 0.01 elsewhere."""
    return np.where(mask, car, 0.01).astype(np.float32)


def test_close_up_pass_is_kept_only_for_a_larger_car_running_out_of_the_frame_found_with_certainty():
    first = _box(200, 300, 150, 200, 0, 100)  # a sliver of bumper: 8% of the image
    close_up = _box(200, 300, 40, 200, 0, 300)  # the car across the frame: 80%, touching 3 edges
    assert close_up_pass_is_kept(first, _sure(close_up))
    assert not close_up_pass_is_kept(close_up, _sure(first))  # the check found less car
    assert not close_up_pass_is_kept(first, _sure(_box(200, 300, 150, 200, 0, 150)))  # 4% more: too little gain
    assert not close_up_pass_is_kept(first, _sure(_box(200, 300, 20, 180, 0, 250)))  # more car, one edge only
    assert not close_up_pass_is_kept(first, _sure(np.zeros((200, 300), bool)))
    assert close_up_pass_is_kept(np.zeros((200, 300), bool), _sure(close_up))  # the first pass found nothing
    assert not close_up_pass_is_kept(first, _sure(close_up, car=0.9))  # half-sure: a texture, not a car
    assert close_up_pass_is_kept(first, _sure(close_up, car=0.9), min_confidence=0.85)
    assert not close_up_pass_is_kept(first, _sure(close_up, car=0.6), threshold=0.7)  # the threshold is honoured


@pytest.fixture(scope="module")
def close_up() -> tuple:
    """A random tiny model (seed 2) whose first pass at 160x240 labels little car and whose 64x96 pass labels more.

    Its head is shifted so that the 64x96 pass's 40th percentile logit sits at 0, and sharpened 50 times so that its
    probabilities are near 0 or 1, as a trained model's are. Returns the model, its kept-aspect 160x240 processor, a
    processor fixed at the check's size, and the threshold 0.5, at which the check's pass is kept: a stand-in for a
    close-up that the first pass misses.
    """
    torch.manual_seed(2)
    model = CarSegForSemanticSegmentation(tiny_config()).eval()
    processor = CarSegImageProcessor(size={"height": 160, "width": 240}, keep_aspect_ratio=True)
    fixed = CarSegImageProcessor(size={"height": CHECK_SIZE[0], "width": CHECK_SIZE[1]})
    probabilities = Segmenter(model, fixed).segment(_photo()).probabilities.astype(np.float64)
    pivot = float(np.quantile(np.log(probabilities / (1.0 - probabilities)), 0.4))
    with torch.no_grad():
        model.unet.head.weight.mul_(50.0)
        model.unet.head.bias.sub_(pivot).mul_(50.0)
    return model, processor, fixed, 0.5


def _photo() -> np.ndarray:
    return (np.random.default_rng(0).random((*PHOTO, 3)) * 255).astype(np.uint8)


def test_the_fixture_is_a_close_up_that_the_first_pass_misses(close_up):
    model, processor, fixed, threshold = close_up
    first = Segmenter(model, processor).segment(_photo(), threshold=threshold).mask.astype(bool)
    check = Segmenter(model, fixed).segment(_photo(), threshold=threshold).mask.astype(bool)
    region = largest_region(first)
    assert region is None or edges_touched(region) > 0
    probabilities = Segmenter(model, fixed).segment(_photo(), threshold=threshold).probabilities
    assert close_up_size(first, (160, 240)) == CHECK_SIZE and close_up_pass_is_kept(first, probabilities, threshold)
    assert not np.array_equal(first, check)


def test_segmenter_keeps_the_close_up_pass(close_up):
    model, processor, fixed, threshold = close_up
    first = Segmenter(model, processor).segment(_photo(), threshold=threshold)
    zoomed = Segmenter(model, processor).segment(_photo(), threshold=threshold, zoom=True)
    direct = Segmenter(model, fixed).segment(_photo(), threshold=threshold)
    assert zoomed.close_up_size == CHECK_SIZE and zoomed.zoom_out_size is None and zoomed.zoom_box is None
    assert np.allclose(zoomed.probabilities, direct.probabilities, atol=1e-6)
    assert not np.array_equal(zoomed.mask, first.mask)
    native = Segmenter(model, processor).segment(_photo(), threshold=threshold, zoom=True, native_size=True)
    assert native.close_up_size is None  # the native size is what was asked for


def test_evaluation_keeps_the_close_up_pass(close_up):
    model, processor, fixed, threshold = close_up
    [zoomed] = predict_batch(model, processor, [_photo()], PredictionSettings(threshold=threshold, zoom=True))
    [direct] = predict_batch(model, fixed, [_photo()], PredictionSettings(threshold=threshold))
    [first] = predict_batch(model, processor, [_photo()], PredictionSettings(threshold=threshold))
    assert np.array_equal(zoomed, direct) and not np.array_equal(zoomed, first)


def test_batch_prediction_and_pipeline_keeps_the_close_up_pass(close_up, tmp_path):
    model, processor, fixed, threshold = close_up
    assert_batch_and_pipeline_zoom_like_one_pass(model, processor, fixed, _photo(), tmp_path, threshold)


def test_the_zoom_decisions_take_a_precomputed_largest_region_and_agree():
    from carseg_hf.zoom import zoom_box, zoom_out_size

    cut_by_both_sides, small_car, empty = (
        _box(1920, 1080, 900, 1500, 0, 1080),
        _box(1280, 1918, 600, 800, 800, 1100),
        np.zeros((64, 96), bool),
    )
    for mask in (cut_by_both_sides, small_car, empty):
        mask[:3, :3] = True  # a speck: a second, smaller region
        region = largest_region(mask)
        input_size = (1056, 576) if mask.shape[0] > mask.shape[1] else (640, 960)
        assert close_up_size(mask, (640, 960), region=region) == close_up_size(mask, (640, 960))
        assert zoom_out_size(mask, input_size, 640, region=region) == zoom_out_size(mask, input_size, 640)
        assert zoom_box(mask, input_size, region=region) == zoom_box(mask, input_size)
