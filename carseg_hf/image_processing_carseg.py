"""Image processor for carseg: the single source of preprocessing and post-processing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .image_io import DEFAULT_MAX_PIXELS, check_mask_size, describe, load_mask, load_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_list(inputs: Any) -> list:
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    if isinstance(inputs, np.ndarray) and inputs.ndim == 4:
        return list(inputs)
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        return list(inputs)
    return [inputs]


class CarSegImageProcessor(BaseImageProcessor):
    r"""Prepares car photos and masks for [`CarSegForSemanticSegmentation`] and turns its logits into masks.

    Images (PIL in RGB, RGBA, L, P, CMYK or 16-bit modes, numpy arrays, torch tensors, or file paths) are converted
    to RGB with EXIF orientation applied, resized to `size` (or kept at native size), rescaled to [0, 1] and
    normalised. Masks (0/1, 0/255, palette GIFs) become binary `labels` with nearest-neighbour resizing.

    Args:
        do_resize (`bool`, *optional*, defaults to `True`):
            Resize images to `size`. With `False` the native resolution is kept (the model pads internally).
        size (`dict[str, int]`, *optional*, defaults to `{"height": 1024, "width": 1024}`):
            Target size when resizing, as in the reference 1024x1024 setup.
        resample (`int`, *optional*, defaults to `Image.BILINEAR`):
            PIL resampling filter for images. Masks always use nearest-neighbour.
        do_rescale (`bool`, *optional*, defaults to `True`):
            Multiply uint8 pixel values by `rescale_factor`.
        rescale_factor (`float`, *optional*, defaults to `1 / 255`):
            The rescale factor.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Subtract `image_mean` and divide by `image_std`, per channel.
        image_mean (`Sequence[float]`, *optional*, defaults to the ImageNet mean):
            Per-channel mean.
        image_std (`Sequence[float]`, *optional*, defaults to the ImageNet standard deviation):
            Per-channel standard deviation.
        max_pixels (`int`, *optional*, defaults to 30,000,000):
            Files with more pixels are refused before decoding.
        threshold (`float`, *optional*, defaults to 0.5):
            Default probability threshold of `post_process_semantic_segmentation`.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        do_resize: bool = True,
        size: dict[str, int] | None = None,
        resample: int = Image.BILINEAR,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        threshold: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.do_resize = do_resize
        self.size = self._check_size(size if size is not None else {"height": 1024, "width": 1024})
        self.resample = int(resample)
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError(
                f"image_mean and image_std need 3 values with positive std, got {image_mean} and {image_std}"
            )
        self.max_pixels = max_pixels
        self.threshold = self.check_threshold(threshold)

    @staticmethod
    def check_threshold(threshold: Any) -> float:
        """Return `threshold` as a float, or raise `ValueError` unless it is a probability strictly inside (0, 1).

        Args:
            threshold: The value to check (the processor's, or one given to post-processing or the pipeline).

        Returns:
            The threshold as a float.

        Raises:
            ValueError: For a non-number (a string, a bool, None), NaN, or a value outside (0, 1), naming the value.
        """
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
            raise ValueError(
                f"threshold must be a probability strictly between 0 and 1, got {threshold!r} "
                f"(a {type(threshold).__name__}, not a number)"
            )
        if math.isnan(threshold) or not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be a probability strictly between 0 and 1, got {threshold!r}")
        return float(threshold)

    @staticmethod
    def _check_size(size: dict[str, int] | Sequence[int] | int) -> dict[str, int]:
        if isinstance(size, int):
            size = {"height": size, "width": size}
        elif isinstance(size, (list, tuple)) and len(size) == 2:
            size = {"height": int(size[0]), "width": int(size[1])}
        if not isinstance(size, dict) or set(size) != {"height", "width"}:
            raise ValueError(f"size must be {{'height': H, 'width': W}}, an int, or (H, W); got {size!r}")
        if size["height"] < 1 or size["width"] < 1:
            raise ValueError(f"size must be positive, got {size}")
        return {"height": int(size["height"]), "width": int(size["width"])}

    def load_image(self, image: Any) -> np.ndarray:
        """Decode one image to an RGB uint8 array of shape `(height, width, 3)`."""
        return load_rgb(image, self.max_pixels)

    def load_mask(self, mask: Any) -> np.ndarray:
        """Decode one mask to a 0/1 uint8 array of shape `(height, width)`."""
        return load_mask(mask, self.max_pixels)

    def resize_image(self, image: np.ndarray, size: dict[str, int]) -> np.ndarray:
        """Resize an RGB uint8 image with the configured filter; a no-op when already at `size`."""
        if image.shape[:2] == (size["height"], size["width"]):
            return image
        resized = Image.fromarray(image).resize((size["width"], size["height"]), resample=self.resample)
        return np.asarray(resized)

    @staticmethod
    def resize_mask(mask: np.ndarray, size: dict[str, int]) -> np.ndarray:
        """Resize a 0/1 mask with nearest-neighbour, so it stays binary."""
        if mask.shape == (size["height"], size["width"]):
            return mask
        return np.asarray(Image.fromarray(mask).resize((size["width"], size["height"]), resample=Image.NEAREST))

    def to_pixel_values(self, image: np.ndarray, do_rescale: bool, do_normalize: bool) -> torch.Tensor:
        """Turn an RGB uint8 array into a float32 tensor of shape `(3, height, width)`."""
        pixels = (
            torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float()
        )  # (3, height, width)
        if do_rescale:
            pixels = pixels * self.rescale_factor
        if do_normalize:
            mean = torch.tensor(self.image_mean).view(3, 1, 1)
            std = torch.tensor(self.image_std).view(3, 1, 1)
            pixels = (pixels - mean) / std
        return pixels

    def preprocess(
        self,
        images: Any,
        masks: Any | None = None,
        do_resize: bool | None = None,
        size: dict[str, int] | None = None,
        do_rescale: bool | None = None,
        do_normalize: bool | None = None,
        return_tensors: str | None = "pt",
        segmentation_maps: Any | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Prepare a batch of images, and optionally their masks.

        Args:
            images: One image or a list of images (see the class docstring for accepted kinds).
            masks: Optional mask or list of masks, one per image, at the image's size.
            do_resize: Override `self.do_resize`.
            size: Override `self.size`.
            do_rescale: Override `self.do_rescale`.
            do_normalize: Override `self.do_normalize`.
            return_tensors: Only `"pt"` (or None, which also returns torch tensors) is supported.
            segmentation_maps: Alias of `masks`, as in transformers' segmentation processors.
            **kwargs: Ignored; accepted for compatibility with transformers' pipelines.

        Returns:
            A `BatchFeature` with `pixel_values` of shape `(batch, 3, height, width)` (float32), and `labels` of
            shape `(batch, height, width)` (int64, values 0/1) when masks are given.

        Raises:
            ImageDecodeError: If an image or mask cannot be decoded, or a mask's size differs from its image's.
            ValueError: If arguments are inconsistent, or native-size images of different sizes are batched.
        """
        if return_tensors not in (None, "pt"):
            raise ValueError(
                f"CarSegImageProcessor only returns torch tensors (return_tensors='pt'), got {return_tensors!r}"
            )
        if masks is None:
            masks = segmentation_maps
        do_resize = self.do_resize if do_resize is None else do_resize
        size = self.size if size is None else self._check_size(size)
        do_rescale = self.do_rescale if do_rescale is None else do_rescale
        do_normalize = self.do_normalize if do_normalize is None else do_normalize

        image_list = _as_list(images)
        mask_list = None if masks is None else _as_list(masks)
        if mask_list is not None and len(mask_list) != len(image_list):
            raise ValueError(f"got {len(image_list)} images but {len(mask_list)} masks; pass one mask per image")

        pixel_values, labels = [], []
        for index, image in enumerate(image_list):
            array = self.load_image(image)  # (height, width, 3) uint8
            target = size if do_resize else {"height": array.shape[0], "width": array.shape[1]}
            pixel_values.append(self.to_pixel_values(self.resize_image(array, target), do_rescale, do_normalize))
            if mask_list is not None:
                mask = self.load_mask(mask_list[index])  # (height, width) uint8 0/1
                check_mask_size(mask.shape[::-1], array.shape[1::-1], mask_list[index], image)
                labels.append(torch.from_numpy(self.resize_mask(mask, target).astype(np.int64)))

        shapes = {tuple(p.shape) for p in pixel_values}
        if len(shapes) > 1:
            raise ValueError(
                f"images of different sizes {sorted(s[1:] for s in shapes)} cannot be batched at native size; "
                "enable do_resize or process them one at a time"
            )
        data = {"pixel_values": torch.stack(pixel_values)}  # (batch, 3, height, width)
        if mask_list is not None:
            data["labels"] = torch.stack(labels)  # (batch, height, width)
        return BatchFeature(data=data, tensor_type=None)

    @staticmethod
    def resize_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Resize `(batch, 1, h, w)` logits bilinearly to `size` = (height, width); a no-op when already there.

        This is the one place where logits are brought back to an image's size: post-processing, `Segmenter` and
        the batch predictor all call it, so their masks agree.
        """
        if tuple(logits.shape[-2:]) == tuple(size):
            return logits
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)  # (batch, 1, *size)

    def post_process_semantic_segmentation(
        self,
        outputs: Any,
        target_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None,
        threshold: float | None = None,
    ) -> list[torch.Tensor]:
        """Turn model outputs into binary masks.

        Logits are resized bilinearly to each target size before the sigmoid and the threshold, so the masks come
        back at the original image size.

        Args:
            outputs: A `SemanticSegmenterOutput` (or anything with `.logits`), or a logits tensor of shape
                `(batch, 1, height, width)`.
            target_sizes: One `(height, width)` per image; `None` keeps the logits' resolution.
            threshold: Probability threshold, strictly between 0 and 1; defaults to `self.threshold`. The
                image-segmentation pipeline passes its `threshold=` here for a carseg model.

        Returns:
            A list of `(height, width)` int64 tensors of label ids (0 background, 1 car), one per image.

        Raises:
            ValueError: If the logits have the wrong shape, the target sizes do not match them, or the threshold is
                not a probability (see `check_threshold`).
        """
        logits = outputs.logits if hasattr(outputs, "logits") else outputs
        if not isinstance(logits, torch.Tensor) or logits.dim() != 4 or logits.shape[1] != 1:
            raise ValueError(f"expected logits of shape (batch, 1, height, width), got {describe(logits)}")
        threshold = self.threshold if threshold is None else self.check_threshold(threshold)
        if target_sizes is not None and len(target_sizes) != logits.shape[0]:
            raise ValueError(f"got {len(target_sizes)} target sizes for a batch of {logits.shape[0]} logits")
        masks = []
        for index in range(logits.shape[0]):
            item = logits[index : index + 1].float()  # (1, 1, height, width)
            if target_sizes is not None:
                item = self.resize_logits(item, tuple(int(v) for v in target_sizes[index]))
            masks.append((torch.sigmoid(item[0, 0]) > threshold).long())  # (height, width)
        return masks
