"""The building blocks of `TrainingArguments`: option parsers, option defaults and the field makers.

`option(...)` and `flag(...)` make a dataclass field that is also a command-line option (its help, argparse group,
type and choices sit in the field's metadata, which `argument_parser.build_parser` reads). The parsers turn one
option's text into its value, raising `argparse.ArgumentTypeError` with the expected form. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import field
from typing import Any

from carseg_hf.number_ranges import number_range_type


def parse_channels(value: str) -> list[int]:
    """Parse `--encoder-channels`: positive comma-separated integers such as `8,16,32`."""
    try:
        channels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 8,16,32, got {value!r}") from None
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"expected positive comma-separated integers such as 8,16,32, got {value!r}")
    return channels


def scaled_resolution(resolution: tuple[int, int], factor: float) -> tuple[int, int]:
    """`resolution` (height, width) times `factor`, each side rounded to the nearest pixel and at least 1."""
    return max(1, round(resolution[0] * factor)), max(1, round(resolution[1] * factor))


def check_scale_range(scale_range: tuple[float, float]) -> tuple[float, float]:
    """Return `scale_range` if it is a usable `--resolution-scale-range`: 0 < LOW <= HIGH, both finite.

    Raises:
        ValueError: Otherwise, quoting the range.
    """
    low, high = scale_range
    if not (0.0 < low <= high and math.isfinite(high)):
        raise ValueError(f"expected 0 < LOW <= HIGH (finite), got {scale_range}")
    return scale_range


#: Parse `--resolution-scale-range`: two positive numbers `LOW,HIGH` with LOW <= HIGH, such as `1.0,1.5`.
parse_scale_range = number_range_type(check_scale_range, example="1.0,1.5")


def parse_checkpointing_steps(value: str) -> str | int:
    """Parse `--checkpointing-steps`: `epoch` or a positive number of optimizer steps."""
    if value == "epoch":
        return value
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected 'epoch' or a positive number of steps, got {value!r}")


def default_dataloader_workers() -> int:
    """Data-loader workers per process by default: this machine's usable cores per local process, at most 8.

    The cores are those this process may run on; a launcher that starts several processes on the machine sets
    `LOCAL_WORLD_SIZE`, and they share the cores. A 2-core machine gets 2 workers, not 4 that oversubscribe it.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(0, min(8, cores // local_processes))


def option(
    help: str,
    group: str,
    default: Any = None,
    *,
    type: Callable[[str], Any] | None = None,
    choices: tuple[str, ...] | None = None,
    default_factory: Callable[[], Any] | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        help: The option's help text.
        group: The title of its group in `--help`.
        default: Its default (ignored with `default_factory` or `required`).
        type: Its argparse `type=`; by default that of a number default, else the text itself.
        choices: The values it accepts.
        default_factory: Computes the default when the parser is built (or the dataclass constructed).
        required: No default: the option must be given.

    Returns:
        A `dataclasses.field` with the option in its metadata.
    """
    if type is None and isinstance(default, (int, float)) and not isinstance(default, bool):
        type = int if isinstance(default, int) else float
    metadata = {"help": help, "group": group, "type": type, "choices": choices, "flag": False}
    if required:
        return field(metadata=metadata)
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def flag(help: str, group: str) -> Any:
    """A dataclass field for an on/off option (`store_true`), off by default."""
    return field(default=False, metadata={"help": help, "group": group, "flag": True})
