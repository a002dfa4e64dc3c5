"""Decoding the `image` and `mask` cells of a carseg data set through `carseg_hf.image_io` (errors name the file)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from ..image_io import DEFAULT_MAX_PIXELS, ImageDecodeError, load_mask, load_rgb


def entry_source(value: Any) -> Any:
    """Turn a `datasets.Image` value (decoded PIL, or an undecoded {"path", "bytes"} dict) into an image_io input."""
    if isinstance(value, dict):
        if value.get("bytes"):
            try:
                return Image.open(io.BytesIO(value["bytes"]))
            except (Image.UnidentifiedImageError, OSError) as error:
                raise ImageDecodeError(f"{value.get('path') or 'embedded image'}: not a readable image") from error
        if value.get("path"):
            return value["path"]
        raise ImageDecodeError("an image entry has neither bytes nor a path")
    return value


def read_image(value: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an `image` column value to `(height, width, 3)` uint8 through `image_io` (errors name the file).

    Use `dataset.cast_column("image", datasets.Image(decode=False))` so that the file path reaches `image_io`.

    Args:
        value: A `datasets.Image` value (decoded PIL image, or an undecoded `{"path", "bytes"}` dict), or anything
            `image_io.load_rgb` accepts.
        max_pixels: Largest accepted width x height (checked from a file's header before decoding); None for no bound.

    Raises:
        ImageDecodeError: Naming the file and what is wrong.
    """
    return load_rgb(entry_source(value), max_pixels=max_pixels)  # (height, width, 3) uint8


def read_mask(value: Any) -> np.ndarray:
    """Decode a `mask` column value to a `(height, width)` 0/1 uint8 array through `image_io.load_mask`."""
    return load_mask(entry_source(value))
