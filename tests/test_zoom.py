"""The zoomed second pass: where it looks again (`zoom_box`), and that every door pastes the crop's pass in place."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from carseg_hf import CarSegImageProcessor
from carseg_hf.evaluation_prediction import PredictionSettings, predict_batch
from carseg_hf.image_io import load_mask, load_rgb
from carseg_hf.inference import Segmenter
from carseg_hf.predict import BatchPredictor, PredictOptions
from carseg_hf.zoom import ZOOM_MARGIN, CropBox, crop_pass_is_plausible, edge_share, largest_region, zoom_box
from tests.conftest import fit_tiny_model
from tests.fixture import make_carvana_fixture


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


def test_edge_share_counts_only_edges_inside_the_image():
    mask = np.zeros((10, 20), np.uint8)
    mask[0, 1:-1] = 1  # the top row, without its corners
    inside = CropBox(5, 15, 5, 25)
    assert edge_share(mask, inside, (100, 100)) == pytest.approx(18 / 60)  # 2 rows of 20 and 2 columns of 10
    at_top = CropBox(0, 10, 5, 25)  # its top edge is the image's: not counted
    assert edge_share(mask, at_top, (100, 100)) == 0.0
    assert edge_share(mask, CropBox(0, 10, 0, 20), (10, 20)) == 0.0  # the whole image


def test_a_second_pass_that_spreads_to_the_crop_edges_is_implausible():
    box = CropBox(100, 300, 100, 400)
    first = np.zeros((200, 300), np.uint8)
    first[80:120, 120:180] = 1  # a region well inside the crop
    inside = np.zeros_like(first)
    inside[70:130, 100:200] = 1  # the crop's pass finds a bigger car, still off the edges
    spread = np.zeros_like(first)
    spread[20:, :] = 1  # the crop's pass labels most of the crop car, out to three edges
    assert crop_pass_is_plausible(first, inside, box, (1000, 1000))
    assert not crop_pass_is_plausible(first, spread, box, (1000, 1000))
    assert crop_pass_is_plausible(first, spread, CropBox(800, 1000, 0, 300), (1000, 300))  # on the image edges


def _photo(seed: int = 0, height: int = 480, width: int = 720) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple:
    """A tiny model fitted on fixture cars that fill their 192x128 frames, and its 64x96 processor."""
    dataset = make_carvana_fixture(
        tmp_path_factory.mktemp("fixture"), num_cars=1, angles=8, size=(192, 128), num_test=1, write_csv=False
    )
    processor = CarSegImageProcessor(size={"height": 64, "width": 96})
    return fit_tiny_model(dataset, processor), processor, dataset


@pytest.fixture(scope="module")
def small_car(fitted) -> np.ndarray:
    """A 320x480 photo with one of the fixture's 192x128 test cars pasted into it, small in the frame."""
    car = load_rgb(next((fitted[2] / "test").glob("*.jpg")))  # (128, 192, 3)
    photo = np.empty((320, 480, 3), np.uint8)
    photo[:] = car[:8].reshape(-1, 3).mean(axis=0).astype(np.uint8)  # the backdrop's colour
    photo[160:288, 230:422] = car
    return photo


def test_segmenter_zoom_segments_a_small_car_again_from_a_crop(fitted, small_car):
    model, processor, _ = fitted
    segmenter = Segmenter(model, processor)
    photo = small_car
    first = segmenter.segment(photo)
    zoomed = segmenter.segment(photo, zoom=True)
    box = zoom_box(first.mask, first.input_size)
    assert box is not None and zoomed.zoom_box == box  # the crop's pass was plausible and kept
    rows, columns = box.slices
    crop = segmenter.segment(np.ascontiguousarray(photo[rows, columns]))
    assert np.allclose(zoomed.probabilities[rows, columns], crop.probabilities)
    outside = np.ones(first.mask.shape, bool)
    outside[rows, columns] = False
    assert np.array_equal(zoomed.mask[outside], first.mask[outside])


def test_segmenter_drops_an_implausible_second_pass(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)  # random weights: the crop's pass is noise out to its edges
    image = _photo()
    threshold = float(np.quantile(segmenter.segment(image).probabilities, 0.999))  # a few scattered pixels
    first = segmenter.segment(image, threshold=threshold)
    box = zoom_box(first.mask, first.input_size)
    assert box is not None
    crop = segmenter.segment(np.ascontiguousarray(image[box.slices]), threshold=threshold)
    assert not crop_pass_is_plausible(first.mask[box.slices], crop.mask, box, image.shape[:2])
    zoomed = segmenter.segment(image, threshold=threshold, zoom=True)
    assert zoomed.zoom_box is None and np.array_equal(zoomed.probabilities, first.probabilities)


def test_segmenter_zoom_does_nothing_at_native_size(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    image = _photo(1, 96, 144)
    result = segmenter.segment(image, native_size=True, zoom=True, threshold=0.5)
    assert result.zoom_box is None
    assert np.array_equal(result.mask, segmenter.segment(image, native_size=True, threshold=0.5).mask)


def test_evaluation_zoom_matches_a_second_pass_on_the_crop(fitted, small_car):
    model, processor, _ = fitted
    photo = small_car
    [first] = predict_batch(model, processor, [photo], PredictionSettings())
    [zoomed] = predict_batch(model, processor, [photo], PredictionSettings(zoom=True))
    box = zoom_box(first, (64, 96))
    assert box is not None
    [crop] = predict_batch(model, processor, [np.ascontiguousarray(photo[box.slices])], PredictionSettings())
    assert crop_pass_is_plausible(first[box.slices], crop, box, first.shape)
    assert np.array_equal(zoomed[box.slices], crop) and not np.array_equal(zoomed, first)
    zoomed[box.slices] = first[box.slices]
    assert np.array_equal(zoomed, first)


def _predict_file(model, processor, path, out_dir, **options) -> np.ndarray:
    """`carseg predict`'s batch path on one file; the written PNG mask as 0/1."""
    options = dict(out_dir=out_dir, progress=False, workers=1, **options)
    BatchPredictor(model, processor, "cpu", PredictOptions(**options)).run([path])
    return load_mask(out_dir / f"{path.stem}.png")


def test_batch_prediction_zoom_matches_a_second_pass_on_the_crop(fitted, small_car, tmp_path):
    model, processor, _ = fitted
    photo = small_car
    photo_file = tmp_path / "photo.png"
    Image.fromarray(photo).save(photo_file)
    first = _predict_file(model, processor, photo_file, tmp_path / "first")
    zoomed = _predict_file(model, processor, photo_file, tmp_path / "zoomed", zoom=True)
    box = zoom_box(first, (64, 96))
    assert box is not None
    crop_file = tmp_path / "crop.png"
    Image.fromarray(photo[box.slices]).save(crop_file)
    crop = _predict_file(model, processor, crop_file, tmp_path / "crop")
    assert crop_pass_is_plausible(first[box.slices], crop, box, first.shape)
    assert np.array_equal(zoomed[box.slices], crop) and not np.array_equal(zoomed, first)
    zoomed[box.slices] = first[box.slices]
    assert np.array_equal(zoomed, first)


def test_batch_prediction_zoom_refuses_processor_decoding():
    with pytest.raises(ValueError, match="zoom crops the full-size image"):
        PredictOptions(out_dir="masks", zoom=True, decode="processor").validate()


def test_pipeline_zoom_matches_a_second_pass_on_the_crop(fitted, small_car, tmp_path):
    from transformers import pipeline

    model, processor, _ = fitted
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    segmenter = pipeline("image-segmentation", model=str(tmp_path / "model"))

    def car(image, **kwargs) -> np.ndarray:
        results = segmenter(Image.fromarray(image), **kwargs)
        return next(np.asarray(r["mask"]) > 0 for r in results if r["label"] == "car")

    first, zoomed = car(small_car), car(small_car, zoom=True)
    box = zoom_box(first, (64, 96))
    assert box is not None
    crop = car(np.ascontiguousarray(small_car[box.slices]))
    assert crop_pass_is_plausible(first[box.slices], crop, box, first.shape)
    assert np.array_equal(zoomed[box.slices], crop) and not np.array_equal(zoomed, first)
    zoomed[box.slices] = first[box.slices]
    assert np.array_equal(zoomed, first)
    assert np.array_equal(car(small_car, zoom=True, threshold=0.5), car(small_car, zoom=True))


def test_pipeline_zoom_is_refused_for_a_model_that_is_not_carseg():
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor, pipeline

    config = SegformerConfig(
        num_encoder_blocks=1, depths=[1], sr_ratios=[1], hidden_sizes=[8], patch_sizes=[7], strides=[4],
        num_attention_heads=[1], mlp_ratios=[1], decoder_hidden_size=8, num_labels=2,
    )  # fmt: skip
    processor = SegformerImageProcessor(size={"height": 32, "width": 32})
    model = SegformerForSemanticSegmentation(config)
    segmenter = pipeline("image-segmentation", model=model, image_processor=processor)
    image = Image.fromarray(_photo(5, 40, 60))
    assert segmenter(image)  # the stock pipeline runs as before
    with pytest.raises(ValueError, match="zoom=True needs a carseg model"):
        segmenter(image, zoom=True)
