"""Command line of the copy-paste composites (`composite`): `python -m training.synthetic.composite`.

Every option is checked before anything is written: counts and the seed while the arguments are parsed, the rest
(`--cars-dir`, `--background-blur`, `--size`, `--out`) right after.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from carseg_hf.number_ranges import whole_number_type
from carseg_hf.output_folders import output_folder_problem
from carseg_hf.sizes import height_width_type

from . import composite
from .background_sources import SOURCE_SPLITS
from .backgrounds import package_list
from .carvana_pairs import parse_car_ids, report_interrupt
from .composite import CAR_WIDTH_RANGE, MAX_DISTRACTORS, MAX_SIDE, SPLITS, car_width_range, write_composites


def build_parser() -> argparse.ArgumentParser:
    """The options of `python -m training.synthetic.composite`."""
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic.composite", description=composite.__doc__.split("\n")[0]
    )
    parser.add_argument("--cars-dir", type=Path, required=True, help="Carvana-layout folder of real cars and masks")
    parser.add_argument("--out", type=Path, required=True, help="output folder (Carvana layout)")
    parser.add_argument("--split", choices=tuple(SPLITS), default="train", help="backgrounds and cars to use")
    parser.add_argument(
        "--backgrounds", choices=SOURCE_SPLITS, help="background split to draw from (default: the same as --split)"
    )
    parser.add_argument(
        "--background-packages",
        type=package_list,
        help="comma-separated Debian packages whose backgrounds to draw from (default: all of the allow-list's)",
    )
    parser.add_argument("--cars", help="comma-separated car ids (default: the sample's train or validation cars)")
    parser.add_argument(
        "--per-image", type=whole_number_type(1), default=1, help="composites per source photo (default 1)"
    )
    parser.add_argument(
        "--size", type=height_width_type(minimum=16), default="640x960", help="HEIGHTxWIDTH (default 640x960)"
    )
    parser.add_argument(
        "--distractors",
        type=whole_number_type(0, MAX_DISTRACTORS),
        default=0,
        help=f"paste up to N other objects behind each car, N in 0..{MAX_DISTRACTORS} (default 0)",
    )
    parser.add_argument(
        "--background-blur",
        type=float,
        default=0.0,
        help="probability of a defocused or motion-streaked scene behind the sharp car (default 0)",
    )
    parser.add_argument(
        "--car-width",
        type=car_width_range,
        default=CAR_WIDTH_RANGE,
        help="LOW,HIGH: range of the car's width as fractions of the frame width (default 0.35,0.95)",
    )
    parser.add_argument("--seed", type=whole_number_type(0), default=0, help="seed of every random choice (default 0)")
    return parser


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options that their argparse types do not check, or None."""
    height, width = args.size
    if not (args.cars_dir / "train").is_dir():
        return f"--cars-dir {args.cars_dir}: no train/ folder; expected the Kaggle Carvana layout"
    if not 0.0 <= args.background_blur <= 1.0:
        return f"--background-blur must be a probability in [0, 1], got {args.background_blur}"
    if max(height, width) > MAX_SIDE:
        return f"--size {height}x{width} is too large: height and width must each be at most {MAX_SIDE}"
    return output_folder_problem(args.out, "--out")


def main(argv: list[str] | None = None) -> int:
    """Write composites of the sample's training (or validation) cars, or of `--cars`; returns the exit status."""
    from training.carvana_sample import TRAIN_CARS, VALIDATION_CARS

    parser = build_parser()
    args = parser.parse_args(argv)
    if (problem := _usage_problem(args)) is not None:
        parser.error(problem)
    try:
        cars = parse_car_ids(args.cars, TRAIN_CARS if args.split == "train" else VALIDATION_CARS)
        count = write_composites(
            args.cars_dir,
            cars,
            args.out,
            args.per_image,
            args.size,
            args.seed,
            args.split,
            distractors=args.distractors,
            backgrounds=args.backgrounds,
            background_packages=args.background_packages,
            background_blur=args.background_blur,
            car_width=args.car_width,
        )
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        return report_interrupt(args.out, "composites")
    print(f"wrote {count} composites to {args.out}")
    return 0
