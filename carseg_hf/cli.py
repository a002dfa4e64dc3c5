"""The `carseg` command line: one sub-command per module under `carseg_hf.commands`.

Building the parser imports no heavy library (transformers, torch, gradio, datasets, huggingface_hub): the command
modules import them in `run`, so `carseg --help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence

#: Sub-commands, each a module in `carseg_hf.commands` with `add_parser(subparsers)` and `run(args) -> int`.
COMMANDS = ("predict", "evaluate", "train", "demo", "export", "push")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered.

    Each sub-command's parser is stored in its defaults as `command_parser`, so that `main` can report an unknown
    option with that sub-command's usage.
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="carseg", description="Car segmentation (Carvana) with Hugging Face tools.")
    parser.add_argument("--version", action="version", version=f"carseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"carseg_hf.commands.{name}")
        command_parser = module.add_parser(subparsers)
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `carseg` command line.

    Args:
        argv: Arguments without the program name; defaults to `sys.argv[1:]`.

    Returns:
        The process exit code.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would report these with the top-level usage; the sub-command's is the useful one
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "no_progress", False):
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar too
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"carseg {args.command}: error: {error}", file=sys.stderr)
        return 2


def _warning_printer(command: str) -> Callable[..., None]:
    """`warnings.showwarning` for the command line: `carseg <command>: warning: <message>`, without source lines."""

    def show(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        print(f"carseg {command}: warning: {message}", file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
