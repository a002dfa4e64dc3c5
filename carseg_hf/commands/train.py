"""`carseg train`: the trainer of `carseg_hf.training` as a sub-command (the options of `training/train.py`)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `train` sub-command; its arguments are parsed by `carseg_hf.training.parse_args`."""
    parser = subparsers.add_parser(
        "train",
        help="train a model with Accelerate (reference Carvana recipe); see `carseg train --help`",
        description="Train a carseg model. All arguments go to the training parser; run `carseg train --help`.",
        add_help=False,
        prefix_chars="+",  # every "--option" is forwarded untouched to the training parser
    )
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="arguments of training/train.py")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Parse the forwarded arguments with the training script's parser and train."""
    from carseg_hf import training

    training_args = training.parse_args(args.train_args)  # `--help` and usage errors answer before torch is imported
    try:
        results = training.main(training_args)
    except RuntimeError as error:  # e.g. too many non-finite steps in a row: a message, not a traceback
        print(f"carseg train: error: {error}", file=sys.stderr)
        return 1
    print(f"best validation dice {results['best_validation_dice']:.6f} at epoch {results['best_epoch']}")
    return 0
