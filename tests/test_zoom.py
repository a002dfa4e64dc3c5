"""The zoomed second pass: where it looks again (`zoom_box`), and that every door pastes the crop's pass in place."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from carseg_hf.evaluation import _predict_batch
from carseg_hf.image_io import load_mask
from carseg_hf.inference import Segmenter
from carseg_hf.predict import BatchPredictor, PredictOptions
from carseg_hf.zoom import ZOOM_MARGIN, CropBox, largest_region, zoom_box


def _mask_with_box(height: int, width: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def test_largest_region_picks_the_biggest_connected_blob():
    mask = _mask_with_box(100, 150, 50, 80, 60, 120)
    mask[5:10, 5:10] = 1  # a small blob elsewhere
    mask[20, 140] = 1  # and a single pixel
    region = largest_region(mask)
    assert region.sum() == 30 * 60 and region[50:80, 60:120].all()
    assert largest_region(np.zeros((10, 10), np.uint8)) is None


def test_zoom_box_frames_a_small_car_with_the_image_aspect_ratio():
    mask = _mask_with_box(1280, 1918, 700, 900, 800, 1200)  # a 400x200 car in a 1918x1280 photo
    mask[10:30, 10:40] = 1  # a stray false positive far away does not widen the box
    box = zoom_box(mask, (320, 480))
    assert isinstance(box, CropBox)
    height, width = box.size
    assert abs(width / height - 1918 / 1280) < 0.01
    pad = ZOOM_MARGIN * 400
    assert box.top <= 700 - pad and box.bottom >= 900 + pad and box.left <= 800 - pad and box.right >= 1200 + pad
    assert width < 0.8 * 1918 and box.top > 30  # zoomed in, and the stray blob is left out
    assert 0 <= box.top < box.bottom <= 1280 and 0 <= box.left < box.right <= 1918


def test_zoom_box_is_never_smaller_than_the_network_input_and_stays_inside_the_image():
    mask = _mask_with_box(1280, 1918, 1250, 1280, 1890, 1918)  # a tiny car in the corner
    box = zoom_box(mask, (640, 960))
    assert box.size == (640, 960)
    assert (box.bottom, box.right) == (1280, 1918)  # shifted back inside the frame


def test_zoom_box_skips_big_cars_small_photos_and_empty_masks():
    assert zoom_box(_mask_with_box(1280, 1918, 200, 1100, 100, 1800), (640, 960)) is None  # the car fills the frame
    assert zoom_box(_mask_with_box(700, 1000, 300, 350, 400, 500), (640, 960)) is None  # barely above the input
    assert zoom_box(np.zeros((1280, 1918), np.uint8), (640, 960)) is None
    assert zoom_box(_mask_with_box(1280, 1918, 500, 700, 800, 1100), (640, 960), skip_fraction=0.4) is None


def _photo(seed: int = 0, height: int = 480, width: int = 720) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def _small_car_threshold(segmenter: Segmenter, image: np.ndarray) -> float:
    """A threshold at which the tiny random model's mask is a few scattered pixels, so that zoom has a small box."""
    probabilities = segmenter.segment(image).probabilities
    return float(np.quantile(probabilities, 0.999))


def test_segmenter_zoom_replaces_the_crop_with_its_own_pass(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    image = _photo()
    threshold = _small_car_threshold(segmenter, image)
    first = segmenter.segment(image, threshold=threshold)
    zoomed = segmenter.segment(image, threshold=threshold, zoom=True)
    assert first.zoom_box is None
    assert zoomed.zoom_box == zoom_box(first.mask, first.input_size) and zoomed.zoom_box is not None
    rows, columns = zoomed.zoom_box.slices
    crop = segmenter.segment(np.ascontiguousarray(image[rows, columns]), threshold=threshold)
    assert np.allclose(zoomed.probabilities[rows, columns], crop.probabilities)
    outside = np.ones(first.mask.shape, bool)
    outside[rows, columns] = False
    assert np.array_equal(zoomed.mask[outside], first.mask[outside])
    assert not np.array_equal(zoomed.mask, first.mask)  # the second pass changed something


def test_segmenter_zoom_does_nothing_at_native_size(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    image = _photo(1, 96, 144)
    result = segmenter.segment(image, native_size=True, zoom=True, threshold=0.5)
    assert result.zoom_box is None
    assert np.array_equal(result.mask, segmenter.segment(image, native_size=True, threshold=0.5).mask)


def test_evaluation_zoom_matches_a_second_pass_on_the_crop(tiny_model, tiny_processor):
    image = _photo(2)
    threshold = _small_car_threshold(Segmenter(tiny_model, tiny_processor), image)
    args = dict(resolution="processor", threshold=threshold, tta=False)
    [first] = _predict_batch(tiny_model, tiny_processor, [image], **args)
    [zoomed] = _predict_batch(tiny_model, tiny_processor, [image], zoom=True, **args)
    box = zoom_box(first, (64, 96))
    assert box is not None
    [crop] = _predict_batch(tiny_model, tiny_processor, [np.ascontiguousarray(image[box.slices])], **args)
    assert np.array_equal(zoomed[box.slices], crop)
    zoomed[box.slices] = first[box.slices]
    assert np.array_equal(zoomed, first)


def _predict_file(model, processor, path, out_dir, **options) -> np.ndarray:
    """`carseg predict`'s batch path on one file; the written PNG mask as 0/1."""
    options = dict(out_dir=out_dir, progress=False, workers=1, **options)
    BatchPredictor(model, processor, "cpu", PredictOptions(**options)).run([path])
    return load_mask(out_dir / f"{path.stem}.png")


def test_batch_prediction_zoom_matches_a_second_pass_on_the_crop(tiny_model, tiny_processor, tmp_path):
    image = _photo(3)
    photo = tmp_path / "photo.png"
    Image.fromarray(image).save(photo)
    threshold = _small_car_threshold(Segmenter(tiny_model, tiny_processor), image)
    first = _predict_file(tiny_model, tiny_processor, photo, tmp_path / "first", threshold=threshold)
    zoomed = _predict_file(tiny_model, tiny_processor, photo, tmp_path / "zoomed", threshold=threshold, zoom=True)
    box = zoom_box(first, (64, 96))
    assert box is not None
    crop_file = tmp_path / "crop.png"
    Image.fromarray(image[box.slices]).save(crop_file)
    crop = _predict_file(tiny_model, tiny_processor, crop_file, tmp_path / "crop", threshold=threshold)
    assert np.array_equal(zoomed[box.slices], crop)
    zoomed[box.slices] = first[box.slices]
    assert np.array_equal(zoomed, first)


def test_batch_prediction_zoom_refuses_processor_decoding():
    with pytest.raises(ValueError, match="zoom crops the full-size image"):
        PredictOptions(out_dir="masks", zoom=True, decode="processor").validate()
