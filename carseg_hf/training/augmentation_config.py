"""The strengths of the training augmentation, without torch: the argument parser reads its defaults from here.

The defaults follow the reference Carvana recipe: a random shift/scale/rotate (shift up to 6.25% of each side,
scale 0.9 to 1.1, rotation up to 10 degrees), a horizontal flip, and a mild colour jitter on the image only.
`carseg_hf.training.augment` turns a config into torchvision transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The strengths that `AugmentationConfig.disabled` sets to 0 (every field but `crop`).
STRENGTHS = ("shift", "scale", "rotate", "hflip", "brightness", "contrast", "saturation", "hue")


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

    @classmethod
    def disabled(cls, crop: tuple[int, int] | None = None) -> AugmentationConfig:
        """Every strength 0 (no augmentation), with an optional random crop."""
        return cls(**dict.fromkeys(STRENGTHS, 0.0), crop=crop)

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
        return self.crop is not None or any(getattr(self, name) > 0 for name in STRENGTHS)

    def summary(self) -> str:
        """One line, for a model card, of the augmentation (the random crop is not described)."""
        parts = []
        if self.shift or self.scale or self.rotate:
            parts.append(
                f"random shift (up to {self.shift:g}), scale (±{self.scale:g}) and rotation (±{self.rotate:g}°)"
            )
        if self.hflip:
            parts.append(f"horizontal flips (p {self.hflip:g})")
        if self.brightness or self.contrast or self.saturation or self.hue:
            parts.append(
                f"colour jitter (brightness {self.brightness:g}, contrast {self.contrast:g}, "
                f"saturation {self.saturation:g}, hue {self.hue:g}) on the image only"
            )
        if not parts:
            return "none"
        return "; ".join(parts) + "; geometric changes are applied identically to the image and its mask"
