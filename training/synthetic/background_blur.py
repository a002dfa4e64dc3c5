"""Blur of a composite's scene behind a sharp car: shallow depth of field, or a panning shot's motion streaks.

Street photos of cars are often taken with the car in focus and the scene behind it soft (a wide aperture), or with
the camera panning along a moving car, which streaks the scene sideways while the car stays sharp. A model that
never saw a blurred scene may take a streaked road for part of the car. `sample_background_blur` draws one such
blur for a composite, and `blur_background` applies it to the scene before the car is pasted; the car, its mask
and its shadows are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

#: Kinds of `BackgroundBlur.kind`.
BLUR_KINDS = ("defocus", "motion")


@dataclass(frozen=True)
class BackgroundBlur:
    """One blur of a scene.

    Attributes:
        kind: `"defocus"` (Gaussian) or `"motion"` (a horizontal streak, as when panning).
        size: The Gaussian radius, or the streak's length, as a fraction of the frame width.
    """

    kind: str
    size: float


def sample_background_blur(rng: np.random.Generator, probability: float) -> BackgroundBlur | None:
    """Draw a blur with `probability`, else None; draws nothing from `rng` when `probability` is 0.

    Keeping the draws out of the stream at probability 0 means that a seed gives the same composites as before this
    option existed.

    Raises:
        ValueError: If `probability` is outside [0, 1].
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"background blur probability must lie in [0, 1], got {probability}")
    if probability == 0.0 or rng.random() >= probability:
        return None
    if rng.random() < 0.5:
        return BackgroundBlur("defocus", float(rng.uniform(0.002, 0.008)))
    return BackgroundBlur("motion", float(rng.uniform(0.01, 0.05)))


def _horizontal_box_blur(frame: np.ndarray, length: int) -> np.ndarray:
    """Average each pixel with its `length` horizontal neighbours (edges repeated); `(h, w, c)` float32."""
    half = length // 2
    padded = np.pad(frame, ((0, 0), (half + 1, length - half - 1), (0, 0)), mode="edge")
    sums = np.cumsum(padded, axis=1, dtype=np.float64)  # (h, w + length, c)
    return ((sums[:, length:] - sums[:, :-length]) / length).astype(np.float32)


def blur_background(frame: np.ndarray, blur: BackgroundBlur | None) -> np.ndarray:
    """Apply `blur` to a scene.

    Args:
        frame: `(height, width, 3)` float32 scene in grey levels.
        blur: What `sample_background_blur` drew; None returns `frame` unchanged.

    Returns:
        The blurred scene, same shape and dtype.

    Raises:
        ValueError: If `blur.kind` is not one of `BLUR_KINDS`.
    """
    if blur is None:
        return frame
    if blur.kind not in BLUR_KINDS:
        raise ValueError(f"blur kind must be one of {BLUR_KINDS}, got {blur.kind!r}")
    width = frame.shape[1]
    if blur.kind == "motion":
        return _horizontal_box_blur(frame, max(2, round(blur.size * width)))
    image = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(blur.size * width)), dtype=np.float32)
