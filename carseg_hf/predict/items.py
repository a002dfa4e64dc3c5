"""One image on its way through the batch prediction pipeline, from its path to its mask and RLE string."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class PipelineItem:
    """One image moving through the pipeline; each stage fills in its fields and drops what it no longer needs.

    Attributes:
        path: The image file.
        need_mask: Whether a mask file or an overlay is to be written for it.
        need_row: Whether a submission row is to be written for it.
        original_size: `(height, width)` of the image as decoded.
        pixel_values: `(3, height, width)` float32, preprocessed by the processor (processor decoding).
        image: `(3, height, width)` uint8 (tensor decoding).
        jpeg: `(num_bytes,)` uint8 file bytes, before batched decoding on the device (tensor decoding).
        error: Why the image could not be read, or None.
        mask: `(height, width)` bool predicted mask, once computed, when `need_mask`.
        rle: The mask's Kaggle RLE string, once computed, when `need_row`.
    """

    path: Path
    need_mask: bool
    need_row: bool
    original_size: tuple[int, int] | None = None  # (height, width)
    pixel_values: torch.Tensor | None = None  # (3, height, width) float32, processor path
    image: torch.Tensor | None = None  # (3, height, width) uint8, tensor path
    jpeg: torch.Tensor | None = None  # (num_bytes,) uint8, tensor path before decoding
    error: str | None = None
    mask: np.ndarray | None = None  # (height, width) bool
    rle: str | None = None
