"""Bounded numbers on the command line: whole numbers with bounds, and `LOW,HIGH` ranges.

Every option that takes a count, a seed or a side in pixels parses it with `whole_number_type(minimum, maximum)`,
so that a value out of bounds is an argparse usage error that names the option, before anything runs.

`--resolution-scale-range` (training) and `--car-width` (the composite generator) both take two numbers separated
by a comma; only their bounds differ. Each option passes its own check to `number_range_type`, which splits and
converts the text the same way for all of them and turns any `ValueError` into an argparse usage error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number_type(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse `type=` for a whole number of at least `minimum` (and at most `maximum`).

    Args:
        minimum: The smallest value accepted.
        maximum: The largest value accepted, or None for no upper bound.

    Returns:
        A function from the option's text to the number, raising `argparse.ArgumentTypeError` otherwise, e.g.
        "must be >= 1, got 0" or "must lie in 0..20, got 21".
    """
    bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            must = f"be >= {minimum}" if maximum is None else f"lie in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must {must}, got {value}")
        return value

    parse.__name__ = "number"  # argparse names the type in "invalid number value" messages
    return parse


def parse_number_range(text: str, example: str) -> tuple[float, float]:
    """Split `"LOW,HIGH"` into two floats, without checking their bounds.

    Args:
        text: The option's value, e.g. `"0.12,0.95"`.
        example: A valid value to quote in the error message.

    Returns:
        `(low, high)` as floats (possibly NaN or infinite: the caller's check decides).

    Raises:
        ValueError: If `text` is not two comma-separated numbers, quoting `text` and `example`.
    """
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"expected LOW,HIGH such as {example}, got {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"expected two numbers LOW,HIGH such as {example}, got {text!r}") from None


def number_range_type(
    check: Callable[[tuple[float, float]], tuple[float, float]], example: str
) -> Callable[[str], tuple[float, float]]:
    """An argparse `type=` for a `LOW,HIGH` option whose bounds `check` enforces.

    Args:
        check: Takes `(low, high)` and returns it (or a normalised copy), raising `ValueError` when out of bounds.
        example: A valid value to quote when the text is not two numbers.

    Returns:
        A function from the option's text to `(low, high)` that raises `argparse.ArgumentTypeError`, so argparse
        reports a usage error naming the option.
    """

    def parse(text: str) -> tuple[float, float]:
        try:
            return check(parse_number_range(text, example))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "LOW,HIGH"  # argparse names the type in "invalid LOW,HIGH value" messages
    return parse
