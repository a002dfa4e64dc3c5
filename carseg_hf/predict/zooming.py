"""Zoom's second pass in a batch prediction run (`carseg_hf.zoom`), on the device, mask by mask."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..image_processing_carseg import CarSegImageProcessor
from ..zoom import (
    close_up_pass_is_kept,
    close_up_size,
    crop_pass_is_plausible,
    largest_region,
    zoom_box,
    zoom_out_size,
)

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
        region = largest_region(first)  # labelled once for the decisions below
        if predictor.size is not None:  # at native resolution the input is the image itself: nothing to zoom out to
            check_size = close_up_size(first, predictor.size, predictor.processor.keep_aspect_ratio, region=region)
            if check_size is not None:
                close_up = _whole_image_logits(predictor, image, check_size, first.shape)  # (height, width)
                if close_up_pass_is_kept(first, torch.sigmoid(close_up).cpu().numpy(), predictor.threshold):
                    masks[index] = close_up > predictor.logit_threshold
                    continue
            out_size = zoom_out_size(first, input_size, predictor.size[0], region=region)
            if out_size is not None:
                masks[index] = _whole_image_logits(predictor, image, out_size, first.shape) > predictor.logit_threshold
                continue
        box = zoom_box(first, input_size, region=region)
        if box is None:
            continue
        rows, columns = box.slices
        crop_input = predictor.input_size(box.size) or box.size
        pixel_values = predictor.tensor_processor.preprocess_tensors(
            [image[:, rows, columns]], crop_input
        )  # (1, 3, h, w)
        logits = predictor.forward(pixel_values)  # (1, 1, h, w)
        logits = CarSegImageProcessor.resize_logits(logits, box.size)  # (1, 1, crop_height, crop_width)
        second = logits[0, 0] > predictor.logit_threshold  # (crop_height, crop_width) bool
        if crop_pass_is_plausible(first[rows, columns], second.cpu().numpy(), box, first.shape):
            masks[index, rows, columns] = second


def _whole_image_logits(
    predictor: BatchPredictor, image: torch.Tensor, size: tuple[int, int], image_size: tuple[int, int]
) -> torch.Tensor:
    """`(height, width)` float logits on the device of one `(3, height, width)` uint8 image segmented at `size`."""
    pixel_values = predictor.tensor_processor.preprocess_tensors([image], size)  # (1, 3, h, w)
    logits = CarSegImageProcessor.resize_logits(predictor.forward(pixel_values), image_size)  # (1, 1, height, width)
    return logits[0, 0].float()
