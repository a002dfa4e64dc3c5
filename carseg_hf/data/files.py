"""Files of a local data folder: listing them, checking image headers, and the cells they become in a data set."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..image_io import DEFAULT_MAX_PIXELS, ImageDecodeError, check_mask_size, displayed_size

#: How many names an error or warning lists before "... (N in all)".
_SHOWN = 5


def first_few(items: Sequence[Any], count: int = _SHOWN) -> str:
    """The first `count` items, comma-separated, followed by `... (N in all)` when there are more."""
    shown = ", ".join(str(item) for item in list(items)[:count])
    return shown + (f", ... ({len(items)} in all)" if len(items) > count else "")


def list_files(folder: Path) -> list[Path]:
    """The files of `folder` (not recursive, hidden files left out), sorted by path."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def check_header(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Open an image's header only and return its (width, height) as displayed and decoded (EXIF orientation applied).

    Refuses empty, non-image and truncated files, and images over `max_pixels` (the limit `image_io` decodes up
    to), decompression bombs included, so that they fail here with the file's name rather than in a worker.
    """
    if path.stat().st_size == 0:
        raise ImageDecodeError(f"{path}: the file is empty (0 bytes); expected an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(path) as image:
                size, kind = displayed_size(image), image.format
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(
            f"{path}: refusing to decode it, it is far over the limit of {max_pixels:,} pixels ({error})"
        ) from error
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"{path}: not a readable image ({error})") from error
    if size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"{path}: the image is {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, over the limit of "
            f"{max_pixels:,}; refusing to decode it"
        )
    if kind == "JPEG":
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            if b"\xff\xd9" not in handle.read():
                raise ImageDecodeError(f"{path}: the JPEG is truncated (no end-of-image marker)")
    return size


def check_pairs(
    pairs: Sequence[tuple[Path, Path | None]], keep_unreadable: bool = False
) -> list[tuple[int, int] | None]:
    """Check every image (and its mask file, if any) from the headers; return the image sizes as (width, height).

    With `keep_unreadable`, a pair that fails the check gets the size None instead of raising: the caller keeps it,
    and decoding it later raises the same named error (`carseg evaluate` then skips and reports it).
    """
    sizes = []
    for image_path, mask_path in pairs:
        try:
            size = check_header(image_path)
            if mask_path is not None:
                check_mask_size(check_header(mask_path), size, mask_path, image_path)
        except ImageDecodeError:
            if not keep_unreadable:
                raise
            size = None
        sizes.append(size)
    return sizes


def png_entry(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 0/1 mask as a 0/255 "L" PNG entry of a `datasets.Image()` column."""
    buffer = io.BytesIO()
    Image.fromarray((mask * 255).astype(np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def path_entry(path: Path) -> dict[str, Any]:
    """The undecoded `datasets.Image()` entry of an image file."""
    return {"bytes": None, "path": str(path)}


def example_row(image: Path, mask: dict[str, Any] | None, car_id: str, angle: int) -> dict[str, Any]:
    """One labelled row: the image file, its mask entry (None when it could not be read), car id, angle and name."""
    return dict(image=path_entry(image), mask=mask, car_id=car_id, angle=angle, name=image.name)
