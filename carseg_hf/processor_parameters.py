"""The checks of the image processors' parameters: one function per parameter, shared by both backends.

Each function takes a value as given (to the constructor, to `from_pretrained` as an override, or to one call of
the processor) and returns it in its stored form, or raises `ValueError` naming the parameter, the value and what
was expected. `PER_CALL_CHECKS` lists the parameters one call may override, with their checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .sizes import MIN_INPUT_SIDE, is_whole_number

#: PIL's resampling filters, by value, for messages.
PIL_FILTERS = {
    Image.NEAREST: "NEAREST",
    Image.LANCZOS: "LANCZOS",
    Image.BILINEAR: "BILINEAR",
    Image.BICUBIC: "BICUBIC",
    Image.BOX: "BOX",
    Image.HAMMING: "HAMMING",
}


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.floating, np.integer))


def check_threshold(threshold: Any) -> float:
    """`threshold` as a float; `ValueError` unless it is a probability strictly inside (0, 1).

    Raises:
        ValueError: For a non-number (a string, a bool, None), NaN, or a value outside (0, 1), naming the value.
    """
    if not _is_number(threshold):
        raise ValueError(
            f"threshold must be a probability strictly between 0 and 1, got {threshold!r} "
            f"(a {type(threshold).__name__}, not a number)"
        )
    if math.isnan(threshold) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability strictly between 0 and 1, got {threshold!r}")
    return float(threshold)


def check_size(size: dict[str, int] | Sequence[int] | int) -> dict[str, int]:
    """`size` as `{"height": H, "width": W}`, from that dict, an int (a square) or `(H, W)`.

    Raises:
        ValueError: For another form, a side that is not a whole number (a float, a bool, a string), or a side
            below `MIN_INPUT_SIDE`, which the network would reduce to nothing at its bottleneck.
    """
    if is_whole_number(size):
        size = {"height": size, "width": size}
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        size = {"height": size[0], "width": size[1]}
    if not isinstance(size, dict) or set(size) != {"height", "width"}:
        raise ValueError(f"size must be {{'height': H, 'width': W}}, an int, or (H, W); got {size!r}")
    if not all(is_whole_number(side) for side in size.values()):
        raise ValueError(f"size must give whole numbers of pixels for height and width, got {size!r}")
    if min(size.values()) < MIN_INPUT_SIDE:
        raise ValueError(
            f"size {size} is too small: height and width must each be at least {MIN_INPUT_SIDE} pixels "
            f"(the network downsamples by {MIN_INPUT_SIDE})"
        )
    return {"height": int(size["height"]), "width": int(size["width"])}


def check_max_pixels(max_pixels: Any) -> int | None:
    """The largest image, in pixels, as stored: a positive int, or None for no bound (given as None or 0).

    Raises:
        ValueError: For a negative number, a fraction, a bool or a non-number.
    """
    if max_pixels is None or (is_whole_number(max_pixels) and max_pixels == 0):
        return None
    if not is_whole_number(max_pixels) or max_pixels < 0:
        raise ValueError(
            f"max_pixels must be a positive whole number of pixels, or 0 or None for no bound; got {max_pixels!r}"
        )
    return int(max_pixels)


def check_multiple(ensure_multiple_of: Any) -> int:
    """`ensure_multiple_of` as a positive int.

    Raises:
        ValueError: For anything else, naming the value.
    """
    if not is_whole_number(ensure_multiple_of) or ensure_multiple_of < 1:
        raise ValueError(f"ensure_multiple_of must be a positive integer, got {ensure_multiple_of!r}")
    return int(ensure_multiple_of)


def check_channel_values(name: str, values: Any, positive: bool) -> list[float]:
    """`image_mean` or `image_std` as 3 floats (positive ones for the std).

    Raises:
        ValueError: For another count, a non-number, NaN, or (with `positive`) a value that is not above 0.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or len(values) != 3:
        raise ValueError(f"{name} needs 3 values, one per RGB channel, got {values!r}")
    if not all(_is_number(v) and math.isfinite(v) and (v > 0 or not positive) for v in values):
        kind = "positive numbers" if positive else "finite numbers"
        raise ValueError(f"{name} needs 3 {kind}, got {values!r}")
    return [float(v) for v in values]


def check_rescale_factor(rescale_factor: Any) -> float:
    """`rescale_factor` as a positive float (1/255 maps uint8 pixels to [0, 1]).

    Raises:
        ValueError: For a non-number, NaN, infinity, zero or a negative value.
    """
    if not _is_number(rescale_factor) or not math.isfinite(rescale_factor) or rescale_factor <= 0:
        raise ValueError(f"rescale_factor must be a positive number (e.g. 1/255), got {rescale_factor!r}")
    return float(rescale_factor)


def check_resample(resample: Any, supported: tuple[int, ...] | None = None) -> int:
    """`resample` as one of PIL's filter constants, and one the backend can apply.

    Args:
        resample: The filter, e.g. `PIL.Image.BILINEAR` (2).
        supported: The filters the backend resizes with; None for all of PIL's.

    Raises:
        ValueError: For a value that is not a PIL filter, or one the backend does not apply.
    """
    if not is_whole_number(resample) or int(resample) not in PIL_FILTERS:
        names = ", ".join(f"{value} ({name})" for value, name in PIL_FILTERS.items())
        raise ValueError(f"resample must be one of PIL's filters: {names}; got {resample!r}")
    if supported is not None and int(resample) not in supported:
        allowed = ", ".join(f"{value} ({PIL_FILTERS[value]})" for value in supported)
        raise ValueError(
            f"resample={resample} ({PIL_FILTERS[int(resample)]}) is not available in this backend, which resizes "
            f"with {allowed} only; load the processor with backend='pil' for another filter"
        )
    return int(resample)


#: The parameters that one call of a processor may override, each with its check (`preprocess`'s keywords).
PER_CALL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "max_pixels": check_max_pixels,
    "ensure_multiple_of": check_multiple,
    "image_mean": lambda values: check_channel_values("image_mean", values, positive=False),
    "image_std": lambda values: check_channel_values("image_std", values, positive=True),
    "rescale_factor": check_rescale_factor,
}
