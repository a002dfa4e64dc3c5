"""Zoom's second pass in a batch prediction run (`carseg_hf.zoom`), on the device, mask by mask."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..image_processing_carseg import CarSegImageProcessor
from ..zoom import CropBox
from ..zoom_pass import run_second_pass

if TYPE_CHECKING:
    from .loop import BatchPredictor


def zoom_in_place(
    predictor: BatchPredictor, images: list[torch.Tensor], masks: torch.Tensor, input_size: tuple[int, int]
) -> None:
    """Zoom's second pass (`carseg_hf.zoom`), in place in `masks`.

    Each close-up's car is segmented again at a small input, each car that runs off both sides of a tall frame again
    at a smaller input, and each small car again from a crop.

    Args:
        predictor: The run's predictor: its network input size, tensor processor, forward pass and threshold.
        images: `(3, height, width)` uint8 images on the device, one per mask.
        masks: `(batch, height, width)` bool first-pass masks on the device; crops are overwritten.
        input_size: `(height, width)` of the first pass's network input.
    """
    for index, image in enumerate(images):
        first = masks[index].cpu().numpy()  # (height, width) bool
        kept = run_second_pass(
            first,
            input_size,
            predictor.size,  # None at native resolution: the input is the image itself, nothing to zoom out to
            predictor.processor.keep_aspect_ratio,
            predictor.threshold,
            segment_whole=lambda size, image=image: _whole_image_logits(predictor, image, size),
            segment_crop=lambda box, image=image: _crop_logits(predictor, image, box),
            probabilities_of=lambda logits: torch.sigmoid(logits).cpu().numpy(),
        )
        if kept is None:
            continue
        second = kept.output > predictor.logit_threshold  # (height, width), or (crop_height, crop_width) for a crop
        if kept.zoom_box is None:  # a whole-image pass replaces the first
            masks[index] = second
        else:
            rows, columns = kept.zoom_box.slices
            masks[index, rows, columns] = second


def _whole_image_logits(predictor: BatchPredictor, image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`(height, width)` float logits on the device of one `(3, height, width)` uint8 image segmented at `size`."""
    pixel_values = predictor.tensor_processor.preprocess_tensors([image], size)  # (1, 3, h, w)
    logits = predictor.forward(pixel_values)  # (1, 1, h, w)
    return CarSegImageProcessor.resize_logits(logits, tuple(image.shape[-2:]))[0, 0].float()  # (height, width)


def _crop_logits(predictor: BatchPredictor, image: torch.Tensor, box: CropBox) -> torch.Tensor:
    """`(crop_height, crop_width)` float logits on the device of the crop `box` of a `(3, height, width)` image."""
    rows, columns = box.slices
    crop_input = predictor.input_size(box.size) or box.size
    pixel_values = predictor.tensor_processor.preprocess_tensors([image[:, rows, columns]], crop_input)  # (1, 3, h, w)
    logits = predictor.forward(pixel_values)  # (1, 1, h, w)
    return CarSegImageProcessor.resize_logits(logits, box.size)[0, 0].float()  # (crop_height, crop_width)
