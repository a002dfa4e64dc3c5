"""What carseg's two image processors share: parameters, decoding, normalisation, masks and post-processing.

`CarSegImageProcessor` (torch backend, `image_processing_carseg.py`) and `CarSegImageProcessorPil` (PIL backend,
`image_processing_pil_carseg.py`) differ only in how they resize an image. Everything else lives here once:
the keyword arguments they accept (`CarSegImageProcessorKwargs`), decoding through `carseg_hf.image_io`, the one
rescale-and-normalise step (`carseg_hf.pixel_normalization`), mask resizing, and turning logits into masks.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.processing_utils import ImagesKwargs

from .image_io import DEFAULT_MAX_PIXELS, check_mask_size, describe, load_mask, load_rgb
from .pixel_normalization import rescale_and_normalize
from .processor_parameters import (
    PER_CALL_CHECKS,
    check_channel_values,
    check_max_pixels,
    check_multiple,
    check_resample,
    check_rescale_factor,
    check_size,
    check_threshold,
)
from .sizes import aspect_preserving_size, is_whole_number

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CarSegImageProcessorKwargs(ImagesKwargs, total=False):
    r"""Keyword arguments of both carseg image processors, beyond transformers' `ImagesKwargs`.

    max_pixels (`int`, *optional*, defaults to `self.max_pixels`):
        Files and in-memory images with more pixels are refused (files before decoding); 0 for no bound.
    threshold (`float`, *optional*, defaults to `self.threshold`):
        Default probability threshold of `post_process_semantic_segmentation`, strictly between 0 and 1 (a
        constructor option: a call of the processor refuses it; post-processing takes its own `threshold`).
    keep_aspect_ratio (`bool`, *optional*, defaults to `self.keep_aspect_ratio`):
        Resize to `size`'s pixel count with the image's own aspect ratio instead of to `size` itself.
    ensure_multiple_of (`int`, *optional*, defaults to `self.ensure_multiple_of`):
        With `keep_aspect_ratio`, each side of the resized image is a multiple of this.
    """

    max_pixels: int | None
    threshold: float
    keep_aspect_ratio: bool
    ensure_multiple_of: int


def _as_list(inputs: Any) -> list:
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    if isinstance(inputs, np.ndarray) and inputs.ndim == 4:
        return list(inputs)
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        return list(inputs)
    return [inputs]


def _paired_lists(images: Any, masks: Any | None) -> tuple[list, list | None]:
    """Turn one image or a list of images, and optional masks, into lists; refuse a mask count that differs."""
    image_list = _as_list(images)
    mask_list = None if masks is None else _as_list(masks)
    if mask_list is not None and len(mask_list) != len(image_list):
        raise ValueError(f"got {len(image_list)} images but {len(mask_list)} masks; pass one mask per image")
    return image_list, mask_list


def _target_size(target: Any, index: int) -> tuple[int, int]:
    """One `(height, width)` target size of post-processing, as ints, or `ValueError` naming the item and the value."""
    values = target.tolist() if isinstance(target, (torch.Tensor, np.ndarray)) else target
    whole = isinstance(values, (list, tuple)) and all(
        is_whole_number(v) or (isinstance(v, float) and v.is_integer()) for v in values
    )
    if not isinstance(values, (list, tuple)) or len(values) != 2 or not whole:
        raise ValueError(f"target_sizes[{index}] must be (height, width) in whole pixels, got {target!r}")
    if min(values) < 1:
        raise ValueError(f"target_sizes[{index}] must be at least 1x1 pixels, got {tuple(values)}")
    return int(values[0]), int(values[1])


class CarSegImageProcessorBase(BaseImageProcessor):
    r"""Prepares car photos and masks for [`CarSegForSemanticSegmentation`] and turns its logits into masks.

    Images (PIL in RGB, RGBA, L, P, CMYK or 16-bit modes, numpy arrays, torch tensors, or file paths) are converted
    to RGB with EXIF orientation applied, resized to `size` (or kept at native size), rescaled to [0, 1] and
    normalised. Masks (0/1, 0/255, palette GIFs) become binary `labels` with nearest-neighbour resizing. Subclasses
    say how an image is resized (`resize_image`, `_resized_pixels`); use `CarSegImageProcessor` (torch) or
    `CarSegImageProcessorPil` (PIL), not this class.

    Args:
        do_resize (`bool`, *optional*, defaults to `True`):
            Resize images to `size`. With `False` the native resolution is kept (the model pads internally).
        size (`dict[str, int]`, *optional*, defaults to `{"height": 1024, "width": 1024}`):
            Target size when resizing, as in the reference 1024x1024 setup: whole pixels, each side at least 32 (the
            network downsamples by 32). Also accepted: an int for a square, or `(height, width)`.
        resample (`int`, *optional*, defaults to `Image.BILINEAR`):
            Resampling filter for images, as a PIL constant. The torch backend resizes bilinearly only and refuses
            another filter; the PIL backend takes any of PIL's. Masks always use nearest-neighbour.
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
            Files with more pixels are refused before decoding; 0 or None for no bound (saved as 0).
        threshold (`float`, *optional*, defaults to 0.5):
            Default probability threshold of `post_process_semantic_segmentation`.
        keep_aspect_ratio (`bool`, *optional*, defaults to `False`):
            Resize each image to about `size`'s pixel count with its own aspect ratio (see `resized_size`), so that
            a portrait or square photo is not squeezed into a landscape `size`. An image whose aspect ratio is
            within 1% of `size`'s is resized to `size` exactly. Masks come back at each image's own size either way.
        ensure_multiple_of (`int`, *optional*, defaults to 32):
            With `keep_aspect_ratio`, each side of the resized image is a multiple of this (the network's stride).
    """

    valid_kwargs = CarSegImageProcessorKwargs
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
        keep_aspect_ratio: bool = False,
        ensure_multiple_of: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.do_resize = do_resize
        self.size = check_size(size if size is not None else {"height": 1024, "width": 1024})
        self.resample = check_resample(resample, self.supported_resample)
        self.do_rescale = do_rescale
        self.rescale_factor = check_rescale_factor(rescale_factor)
        self.do_normalize = do_normalize
        self.image_mean = check_channel_values("image_mean", image_mean, positive=False)
        self.image_std = check_channel_values("image_std", image_std, positive=True)
        self.max_pixels = check_max_pixels(max_pixels)
        self.threshold = check_threshold(threshold)
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        self.ensure_multiple_of = check_multiple(ensure_multiple_of)

    @property
    def backend(self) -> str:
        """`str`: The `AutoImageProcessor` backend this class is registered for (`"torchvision"` or `"pil"`)."""
        raise NotImplementedError

    #: The PIL filters this backend resizes with (None: all of them); see `resample`.
    supported_resample: tuple[int, ...] | None = None
    #: `carseg_hf.processor_parameters.check_threshold`: a threshold as a float, or `ValueError`.
    check_threshold = staticmethod(check_threshold)

    def to_dict(self) -> dict[str, Any]:
        """The saved parameters; no bound on `max_pixels` is saved as 0 (JSON drops None: it would reload bounded)."""
        processor_dict = super().to_dict()
        processor_dict["max_pixels"] = self.max_pixels or 0
        return processor_dict

    def resized_size(
        self, height: int, width: int, size: dict[str, int] | None = None, keep_aspect_ratio: bool | None = None
    ) -> dict[str, int]:
        """The size an image of `height` x `width` is resized to: the one rule for every carseg entry point.

        Args:
            height: The image's height.
            width: The image's width.
            size: The target size; defaults to `self.size`.
            keep_aspect_ratio: Override `self.keep_aspect_ratio`.

        Returns:
            `size` itself, or with `keep_aspect_ratio` about as many pixels with the image's aspect ratio, each side
            a multiple of `ensure_multiple_of` (`carseg_hf.sizes.aspect_preserving_size`).
        """
        size = self.size if size is None else check_size(size)
        keep = self.keep_aspect_ratio if keep_aspect_ratio is None else keep_aspect_ratio
        if not keep:
            return dict(size)
        target = (size["height"], size["width"])
        new_height, new_width = aspect_preserving_size(height, width, target, self.ensure_multiple_of)
        return {"height": new_height, "width": new_width}

    def load_image(self, image: Any) -> np.ndarray:
        """Decode one image to an RGB uint8 array of shape `(height, width, 3)`."""
        return load_rgb(image, self.max_pixels)

    def load_mask(self, mask: Any) -> np.ndarray:
        """Decode one mask to a 0/1 uint8 array of shape `(height, width)`."""
        return load_mask(mask, self.max_pixels)

    def resize_image(self, image: np.ndarray, size: dict[str, int]) -> np.ndarray:
        """Resize an RGB uint8 `(height, width, 3)` array to `size`; a no-op when already there (per backend)."""
        raise NotImplementedError

    def _resized_pixels(self, image: np.ndarray, size: dict[str, int], device: torch.device | None) -> torch.Tensor:
        """Resize an RGB uint8 array to a `(1, 3, height, width)` float32 tensor of whole grey levels (per backend)."""
        raise NotImplementedError

    @staticmethod
    def resize_mask(mask: np.ndarray, size: dict[str, int]) -> np.ndarray:
        """Resize a 0/1 mask with nearest-neighbour, so it stays binary (the same in both backends)."""
        if mask.shape == (size["height"], size["width"]):
            return mask
        return np.asarray(Image.fromarray(mask).resize((size["width"], size["height"]), resample=Image.NEAREST))

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
        device: str | torch.device | None = None,
        keep_aspect_ratio: bool | None = None,
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
            device: Where `pixel_values` are made (the torch backend resizes there; the PIL backend resizes on the
                CPU and moves the result); None for the CPU. `labels` stay on the CPU.
            keep_aspect_ratio: Override `self.keep_aspect_ratio`; images of different aspect ratios then have
                different sizes and are batched only if they agree.
            **kwargs: Per-call overrides of `max_pixels`, `ensure_multiple_of`, `image_mean`, `image_std`,
                `rescale_factor` and `resample` (checked as the constructor checks them; None keeps the
                processor's). Any other keyword is refused.

        Returns:
            A `BatchFeature` with `pixel_values` of shape `(batch, 3, height, width)` (float32), and `labels` of
            shape `(batch, height, width)` (int64, values 0/1) when masks are given.

        Raises:
            ImageDecodeError: If an image or mask cannot be decoded, or a mask's size differs from its image's.
            ValueError: If arguments are inconsistent or unknown, or native-size images of different sizes are
                batched.
        """
        if any(value is not None for value in kwargs.values()):
            return self._with_call_options(kwargs).preprocess(
                images,
                masks,
                do_resize,
                size,
                do_rescale,
                do_normalize,
                return_tensors,
                segmentation_maps,
                device,
                keep_aspect_ratio,
            )
        if return_tensors not in (None, "pt"):
            raise ValueError(
                f"{type(self).__name__} only returns torch tensors (return_tensors='pt'), got {return_tensors!r}"
            )
        do_resize = self.do_resize if do_resize is None else do_resize
        size = self.size if size is None else check_size(size)
        device = None if device is None else torch.device(device)
        image_list, mask_list = _paired_lists(images, segmentation_maps if masks is None else masks)
        resize_to = size if do_resize else None
        pixel_values, labels = self._load_and_resize(image_list, mask_list, resize_to, device, keep_aspect_ratio)
        batch = self._stack(pixel_values)  # (batch, 3, height, width)
        rescale_and_normalize(
            batch,
            self.rescale_factor,
            self.image_mean,
            self.image_std,
            self.do_rescale if do_rescale is None else do_rescale,
            self.do_normalize if do_normalize is None else do_normalize,
        )
        data = {"pixel_values": batch}
        if mask_list is not None:
            data["labels"] = torch.stack(labels)  # (batch, height, width)
        return BatchFeature(data=data, tensor_type=None)

    def _with_call_options(self, options: dict[str, Any]) -> CarSegImageProcessorBase:
        """A copy of this processor with one call's overrides applied, each checked as the constructor checks it.

        Raises:
            ValueError: For a keyword that is not a per-call option (naming the ones that are), or a bad value.
        """
        options = {name: value for name, value in options.items() if value is not None}
        if "threshold" in options:
            raise ValueError(
                "threshold is not a preprocessing option: pass it to post_process_semantic_segmentation(threshold="
                "...) or to the pipeline, or set it when making the processor"
            )
        checks = {**PER_CALL_CHECKS, "resample": lambda value: check_resample(value, self.supported_resample)}
        unknown = sorted(set(options) - set(checks))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}; the per-call options beyond "
                f"do_resize, size, do_rescale, do_normalize, keep_aspect_ratio and device are {list(checks)}"
            )
        clone = copy.copy(self)
        for name, value in options.items():
            setattr(clone, name, checks[name](value))
        return clone

    def _load_and_resize(
        self,
        images: list,
        masks: list | None,
        size: dict[str, int] | None,
        device: torch.device | None,
        keep_aspect_ratio: bool | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Decode and resize each image (and its mask, checked against the image's size).

        Args:
            images: The images, any kind `load_image` accepts.
            masks: One mask per image, or None.
            size: The size to resize to, or None to keep each image's own size.
            device: Where the pixel values are made; None for the CPU.
            keep_aspect_ratio: Override `self.keep_aspect_ratio` in `resized_size`; None keeps the processor's.

        Returns:
            `(pixel_values, labels)`: one `(1, 3, height, width)` float32 tensor of whole grey levels per image,
            and one `(height, width)` int64 0/1 tensor per mask (empty without masks).
        """
        pixel_values, labels = [], []
        for index, image in enumerate(images):
            array = self.load_image(image)  # (height, width, 3) uint8
            height, width = array.shape[:2]
            if size is None:
                target = {"height": height, "width": width}
            else:
                target = self.resized_size(height, width, size, keep_aspect_ratio)
            pixel_values.append(self._resized_pixels(array, target, device))  # (1, 3, target h, target w)
            if masks is not None:
                mask = self.load_mask(masks[index])  # (height, width) uint8 0/1
                check_mask_size(mask.shape[::-1], array.shape[1::-1], masks[index], image)
                labels.append(torch.from_numpy(self.resize_mask(mask, target).astype(np.int64)))
        return pixel_values, labels

    @staticmethod
    def _stack(pixel_values: Sequence[torch.Tensor], memory_format: torch.memory_format | None = None) -> torch.Tensor:
        """Concatenate `(1, 3, h, w)` images into one batch, or name the sizes when they differ."""
        shapes = {tuple(p.shape) for p in pixel_values}
        if len(shapes) > 1:
            raise ValueError(
                f"images of different sizes {sorted(s[-2:] for s in shapes)} cannot be batched (at native size, "
                "or with keep_aspect_ratio and different aspect ratios); process them one at a time, or resize "
                "them all to one size with do_resize=True and keep_aspect_ratio=False"
            )
        batch = torch.cat(list(pixel_values))  # (batch, 3, height, width)
        return batch if memory_format is None else batch.contiguous(memory_format=memory_format)

    @staticmethod
    def exact_size_kwargs(size: tuple[int, int] | None) -> dict[str, Any]:
        """Keyword arguments of `preprocess` that resize to exactly `size` = `(height, width)`, or none for None.

        The aspect rule is switched off, so the input is `size` whatever the image's aspect ratio (zoom's passes of a
        whole image at a smaller input, `carseg_hf.zoom.zoom_out_size` and `carseg_hf.zoom.close_up_size`).
        """
        if size is None:
            return {}
        return {"size": {"height": size[0], "width": size[1]}, "keep_aspect_ratio": False}

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
                item = self.resize_logits(item, _target_size(target_sizes[index], index))
            masks.append((torch.sigmoid(item[0, 0]) > threshold).long())  # (height, width)
        return masks
