"""carseg's image processor, torch backend: the default of `AutoImageProcessor` and of the whole library.

It resizes with torch (bilinear with antialiasing, rounded to whole grey levels, as PIL's `BILINEAR` does) on the
CPU or on any device, and also takes uint8 tensors that are already on a device (`preprocess_tensors`, used by
the batch predictor after nvjpeg decoding and by training), so that such a batch never goes back through the
host. `CarSegImageProcessorPil` (`image_processing_pil_carseg.py`) is the PIL backend; both share parameters,
decoding, normalisation and post-processing (`image_processing_base_carseg.py`) and agree to within one grey level
before normalisation (PIL and torch round bilinear filters slightly differently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .image_processing_base_carseg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CarSegImageProcessorBase,
    CarSegImageProcessorKwargs,
)
from .pixel_normalization import rescale_and_normalize

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "CarSegImageProcessor", "CarSegImageProcessorKwargs"]


def resize_pixels(image: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Resize one uint8 image tensor on its device, as PIL's `BILINEAR` filter does, to whole grey levels.

    Args:
        image: `(3, height, width)` uint8 tensor.
        size: `(height, width)` to resize to, or None to keep the image's size.

    Returns:
        A `(1, 3, height, width)` float32 tensor of values in 0..255 with no fractional part.
    """
    pixels = image.unsqueeze(0).float()  # (1, 3, height, width)
    if size is not None and tuple(image.shape[-2:]) != tuple(size):
        pixels = F.interpolate(pixels, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        pixels = pixels.round_().clamp_(0.0, 255.0)  # (1, 3, size_height, size_width), whole grey levels
    return pixels


class CarSegImageProcessor(CarSegImageProcessorBase):
    r"""Prepares car photos and masks for [`CarSegForSemanticSegmentation`] with torch, and turns logits into masks.

    The torch backend (`AutoImageProcessor`'s default; `backend="pil"` gives `CarSegImageProcessorPil`). Inputs,
    parameters and outputs are those of [`CarSegImageProcessorBase`]; images are resized with
    `torch.nn.functional.interpolate` (bilinear, antialiased, rounded to whole grey levels), on `device=` when given.
    """

    supported_resample = (Image.BILINEAR,)  # resize_pixels reproduces PIL's BILINEAR only

    @property
    def backend(self) -> str:
        """`str`: `"torchvision"`, the `AutoImageProcessor` backend this class is registered for."""
        return "torchvision"

    def resize_image(self, image: np.ndarray, size: dict[str, int]) -> np.ndarray:
        """Resize an RGB uint8 `(height, width, 3)` array with torch; a no-op when already at `size`."""
        if image.shape[:2] == (size["height"], size["width"]):
            return image
        pixels = self._resized_pixels(image, size, None)  # (1, 3, height, width) whole grey levels
        return pixels[0].permute(1, 2, 0).to(torch.uint8).numpy()  # (height, width, 3)

    def _resized_pixels(self, image: np.ndarray, size: dict[str, int], device: torch.device | None) -> torch.Tensor:
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)  # (3, h, w) uint8
        if device is not None:
            pixels = pixels.to(device)  # uint8: a quarter of the float copy
        return resize_pixels(pixels, (size["height"], size["width"]))  # (1, 3, height, width)

    @classmethod
    def from_processor(cls, processor: CarSegImageProcessorBase) -> CarSegImageProcessor:
        """The torch processor with the parameters of `processor` (itself when it is one already).

        Args:
            processor: A carseg image processor of either backend.

        Returns:
            A `CarSegImageProcessor`.
        """
        return processor if isinstance(processor, cls) else cls.from_dict(processor.to_dict())

    def preprocess_tensors(
        self,
        images: Sequence[torch.Tensor],
        size: tuple[int, int] | None,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> torch.Tensor:
        """Resize, rescale and normalise uint8 image tensors that are already on a device, on that device.

        The same steps as `preprocess`, for images decoded elsewhere (nvjpeg, a data loader); the processor's
        `do_rescale`, `rescale_factor`, `do_normalize`, `image_mean` and `image_std` apply.

        Args:
            images: `(3, height, width)` uint8 tensors, all on one device; at native size they must share one size.
            size: `(height, width)` to resize to, or None to keep each image's size.
            memory_format: Memory format of the returned batch (e.g. `torch.channels_last`).

        Returns:
            A float32 tensor of shape `(batch, 3, height, width)` on the images' device.

        Raises:
            ValueError: If there is no image, an image is not a 3-channel uint8 tensor, or native-size images differ
                in size.
        """
        if not images:
            raise ValueError("preprocess_tensors needs at least one image")
        for image in images:
            if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
                raise ValueError(
                    f"expected (3, height, width) uint8 image tensors, got {tuple(image.shape)} {image.dtype}"
                )
        batch = self._stack([resize_pixels(image, size) for image in images], memory_format)  # (batch, 3, h, w)
        return rescale_and_normalize(
            batch, self.rescale_factor, self.image_mean, self.image_std, self.do_rescale, self.do_normalize
        )
