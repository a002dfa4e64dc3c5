"""Command-line values shared by the benchmark scripts, each checked while the arguments are parsed.

Every function here is an argparse `type=`: a bad value becomes a usage error that names the option and exits with
status 2 before anything is loaded, generated or timed. `load_model_or_exit` does the same for a model that cannot
be loaded, which only loading can tell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch

from carseg_hf.image_processing_carseg import CarSegImageProcessor
from carseg_hf.loading import load_model, resolve_device
from carseg_hf.modeling_carseg import CarSegForSemanticSegmentation
from carseg_hf.sizes import parse_height_width


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type=` for a whole number of at least `minimum`.

    Args:
        minimum: The smallest value accepted.

    Returns:
        A function from the option's text to the number, raising `argparse.ArgumentTypeError` otherwise.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "number"  # argparse names the type in "invalid number value" messages
    return parse


def device_type(text: str) -> torch.device:
    """An argparse `type=` for `auto`, `cpu`, `cuda` or `cuda:N`; CUDA is refused on a machine without it."""
    try:
        return resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def sizes_type(minimum: int = 1) -> Callable[[str], list[tuple[int, int]]]:
    """An argparse `type=` for comma-separated `HEIGHTxWIDTH` sizes, such as `1024x1024,1280x1920`.

    Args:
        minimum: The smallest height and width accepted.

    Returns:
        A function from the option's text to a list of `(height, width)`.
    """

    def parse(text: str) -> list[tuple[int, int]]:
        parts = [part for part in text.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH sizes such as 1024x1024,1280x1920, got {text!r}")
        try:
            return [parse_height_width(part, minimum=minimum) for part in parts]
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "HEIGHTxWIDTH list"
    return parse


def car_ids(text: str) -> list[str]:
    """An argparse `type=` for comma-separated Carvana car ids: each once, in the order given (may be empty).

    A car id is the part of a photo name `<car>_<NN>.jpg` before the angle (`carvana_car_id`), so it has no `_`
    nor `/`. Ids named twice are kept once, so that no photo is scored twice.
    """
    from carseg_hf.data.carvana import carvana_car_id  # here: it imports `datasets`, which the others do not need

    cars: list[str] = []
    for car in (part.strip() for part in text.split(",")):
        if not car:
            continue
        if carvana_car_id(f"{car}_01.jpg") != car:
            message = f"{car!r} is not a car id: photos are named <car>_<NN>.jpg, so an id has no _ nor /"
            raise argparse.ArgumentTypeError(message)
        if car not in cars:
            cars.append(car)
    return cars


def load_model_or_exit(
    model: str, device: str | torch.device = "cpu", option: str = "--model"
) -> tuple[CarSegForSemanticSegmentation, CarSegImageProcessor]:
    """`load_model`, with a model that cannot be loaded reported as a usage error (exit 2) instead of a traceback.

    Args:
        model: A model folder, Hub id or bundled name.
        device: Where to put the model.
        option: The option that named the model, for the message.

    Returns:
        `(model, processor)`.

    Raises:
        SystemExit: With status 2 after printing why the model cannot be loaded.
    """
    try:
        return load_model(model, device=device)
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {option} {model}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
