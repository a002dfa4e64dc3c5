"""Reading the demo's uploads: the car photo, its optional ground-truth mask, and the checks on their sizes.

Every function takes and returns plain Python, numpy or PIL objects (no gradio); a problem with an upload is a
`DemoInputError` whose message names the file and says what is wrong, for the page to show as is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..image_io import ImageDecodeError, load_mask, load_rgb

#: Largest upload the demo decodes, in pixels (4096 x 4096, a 16 MP photo); larger files are refused from the header.
DEMO_MAX_PIXELS = 4096 * 4096
#: Largest image fed to the network at its native size, in pixels (2048 x 2048); a Carvana frame is 2.5 MP.
DEMO_MAX_NATIVE_PIXELS = 2048 * 2048
#: Longest side of the preview of the chosen photo.
PREVIEW_SIDE = 640


class DemoInputError(ValueError):
    """A problem with what the user uploaded; its message is meant to be shown as is (the app raises `gr.Error`)."""


def display_name(path: str | os.PathLike) -> str:
    """The base name of an uploaded file, as the user knows it (uploads live under long temporary folders)."""
    return Path(path).name


def _user_message(error: ImageDecodeError, path: str | os.PathLike, role: str) -> str:
    """Rewrite an `image_io` error to name the upload by its base name and role."""
    name = display_name(path)
    return f"{role} {str(error).replace(os.fspath(path), name)}"


def read_upload(path: str | os.PathLike | None, max_pixels: int = DEMO_MAX_PIXELS) -> np.ndarray:
    """Validate and decode an uploaded image with `image_io.load_rgb`, under the demo's pixel limit.

    Empty, truncated, non-image and oversized files are refused; an oversized file is refused from its header
    without being decoded. Grayscale, RGBA, palette, CMYK and 16-bit inputs become RGB; EXIF orientation is applied.

    Args:
        path: The uploaded file, or None when nothing was uploaded.
        max_pixels: Largest accepted width x height.

    Returns:
        `(height, width, 3)` uint8 RGB array.

    Raises:
        DemoInputError: With the file's name and what is wrong.
    """
    if path is None:
        raise DemoInputError("Upload a car photo first (JPEG, PNG, GIF, WebP, BMP or TIFF).")
    try:
        return load_rgb(os.fspath(path), max_pixels=max_pixels)  # (height, width, 3) uint8
    except ImageDecodeError as error:
        raise DemoInputError(_user_message(error, path, "Image")) from error


def photo_preview(
    path: str | os.PathLike | None, max_pixels: int = DEMO_MAX_PIXELS, max_side: int = PREVIEW_SIDE
) -> Image.Image | None:
    """A small RGB preview of the chosen photo, for the page to show next to the file input.

    The file is validated and decoded like `read_upload` (EXIF orientation applied). An unusable file gives None:
    the segmentation event reports it with its specific message, so the preview does not repeat it.

    Args:
        path: The uploaded file, or None.
        max_pixels: Largest accepted width x height.
        max_side: Longest side of the preview.

    Returns:
        The preview, at most `max_side` pixels wide and high, or None.
    """
    if path is None:
        return None
    try:
        image = Image.fromarray(read_upload(path, max_pixels))  # (height, width, 3) uint8
    except DemoInputError:
        return None
    image.thumbnail((max_side, max_side), Image.BILINEAR)
    return image


def read_ground_truth(
    path: str | os.PathLike | None, image_shape: tuple[int, ...], max_pixels: int = DEMO_MAX_PIXELS
) -> np.ndarray | None:
    """Read the optional ground-truth mask and check that it matches the image's size.

    Args:
        path: The uploaded mask (GIF or PNG; 0/1, 0/255 or a 0/1 palette), or None.
        image_shape: Shape of the decoded image, `(height, width[, 3])`.
        max_pixels: Largest accepted width x height.

    Returns:
        `(height, width)` uint8 array of 0 and 1, or None when no mask was given.

    Raises:
        DemoInputError: If the mask cannot be read, is not binary, or its size differs from the image's.
    """
    if path is None:
        return None
    try:
        mask = load_mask(os.fspath(path), max_pixels=max_pixels)  # (height, width) 0/1
    except ImageDecodeError as error:
        raise DemoInputError(_user_message(error, path, "Ground-truth mask")) from error
    height, width = image_shape[:2]
    if mask.shape != (height, width):
        raise DemoInputError(
            f"Ground-truth mask {display_name(path)!r} is {mask.shape[1]}x{mask.shape[0]} (width x height) but the "
            f"image is {width}x{height}; upload the mask that belongs to this image, at the same size."
        )
    return mask


def check_native_size(image_shape: tuple[int, ...], max_native_pixels: int = DEMO_MAX_NATIVE_PIXELS) -> None:
    """Refuse to run the network at native size on images larger than `max_native_pixels`.

    Raises:
        DemoInputError: Naming the size, the limit and the way out (the processor resolution).
    """
    height, width = image_shape[:2]
    if height * width > max_native_pixels:
        raise DemoInputError(
            f"The image is {width}x{height} = {width * height:,} pixels; native-size inference is limited to "
            f"{max_native_pixels:,} pixels on this server. Choose the processor resolution instead."
        )
