"""The command line of a training run: argparse options built from the fields of `TrainingArguments`.

Every option is spelled in kebab-case (`--learning-rate`), with the snake_case spelling (`--learning_rate`) kept as an
alias; `--help` shows the kebab-case form first. `parse_args` returns a validated `TrainingArguments`, and reports
every error (a bad value, a bad combination) as a usage error with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from .arguments import TrainingArguments


class TrainingHelpFormatter(argparse.HelpFormatter):
    """Shows `--kebab-case, --snake_case VALUE`, and ends an option's help with "(default: X)" unless it says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        # By identity: a default of 0 or 0.0 equals False, and is a default worth showing all the same.
        has_default = not any(action.default is value for value in (None, False, argparse.SUPPRESS))
        if has_default and action.option_strings and "default" not in help_text.lower():
            help_text += " (default: %(default)s)"
        return help_text

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {value}"


def option_strings(name: str) -> list[str]:
    """The spellings of the option for the field `name`: kebab-case first, then snake_case if it differs."""
    kebab = "--" + name.replace("_", "-")
    snake = "--" + name
    return [kebab] if kebab == snake else [kebab, snake]


def add_field_option(group: argparse._ArgumentGroup, field: dataclasses.Field) -> None:
    """Add the option described by one `TrainingArguments` field (made by `option_fields.option` or `.flag`)."""
    metadata = field.metadata
    if metadata["flag"]:
        group.add_argument(*option_strings(field.name), dest=field.name, action="store_true", help=metadata["help"])
        return
    required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    if field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()  # computed now, e.g. the cores this machine has
    else:
        default = None if required else field.default
    group.add_argument(
        *option_strings(field.name),
        dest=field.name,
        type=metadata["type"],
        choices=metadata["choices"],
        default=default,
        required=required,
        help=metadata["help"],
    )


def build_parser(prog: str = "carseg train") -> argparse.ArgumentParser:
    """The argument parser of the training script and of `carseg train`: one option per `TrainingArguments` field.

    Args:
        prog: The program name that usage lines and errors start with.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a carseg segmentation model (reference Carvana recipe).",
        formatter_class=TrainingHelpFormatter,
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(TrainingArguments):
        title = field.metadata["group"]
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        add_field_option(groups[title], field)
    return parser


def parse_args(argv: Sequence[str] | None = None, prog: str = "carseg train") -> TrainingArguments:
    """Parse and validate the training arguments; errors exit with status 2 and a message naming the option.

    Args:
        argv: Arguments without the program name; defaults to `sys.argv[1:]`.
        prog: The program name that usage lines and errors start with.

    Returns:
        The validated arguments.
    """
    parser = build_parser(prog)
    namespace = parser.parse_args(argv)
    try:
        return TrainingArguments(**vars(namespace))
    except ValueError as error:
        parser.error(str(error))
