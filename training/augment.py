"""Joint image/mask augmentation for training, built on torchvision.transforms.v2.

The defaults follow the reference Carvana recipe: a random shift/scale/rotate (shift up to 6.25% of each side,
scale 0.9 to 1.1, rotation up to 10 degrees), a horizontal flip, and a mild colour jitter on the image only. The
geometric transforms are applied to a `tv_tensors.Image` and a `tv_tensors.Mask` in one call, so both get the same
parameters; torchvision resamples the mask with nearest-neighbour, so it stays binary. Areas shifted in from outside
the frame are filled with 0 (black image, background mask).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


@dataclass
class AugmentationConfig:
    """Strengths of the training augmentation; a value of 0 disables that part.

    Args:
        shift: Largest translation as a fraction of the width and height (`RandomAffine(translate=...)`).
        scale: Largest relative zoom; the scale is drawn from `[1 - scale, 1 + scale]`.
        rotate: Largest rotation in degrees, drawn from `[-rotate, rotate]`.
        hflip: Probability of a horizontal flip.
        brightness: `ColorJitter` brightness strength (image only).
        contrast: `ColorJitter` contrast strength (image only).
        saturation: `ColorJitter` saturation strength (image only).
        hue: `ColorJitter` hue strength, at most 0.5 (image only).
        crop: `(height, width)` of a random crop taken last, from the same place in image and mask; None keeps
            the whole frame.
    """

    shift: float = 0.0625
    scale: float = 0.1
    rotate: float = 10.0
    hflip: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    crop: tuple[int, int] | None = None

    def validate(self) -> None:
        """Raise `ValueError` naming the first out-of-range strength."""
        checks = {
            "shift": (self.shift, 0.0, 1.0),
            "scale": (self.scale, 0.0, 0.99),
            "rotate": (self.rotate, 0.0, 180.0),
            "hflip": (self.hflip, 0.0, 1.0),
            "brightness": (self.brightness, 0.0, 1.0),
            "contrast": (self.contrast, 0.0, 1.0),
            "saturation": (self.saturation, 0.0, 1.0),
            "hue": (self.hue, 0.0, 0.5),
        }
        for name, (value, low, high) in checks.items():
            if not low <= value <= high:
                raise ValueError(f"augmentation {name} must lie in [{low}, {high}], got {value}")
        if self.crop is not None and (len(self.crop) != 2 or min(self.crop) < 1):
            raise ValueError(f"augmentation crop must be (height, width) with positive sides, got {self.crop}")

    @property
    def enabled(self) -> bool:
        """Whether any part of the augmentation is active."""
        return self.crop is not None or any(
            v > 0
            for v in (
                self.shift,
                self.scale,
                self.rotate,
                self.hflip,
                self.brightness,
                self.contrast,
                self.saturation,
                self.hue,
            )
        )


def build_augmentation(config: AugmentationConfig) -> v2.Compose | None:
    """Build the v2 pipeline for `config`, or None when everything is disabled.

    Args:
        config: The augmentation strengths.

    Returns:
        A `v2.Compose` that takes and returns `(tv_tensors.Image, tv_tensors.Mask)`, or None.
    """
    config.validate()
    if not config.enabled:
        return None
    transforms: list[v2.Transform] = []
    if config.shift > 0 or config.scale > 0 or config.rotate > 0:
        transforms.append(
            v2.RandomAffine(
                degrees=config.rotate,
                translate=(config.shift, config.shift) if config.shift > 0 else None,
                scale=(1.0 - config.scale, 1.0 + config.scale) if config.scale > 0 else None,
                interpolation=v2.InterpolationMode.BILINEAR,
                fill={tv_tensors.Image: 0, tv_tensors.Mask: 0},
            )
        )
    if config.hflip > 0:
        transforms.append(v2.RandomHorizontalFlip(p=config.hflip))
    if max(config.brightness, config.contrast, config.saturation, config.hue) > 0:
        # Colour transforms pass tv_tensors.Mask through unchanged.
        transforms.append(
            v2.ColorJitter(
                brightness=config.brightness or None,
                contrast=config.contrast or None,
                saturation=config.saturation or None,
                hue=config.hue or None,
            )
        )
    if config.crop is not None:
        transforms.append(v2.RandomCrop(config.crop))  # (3, crop_h, crop_w) and (1, crop_h, crop_w)
    return v2.Compose(transforms)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A reproducible 63-bit seed for one sample in one epoch, independent of workers and processes."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class JointAugmentation:
    """Applies the same random geometry to an image and its mask, reproducibly per (seed, epoch, sample).

    Args:
        config: The augmentation strengths.
    """

    def __init__(self, config: AugmentationConfig) -> None:
        self.config = config
        self.transform = build_augmentation(config)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment one pair.

        Args:
            image: A uint8 tensor of shape `(3, height, width)`.
            mask: A uint8 tensor of shape `(height, width)` with values 0/1.
            seed: Seed of the random parameters; None uses torch's global generator.

        Returns:
            `(image, mask)` as plain tensors with the input dtypes, and the input shapes unless `config.crop` is
            set; the mask stays 0/1.
        """
        if self.transform is None:
            return image, mask
        if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(f"expected a (3, height, width) uint8 image, got {tuple(image.shape)} {image.dtype}")
        if mask.shape != image.shape[-2:]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match image of shape {tuple(image.shape)}")
        wrapped = (tv_tensors.Image(image), tv_tensors.Mask(mask[None]))  # mask: (1, height, width)
        if seed is None:
            out_image, out_mask = self.transform(*wrapped)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                out_image, out_mask = self.transform(*wrapped)
        return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)[0]  # (3, H, W), (H, W)
