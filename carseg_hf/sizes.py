"""Image sizes as text: every command-line size in carseg is written `HEIGHTxWIDTH` and parsed here.

Heights come first, as in torch tensors (`N, C, H, W`) and in the processors' `size={"height", "width"}`. A Carvana
photo is `1280x1918`.
"""

from __future__ import annotations

import argparse


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
