"""The drawing surface of the procedural textures: a float RGB array in metres, and multiplicative grain."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


class Surface:
    """A texture being drawn: a float RGB array in 0..1 and the metres-to-pixels mapping.

    Args:
        width_m: Surface width in metres (texture u from 0 to 1).
        height_m: Surface height in metres (texture v from 0 at the bottom to 1 at the top).
        pixels_per_metre: Resolution.
        rgb: Base colour, 0..1.
    """

    def __init__(self, width_m: float, height_m: float, pixels_per_metre: float, rgb: list[float]) -> None:
        self.scale = pixels_per_metre
        self.width = max(8, int(round(width_m * pixels_per_metre)))
        self.height = max(8, int(round(height_m * pixels_per_metre)))
        self.height_m = height_m
        self.rgb = np.ones((self.height, self.width, 3), dtype=np.float32) * np.asarray(rgb, dtype=np.float32)

    def px(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Pixel position of a point given in metres from the bottom-left corner (row 0 is the top edge)."""
        return x_m * self.scale, (self.height_m - y_m) * self.scale

    def layer(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        """A blank 8-bit coverage layer of the texture's size, and a drawing context on it."""
        image = Image.new("L", (self.width, self.height), 0)
        return image, ImageDraw.Draw(image)

    def blend(self, coverage: Image.Image, rgb: list[float] | np.ndarray, alpha: float = 1.0) -> None:
        """Paint `rgb` where the layer is drawn, with `alpha` times the layer's coverage."""
        weight = np.asarray(coverage, dtype=np.float32)[:, :, None] * (alpha / 255.0)  # (height, width, 1)
        self.rgb = self.rgb * (1 - weight) + np.asarray(rgb, dtype=np.float32) * weight

    def multiply(self, factor: np.ndarray) -> None:
        """Multiply by a `(height, width)` or `(height, width, 3)` factor (shading, grain)."""
        self.rgb = self.rgb * (factor[:, :, None] if factor.ndim == 2 else factor)

    def image(self) -> Image.Image:
        """The texture as an 8-bit RGB image."""
        return Image.fromarray((np.clip(self.rgb, 0, 1) * 255 + 0.5).astype(np.uint8))


def grain(rng: np.random.Generator, height: int, width: int, strength: float, cell_px: float) -> np.ndarray:
    """Multiplicative noise around 1 (concrete, paint, dust): a faint large-scale mottle plus finer speckle.

    Args:
        rng: Draws the noise.
        height: Rows.
        width: Columns.
        strength: Standard deviation of the result around 1, roughly.
        cell_px: Size of the mottle's cells in pixels (the speckle is 8 times finer).

    Returns:
        `(height, width)` float32.
    """
    field = np.zeros((height, width), dtype=np.float32)
    for cell, weight in ((cell_px, 0.6), (cell_px / 8, 0.6), (1.0, 0.4)):
        shape = (max(2, int(height / max(cell, 1.0))), max(2, int(width / max(cell, 1.0))))
        small = Image.fromarray(rng.normal(0.0, 1.0, shape).astype(np.float32))
        field += weight * np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    return 1.0 + strength * field
