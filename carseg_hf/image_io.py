"""Decoding of images and masks into numpy arrays, with errors that name the input and what was expected.

This module is the only place that turns files, PIL images, numpy arrays and torch tensors into arrays:
`CarSegImageProcessor`, the data loaders, the CLI and the Space all go through it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

#: Default refusal bound for decoded images: about 12x a Carvana frame (1280x1918), far below a decompression bomb.
DEFAULT_MAX_PIXELS = 30_000_000
#: File extensions taken as images when a folder is listed (for prediction and for data sets).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
#: What a mask's stem adds to its image's stem in an image/mask pair folder (`car_03.jpg`, `car_03_mask.png`).
PAIR_MASK_SUFFIX = "_mask"

#: The EXIF tag of the orientation, and its values that swap width and height (transposed, or rotated by 90 or 270°).
EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)

_SUPPORTED_MODES = (
    *("RGB", "RGBA", "RGBX", "RGBa", "L", "LA", "P", "PA", "CMYK"),
    *("I;16", "I;16B", "I;16L", "I", "F", "1", "YCbCr"),
)


#: What an image file is expected to be, for messages.
_EXPECTED_FILE = "an image file (JPEG, PNG, GIF, WebP, BMP or TIFF)"


class ImageDecodeError(ValueError):
    """Raised when an image or mask cannot be read or does not have the expected form."""


def describe(source: Any) -> str:
    """A short human-readable name for an input, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return f"file {os.fspath(source)!r}"
    if isinstance(source, Image.Image):
        return f"PIL image (mode {source.mode}, size {source.size[0]}x{source.size[1]})"
    if isinstance(source, np.ndarray):
        return f"numpy array (shape {source.shape}, dtype {source.dtype})"
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        return f"{type(source).__name__} (shape {tuple(source.shape)}, dtype {source.dtype})"
    return f"object of type {type(source).__name__}"


def open_image_file(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image file, refusing empty, truncated, non-image and oversized files.

    The pixel count is checked from the header before decoding, so a decompression bomb is never decoded.

    Args:
        path: The file to read.
        max_pixels: Largest accepted width x height, or None for no bound.

    Returns:
        The decoded PIL image with EXIF orientation applied.

    Raises:
        ImageDecodeError: With the file name and the reason.
    """
    path = Path(path)
    try:
        is_file = path.is_file()
    except OSError as error:  # e.g. a name too long for the file system (a base64 string taken for a path)
        shown = str(path) if len(str(path)) <= 80 else f"{str(path)[:60]}... ({len(str(path))} characters)"
        raise ImageDecodeError(f"{shown}: not a usable file path ({error.strerror or error})") from error
    if not is_file:
        raise ImageDecodeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageDecodeError(f"{path}: the file is empty (0 bytes); expected {_EXPECTED_FILE}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        limit = f"over the limit of {max_pixels:,} pixels" if max_pixels else "too large to decode"
        raise ImageDecodeError(f"{path}: the image is {limit} ({error}); refusing to decode it") from error
    except Image.UnidentifiedImageError as error:
        raise ImageDecodeError(f"{path}: not a readable image ({error}); expected {_EXPECTED_FILE}") from error
    except OSError as error:
        raise ImageDecodeError(f"{path}: could not be opened as an image: {error}") from error
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise ImageDecodeError(
            f"{path}: the image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}; "
            "refusing to decode it"
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"{path}: the image data is corrupt or truncated ({error})") from error
    return ImageOps.exif_transpose(image)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF Orientation of an opened image (1, upright, when it has none or it cannot be read)."""
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1
    return value if 1 <= value <= 8 else 1


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """The `(width, height)` of an opened image as it is displayed and decoded here, with its EXIF orientation."""
    width, height = image.size
    return (height, width) if exif_orientation(image) in _SWAPPING_ORIENTATIONS else (width, height)


def check_mask_size(mask_size: tuple[int, int], image_size: tuple[int, int], mask: Any, image: Any) -> None:
    """Refuse a mask whose size differs from its image's displayed size, saying so when EXIF explains it.

    Images are read as displayed (EXIF orientation applied), so a mask must have the displayed size. When it has the
    size the image is stored at instead, the message says that the image carries an EXIF orientation tag.

    Args:
        mask_size: The mask's `(width, height)`.
        image_size: The image's `(width, height)` as displayed.
        mask: The mask's source (a path, an image, an array), to name it.
        image: The image's source, to name it and read its stored size.

    Raises:
        ImageDecodeError: Naming both, with their sizes.
    """
    if tuple(mask_size) == tuple(image_size):
        return
    (mask_w, mask_h), (image_w, image_h) = mask_size, image_size
    message = f"mask {describe(mask)} is {mask_w}x{mask_h} but its image {describe(image)} is {image_w}x{image_h}"
    stored = _stored_size(image)
    if stored is not None and stored != tuple(image_size):
        message += f" as displayed (stored as {stored[0]}x{stored[1]}, rotated by its EXIF orientation tag)"
        if tuple(mask_size) == stored:
            message += (
                "; the mask has the stored size: carseg reads images as displayed, EXIF orientation applied (as "
                f"viewers and PIL's ImageOps.exif_transpose do), so rotate the mask the same way, to "
                f"{image_w}x{image_h}"
            )
    raise ImageDecodeError(message + "; a mask must match its image's size")


def _stored_size(source: Any) -> tuple[int, int] | None:
    """The `(width, height)` an image file or PIL image is stored at, before EXIF orientation; None if unknown."""
    if isinstance(source, Image.Image):
        return source.size
    if isinstance(source, (str, os.PathLike)):
        try:
            with Image.open(source) as image:
                return image.size
        except (OSError, SyntaxError, ValueError):
            return None
    return None


def _check_pixel_count(pixels: int, max_pixels: int | None, name: str) -> None:
    """Refuse an image of more than `max_pixels` pixels, naming it (the bound that files are held to as well)."""
    if max_pixels is not None and pixels > max_pixels:
        raise ImageDecodeError(
            f"{name}: the image has {pixels:,} pixels, over the limit of {max_pixels:,}; refusing to process it "
            "(raise max_pixels to allow it)"
        )


def _check_pil_mode(image: Image.Image, name: str) -> None:
    if image.mode not in _SUPPORTED_MODES:
        raise ImageDecodeError(f"{name}: unsupported image mode {image.mode!r}; expected one of {_SUPPORTED_MODES}")


def _pil_to_rgb(image: Image.Image, name: str) -> np.ndarray:
    _check_pil_mode(image, name)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        gray = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        gray = np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "RGBa", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # (height, width, channels)
    if array.ndim == 2:
        array = array[..., None]  # (height, width, 1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageDecodeError(
            f"{name}: expected an image of shape (height, width), (height, width, 1|3|4) or (1|3|4, height, width)"
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageDecodeError(f"{name}: the array holds NaN or infinite values")
        low, high = float(array.min(initial=0)), float(array.max(initial=0))
        if low < 0.0 or high > 255.0:
            raise ImageDecodeError(f"{name}: float values must lie in [0, 1] or [0, 255], got [{low:.3g}, {high:.3g}]")
        array = array * 255.0 if high <= 1.0 else array
        array = np.clip(array + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype == np.uint16:
        array = (array.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.integer) and array.min(initial=0) >= 0 and array.max(initial=0) <= 255:
            array = array.astype(np.uint8)
        else:
            raise ImageDecodeError(f"{name}: expected uint8, uint16, bool or float pixel values")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


def _to_numpy(source: Any) -> np.ndarray | None:
    if isinstance(source, np.ndarray):
        return source
    if type(source).__module__.startswith("torch") and hasattr(source, "detach"):
        tensor = source.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype.itemsize < 4:  # bfloat16, float16, float8: no numpy twin
            tensor = tensor.float()
        return tensor.numpy()
    return None


def load_rgb(source: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert an image of any supported kind to an RGB uint8 array.

    Args:
        source: A path, a PIL image (RGB, RGBA, L, P, CMYK, 16-bit...), a numpy array or a torch tensor in
            `(height, width[, channels])` or `(channels, height, width)` layout.
        max_pixels: Largest accepted pixel count, for files (checked from the header, before decoding) and for
            images and arrays given in memory alike; None for no bound.

    Returns:
        An array of shape `(height, width, 3)` and dtype uint8. Transparent areas are composited on white.

    Raises:
        ImageDecodeError: If the input is of an unsupported type, mode, shape or dtype.
    """
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        return _pil_to_rgb(open_image_file(source, max_pixels), name)
    if isinstance(source, Image.Image):
        _check_pixel_count(source.size[0] * source.size[1], max_pixels, name)
        return _pil_to_rgb(ImageOps.exif_transpose(source), name)
    array = _to_numpy(source)
    if array is not None:
        channels = min(array.shape[0], array.shape[-1]) if array.ndim == 3 else 1  # (h, w, c) or (c, h, w)
        _check_pixel_count(array.size // max(channels, 1), max_pixels, name)
        return _array_to_rgb(array, name)
    raise ImageDecodeError(f"{name}: unsupported image input; expected a file path, PIL image, numpy array or tensor")


def normalize_mask(array: np.ndarray, name: str = "mask") -> np.ndarray:
    """Normalise a mask to a binary uint8 array of 0 (background) and 1 (car).

    Accepted encodings are 0/1, 0/255, booleans, palette indices 0/1, and lossy 0/255 masks whose values all lie
    within 32 of 0 or 255 (e.g. a mask saved as JPEG). Anything else is ambiguous and refused.

    Args:
        array: The mask, of shape `(height, width)`.
        name: How to name the mask in errors.

    Returns:
        A `(height, width)` uint8 array of 0 and 1.

    Raises:
        ImageDecodeError: If the mask is not 2-D or its values are ambiguous.
    """
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].max(axis=-1)
    elif array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]  # (height, width)
    elif array.ndim == 3 and array.shape[0] == 1:
        array = array[0]  # (height, width)
    if array.ndim != 2:
        raise ImageDecodeError(f"{name}: a mask must be 2-D (height, width), got shape {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    values = np.unique(array)
    if np.all(np.isin(values, (0, 1))):
        return array.astype(np.uint8)
    if np.all(np.isin(values, (0, 255))):
        return (array == 255).astype(np.uint8)
    if np.all(np.isin(values, (0, 65535))):
        return (array == 65535).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating) and values.min() >= 0.0 and values.max() <= 1.0:
        near = (values <= 0.125) | (values >= 0.875)
        if near.all():
            return (array >= 0.5).astype(np.uint8)
    if values.min() >= 0 and values.max() <= 255:
        near = (values <= 32) | (values >= 223)
        if near.all():
            return (array >= 128).astype(np.uint8)
    shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if len(values) > 8 else "")
    raise ImageDecodeError(
        f"{name}: ambiguous mask values [{shown}]; expected a binary mask as 0/1, 0/255 or a 0/1 palette"
    )


def load_mask(source: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a mask from a file (GIF, PNG...), a PIL image, an array or a tensor as 0/1 uint8.

    Palette images (Carvana's GIF masks) are read by palette index; other modes by grey value.

    Args:
        source: The mask.
        max_pixels: Largest accepted pixel count for files.

    Returns:
        A `(height, width)` uint8 array of 0 and 1.

    Raises:
        ImageDecodeError: If the mask cannot be read or is not binary.
    """
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        source = open_image_file(source, max_pixels)
    if isinstance(source, Image.Image):
        _check_pil_mode(source, name)
        if source.mode == "P":
            indices = np.asarray(source)
            if np.all(np.isin(np.unique(indices), (0, 1))):
                return indices.astype(np.uint8)
            source = source.convert("L")
        elif source.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA", "PA"):
            source = source.convert("L")
        elif source.mode == "1":
            return np.asarray(source).astype(np.uint8)
        return normalize_mask(np.asarray(source), name)
    array = _to_numpy(source)
    if array is not None:
        return normalize_mask(array, name)
    raise ImageDecodeError(f"{name}: unsupported mask input; expected a file path, PIL image, numpy array or tensor")
