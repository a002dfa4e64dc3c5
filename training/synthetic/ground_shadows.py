"""The shadows a pasted car throws on the ground of a composite: they darken the scene and are never car.

A soft contact shadow sits under the tyres of every composite; a cast shadow (the car's silhouette flattened onto
the ground, shifted toward the sun's side and blurred from hard to soft) is added to some. Both are maps in [0, 1]
at the frame's size, applied with `darken`; the car's mask never includes them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def darken(ground: np.ndarray, shadow: np.ndarray, strength: float) -> np.ndarray:
    """Multiply the frame by `1 - strength * shadow`.

    Args:
        ground: The frame, `(height, width, 3)` float32.
        shadow: A map in [0, 1] of shape `(height, width)`.
        strength: How dark the shadow's core gets, in [0, 1].

    Returns:
        The darkened frame, `(height, width, 3)` float32.
    """
    return ground * (1.0 - strength * shadow[..., None])


def contact_shadow(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A soft dark ellipse under the car's tyres, `(height, width)` in [0, 1].

    Args:
        height: The frame's height.
        width: The frame's width.
        box: The pasted car's `(left, top, right, bottom)` in frame pixels.
    """
    left, top, right, bottom = box
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = (left + right) / 2.0, bottom - 0.02 * (bottom - top)
    rx, ry = 0.55 * (right - left), max(0.07 * (bottom - top), 2.0)
    distance = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
    return np.clip(1.0 - distance, 0.0, 1.0) ** 0.7


def cast_shadow(
    car_mask: np.ndarray, frame_shape: tuple[int, int], box: tuple[int, int, int, int], offset: float, blur: float
) -> np.ndarray:
    """The car's silhouette flattened onto the ground, shifted sideways and blurred, `frame_shape` in [0, 1].

    Args:
        car_mask: The car's 0/1 mask cut to its bounding box, `(h, w)` uint8.
        frame_shape: `(height, width)` of the frame.
        box: The pasted car's `(left, top, right, bottom)` in frame pixels.
        offset: Horizontal shift as a fraction of the car's width (the sun's side).
        blur: Gaussian blur radius in pixels, from hard to soft.
    """
    left, top, right, bottom = box
    car_height = bottom - top
    flat_height = max(int(car_height * 0.35), 1)
    silhouette = Image.fromarray(car_mask * 255).resize((right - left, flat_height), Image.BILINEAR)
    shadow = Image.new("L", (frame_shape[1], frame_shape[0]), 0)  # PIL sizes are (width, height)
    shadow.paste(silhouette, (left + int(offset * (right - left)), bottom - int(flat_height * 0.8)))
    shadow = shadow.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(shadow, dtype=np.float32) / 255.0
