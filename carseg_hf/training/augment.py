"""Joint image/mask augmentation for training, built on torchvision.transforms.v2.

The strengths and their defaults are an `AugmentationConfig` (`carseg_hf.training.augmentation_config`). The
geometric transforms are applied to a `tv_tensors.Image` and a `tv_tensors.Mask` in one call, so both get the same
parameters; torchvision resamples the mask with nearest-neighbour, so it stays binary. Areas shifted in from outside
the frame are filled with 0 (black image, background mask). A frame smaller than the random crop (a portrait photo
resized with its own aspect ratio, for one) is padded to it with black pixels labelled `PAD_LABEL`, which the loss
ignores.
"""

from __future__ import annotations

import hashlib

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from .augmentation_config import AugmentationConfig

#: Label of padding pixels: the default `CarSegConfig.semantic_loss_ignore_index`, so the loss and the validation
#: dice skip them.
PAD_LABEL = 255


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
        # (3, crop_h, crop_w) and (1, crop_h, crop_w); a smaller frame is padded to the crop first.
        fill = {tv_tensors.Image: 0, tv_tensors.Mask: PAD_LABEL}
        transforms.append(v2.RandomCrop(config.crop, pad_if_needed=True, fill=fill))
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
            set; the mask stays 0/1, but for `PAD_LABEL` where a frame smaller than the crop was padded.
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
