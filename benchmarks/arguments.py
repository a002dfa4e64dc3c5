"""Command-line values shared by the benchmark scripts, each checked while the arguments are parsed.

Every function here is an argparse `type=`: a bad value becomes a usage error that names the option and exits with
status 2 before anything is loaded, generated or timed. `load_model_or_exit` does the same for a model that cannot
be loaded, which only loading can tell.

Importing this module is cheap: torch, transformers and `datasets` are imported by the functions that need them, so
that a script that only parses numbers (`load_space`, a Gradio client) does not load them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from carseg_hf.sizes import parse_height_width

if TYPE_CHECKING:
    import torch

    from carseg_hf.image_processing_carseg import CarSegImageProcessor
    from carseg_hf.modeling_carseg import CarSegForSemanticSegmentation


def device_type(text: str) -> torch.device:
    """An argparse `type=` for `auto`, `cpu`, `cuda` or `cuda:N`; CUDA is refused on a machine without it."""
    from carseg_hf.loading import resolve_device  # here: it imports torch

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
    """An argparse `type=` for comma-separated Carvana car ids, in the order given (may be empty).

    `carseg_hf.data.carvana.parse_car_ids`'s rule: an id is the `<car>` of a photo name `<car>_<NN>.jpg`, so it has
    no `_` nor `/`, and an id named twice is refused.
    """
    from carseg_hf.data.carvana import parse_car_ids  # here: it imports `datasets`, which the others do not need

    try:
        return parse_car_ids(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
    from carseg_hf.loading import load_model  # here: it imports torch and transformers

    try:
        return load_model(model, device=device)
    except (OSError, ValueError) as error:  # a missing folder is an OSError
        print(f"error: {option} {model}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
