"""Image sizes as text: every command-line size in carseg is written `HEIGHTxWIDTH` and parsed here.

Heights come first, as in torch tensors (`N, C, H, W`) and in the processors' `size={"height", "width"}`. A Carvana
photo is `1280x1918`.
"""

from __future__ import annotations

import argparse
import math
import numbers

#: The smallest side of a network input: processors round sides to multiples of 32 and every carseg U-Net
#: downsamples by at least 32, so a thinner input has no pixels left at the bottleneck.
MIN_INPUT_SIDE = 32


def is_whole_number(value: object) -> bool:
    """Whether `value` is an integer (Python or NumPy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def nearest_multiple(length: float, multiple: int = 32) -> int:
    """`length` rounded to the nearest multiple of `multiple`, and at least `multiple` (a side of a network input)."""
    return max(multiple, round(length / multiple) * multiple)


def is_input_side(value: object) -> bool:
    """Whether `value` can be a side of the network's input: a whole number of at least `MIN_INPUT_SIDE` pixels."""
    return is_whole_number(value) and value >= MIN_INPUT_SIDE


def check_input_size(height: object, width: object, what: str, advice: str) -> None:
    """Refuse a network input size: a side that is not `is_input_side`, or more pixels than carseg reads in a photo.

    Args:
        height: The input's height.
        width: The input's width.
        what: The size's name for the message, e.g. "the example input" or "--input-size".
        advice: What to do instead when the size is over the pixel limit, ending the message.

    Raises:
        ValueError: Naming the size and the limits: at least `MIN_INPUT_SIDE` per side, at most `DEFAULT_MAX_PIXELS`.
    """
    from .image_io import DEFAULT_MAX_PIXELS  # here: image_io imports PIL, which parsing sizes does not need

    if not (is_input_side(height) and is_input_side(width)):
        raise ValueError(
            f"{what} must be whole numbers of pixels, each side at least {MIN_INPUT_SIDE}; got {height}x{width}"
        )
    if height * width > DEFAULT_MAX_PIXELS:
        raise ValueError(
            f"{what} {height}x{width} is {height * width:,} pixels, over the limit of {DEFAULT_MAX_PIXELS:,} (the "
            f"largest photo carseg reads); {advice}"
        )


def parse_height_width(text: str, minimum: int = 1, allow_square: bool = False) -> tuple[int, int]:
    """Parse `HEIGHTxWIDTH`, e.g. `"1280x1918"`, into `(height, width)`.

    Args:
        text: The size as written on a command line; `x` or `X` separates the two numbers.
        minimum: The smallest height and width accepted.
        allow_square: Whether a single number `N` means `NxN`.

    Returns:
        `(height, width)`.

    Raises:
        ValueError: If the text is not two integers joined by `x`, or either is below `minimum`. The message quotes
            the text and gives an example.
    """
    parts = text.strip().lower().split("x")
    if allow_square and len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        square = " (or one number for a square)" if allow_square else ""
        raise ValueError(f"expected HEIGHTxWIDTH such as 1280x1918{square}, got {text!r}")
    height, width = (int(part) for part in parts)
    if height < minimum or width < minimum:
        raise ValueError(f"size {text!r} is too small: height and width must each be at least {minimum}")
    return height, width


def height_width_type(minimum: int = 1, allow_square: bool = False):
    """An argparse `type=` that parses `HEIGHTxWIDTH` with `parse_height_width` and reports errors as usage errors.

    Args:
        minimum: The smallest height and width accepted.
        allow_square: Whether a single number `N` means `NxN`.

    Returns:
        A function from the option's text to `(height, width)`.
    """

    def parse(text: str) -> tuple[int, int]:
        try:
            return parse_height_width(text, minimum=minimum, allow_square=allow_square)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "HEIGHTxWIDTH"  # argparse names the type in "invalid HEIGHTxWIDTH value" messages
    return parse


#: An image whose aspect ratio is within this fraction of the target's is resized to the target exactly (a Carvana
#: photo, 1280x1918, to 640x960), so that aspect-keeping resizes change nothing for the shapes a model was trained on.
ASPECT_TOLERANCE = 0.01


def aspect_preserving_size(height: int, width: int, target: tuple[int, int], multiple: int = 32) -> tuple[int, int]:
    """The input size that keeps an image's aspect ratio and about as many pixels as `target`.

    A portrait phone photo squeezed into a landscape 640x960 input shows the network a car half as wide as any it
    was trained on; this size keeps the car's shape at the same cost. Each side is rounded to a multiple of
    `multiple` and kept between `multiple` and `target`'s pixel count divided by `multiple`, so that a degenerate
    strip cannot make a huge input.

    Args:
        height: The image's height.
        width: The image's width.
        target: `(height, width)` whose pixel count is kept; returned unchanged when the image's aspect ratio is
            within `ASPECT_TOLERANCE` of its own.
        multiple: Each side of the result is a multiple of this.

    Returns:
        `(height, width)` of the network's input, e.g. `(896, 672)` for a 4032x3024 portrait photo and a 640x960
        target.

    Raises:
        ValueError: If a size is not positive.
    """
    target_height, target_width = target
    if min(height, width, target_height, target_width, multiple) < 1:
        raise ValueError(
            f"sizes must be positive, got image {height}x{width}, target {target_height}x{target_width} and "
            f"multiple {multiple}"
        )
    if abs((height * target_width) / (width * target_height) - 1.0) <= ASPECT_TOLERANCE:
        return target_height, target_width
    area = target_height * target_width
    scale = math.sqrt(area / (height * width))
    largest = max(multiple, area // multiple // multiple * multiple)

    def side(length: int) -> int:
        return min(largest, nearest_multiple(length * scale, multiple))

    return side(height), side(width)
