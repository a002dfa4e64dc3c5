"""Helpers for the zoom tests: one image through `carseg predict`'s batch predictor, or through the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.image_io import load_mask
from carseg_hf.predict import BatchPredictor, PredictOptions


def batch_predicted_mask(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    photo: np.ndarray,
    out_dir: Path,
    threshold: float,
    **options,
) -> np.ndarray:
    """The `(height, width)` mask that `BatchPredictor` writes for one photo, saved as `out_dir/photo.png` first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    photo_file = out_dir / "photo.png"
    Image.fromarray(photo).save(photo_file)
    options = dict(out_dir=out_dir / "masks", progress=False, workers=1, threshold=threshold, **options)
    BatchPredictor(model, processor, "cpu", PredictOptions(**options)).run([photo_file])
    return load_mask(out_dir / "masks" / "photo.png")


def pipeline_car_mask(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    photo: np.ndarray,
    save_dir: Path,
    threshold: float,
    **kwargs,
) -> np.ndarray:
    """The `(height, width)` bool car mask of transformers' image-segmentation pipeline over the saved model."""
    from transformers import pipeline

    model.save_pretrained(save_dir)
    processor.save_pretrained(save_dir)
    segmenter = pipeline("image-segmentation", model=str(save_dir))
    results = segmenter(Image.fromarray(photo), threshold=threshold, **kwargs)
    return next((np.asarray(r["mask"]) > 0 for r in results if r["label"] == "car"), np.zeros(photo.shape[:2], bool))


def assert_batch_and_pipeline_zoom_like_one_pass(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    fixed: CarSegImageProcessor,
    photo: np.ndarray,
    tmp_path: Path,
    threshold: float,
) -> None:
    """`carseg predict --zoom` and the zoomed pipeline give one pass at `fixed`'s size, not the first pass."""
    zoomed = batch_predicted_mask(model, processor, photo, tmp_path / "zoomed", threshold, zoom=True)
    direct = batch_predicted_mask(model, fixed, photo, tmp_path / "direct", threshold, decode="tensor")
    first = batch_predicted_mask(model, processor, photo, tmp_path / "first", threshold)
    assert np.array_equal(zoomed, direct) and not np.array_equal(zoomed, first)
    zoomed = pipeline_car_mask(model, processor, photo, tmp_path / "kept", threshold, zoom=True)
    direct = pipeline_car_mask(model, fixed, photo, tmp_path / "fixed", threshold)
    first = pipeline_car_mask(model, processor, photo, tmp_path / "kept", threshold)
    assert np.array_equal(zoomed, direct) and not np.array_equal(zoomed, first)
