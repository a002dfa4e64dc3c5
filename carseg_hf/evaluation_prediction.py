"""How `carseg evaluate` predicts masks: batches grouped by input size, hflip TTA, and zoom's second pass."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .image_processing_carseg import CarSegImageProcessor
from .inference import predict_logits
from .modeling_carseg import CarSegForSemanticSegmentation
from .zoom_pass import run_second_pass


class PredictionSettings(NamedTuple):
    """How `evaluate_model` predicts each mask.

    Attributes:
        resolution: `"processor"` (the processor's size) or `"native"` (each image's own size).
        threshold: Probability threshold; None takes the processor's.
        tta: Horizontal-flip test-time augmentation.
        zoom: Segment a car that fills little of the frame once more, from a crop around it, a car that runs off both
            sides of a tall frame once more at a smaller input, and a close-up's car at a small input
            (`carseg_hf.zoom`).
    """

    resolution: str = "processor"
    threshold: float | None = None
    tta: bool = False
    zoom: bool = False


def predict_batch(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    images: list[np.ndarray],
    settings: PredictionSettings,
) -> list[np.ndarray]:
    """Predict 0/1 masks at each image's own size for a list of RGB uint8 arrays.

    Args:
        model: The network, in eval mode.
        processor: Its image processor.
        images: `(height, width, 3)` uint8 arrays; those of one input size share a forward pass.
        settings: Resolution, threshold, TTA and zoom.

    Returns:
        `(height, width)` uint8 0/1 masks, one per image, in order.
    """
    native = settings.resolution == "native"
    zoomed = settings.zoom and not native  # at native size the input is the image itself: nothing to zoom to
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        height, width = image.shape[:2]
        key = (height, width) if native else tuple(processor.resized_size(height, width).values())
        groups.setdefault(key, []).append(index)  # only images of one input size share a forward pass
    masks: list[np.ndarray | None] = [None] * len(images)
    for input_size, indices in groups.items():
        predicted = _predict_masks(model, processor, [images[i] for i in indices], settings)
        for i, mask in zip(indices, predicted):
            masks[i] = _zoom_pass(model, processor, images[i], mask, input_size, settings) if zoomed else mask
    return masks


def _zoom_pass(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    image: np.ndarray,
    mask: np.ndarray,
    input_size: tuple[int, int],
    settings: PredictionSettings,
) -> np.ndarray:
    """Zoom's second pass (`carseg_hf.zoom`), if any: the whole image at a smaller input, or a crop into `mask`."""
    threshold = processor.threshold if settings.threshold is None else settings.threshold
    kept = run_second_pass(
        mask.astype(bool),
        input_size,
        (processor.size["height"], processor.size["width"]),
        processor.keep_aspect_ratio,
        threshold,
        segment_whole=lambda size: _predict_probabilities(model, processor, image, settings, size),
        segment_crop=lambda box: _predict_probabilities(
            model, processor, np.ascontiguousarray(image[box.slices]), settings
        ),
        probabilities_of=lambda probabilities: probabilities,
    )
    if kept is None:
        return mask
    second = (kept.output > threshold).astype(np.uint8)  # (height, width), or (crop_height, crop_width) for a crop
    if kept.zoom_box is None:  # a whole-image pass replaces the first
        return second
    mask[kept.zoom_box.slices] = second
    return mask


def _predict_masks(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    images: list[np.ndarray],
    settings: PredictionSettings,
) -> list[np.ndarray]:
    """One forward pass over images of one input size: `(height, width)` uint8 0/1 masks at their own sizes."""
    logits = _forward(model, processor, images, settings, None)  # (batch, 1, h, w)
    predicted = processor.post_process_semantic_segmentation(
        logits, target_sizes=[image.shape[:2] for image in images], threshold=settings.threshold
    )  # list of (height, width) int64
    return [mask.to(torch.uint8).cpu().numpy() for mask in predicted]


def _predict_probabilities(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    image: np.ndarray,
    settings: PredictionSettings,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """`(height, width)` float32 car probabilities of one image, segmented at exactly `size` = `(h, w)` if given."""
    logits = processor.resize_logits(_forward(model, processor, [image], settings, size), image.shape[:2])
    return torch.sigmoid(logits[0, 0]).cpu().numpy()  # (height, width)


def _forward(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    images: list[np.ndarray],
    settings: PredictionSettings,
    size: tuple[int, int] | None,
) -> torch.Tensor:
    """`(batch, 1, h, w)` float32 logits of images of one input size, with the settings' resolution and TTA.

    `size` = `(height, width)` overrides the processor's input size (exactly, whatever the aspect ratio).
    """
    device = next(model.parameters()).device
    resize = processor.exact_size_kwargs(size)
    pixel_values = processor(images, do_resize=settings.resolution == "processor", **resize)["pixel_values"]
    with torch.inference_mode():
        return predict_logits(model, pixel_values.to(device), tta=settings.tta)  # (batch, 1, h, w)
