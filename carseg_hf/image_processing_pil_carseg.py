"""carseg's image processor, PIL backend: `AutoImageProcessor.from_pretrained(..., backend="pil")`.

It resizes with PIL on the CPU, as every carseg processor did before the torch backend existed. Parameters,
decoding, normalisation and post-processing are those of `CarSegImageProcessor` (shared through
`image_processing_base_carseg.py`); the two agree to within one grey level before normalisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from .image_processing_base_carseg import CarSegImageProcessorBase

__all__ = ["CarSegImageProcessorPil"]


class CarSegImageProcessorPil(CarSegImageProcessorBase):
    r"""Prepares car photos and masks for [`CarSegForSemanticSegmentation`] with PIL, and turns logits into masks.

    The PIL backend of [`CarSegImageProcessor`]: images are resized with PIL's `resample` filter on the CPU; the
    batch is moved to `device=` when given. It saves as `CarSegImageProcessor` (as transformers' PIL processors
    do), so a folder saved from either backend loads the torch one by default.
    """

    @property
    def backend(self) -> str:
        """`str`: `"pil"`, the `AutoImageProcessor` backend this class is registered for."""
        return "pil"

    def resize_image(self, image: np.ndarray, size: dict[str, int]) -> np.ndarray:
        """Resize an RGB uint8 `(height, width, 3)` array with the configured PIL filter; a no-op at `size`."""
        if image.shape[:2] == (size["height"], size["width"]):
            return image
        resized = Image.fromarray(image).resize((size["width"], size["height"]), resample=self.resample)
        return np.asarray(resized)

    def _resized_pixels(self, image: np.ndarray, size: dict[str, int], device: torch.device | None) -> torch.Tensor:
        resized = np.array(self.resize_image(image, size), dtype=np.uint8, copy=True)  # (height, width, 3)
        pixels = torch.from_numpy(resized).permute(2, 0, 1).unsqueeze(0)  # (1, 3, height, width) uint8
        return pixels.to(device=device, dtype=torch.float32)  # whole grey levels

    def to_dict(self) -> dict[str, Any]:
        """The saved parameters; `image_processor_type` names the torch backend, as transformers' PIL backends do."""
        processor_dict = super().to_dict()
        if processor_dict.get("image_processor_type", "").endswith("Pil"):
            processor_dict["image_processor_type"] = processor_dict["image_processor_type"][: -len("Pil")]
        return processor_dict
