"""Dice per hard case: join `carseg evaluate`'s per_image.csv with the renderer's metadata.jsonl.

Usage:
    python -m training.synthetic.hard_case_report --per-image EVAL/per_image.csv --metadata DATA/metadata.jsonl

It prints a Markdown table (hard case, images, mean dice, 5th percentile, worst) and, with `--out`, writes the same
figures as JSON (creating the file's folder if needed). An image counts for every hard case in its `hard_cases`
list; images with none form the group `(none)`, and `(all)` covers every scored image. Each image must be scored
once, with a dice from 0 to 1, and have one metadata record; anything else is refused, naming the file and line.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from carseg_hf.atomic_files import write_atomic
from carseg_hf.output_folders import output_file_problem


def read_dice(per_image_csv: str | Path) -> dict[str, float]:
    """Read `{image name: dice}` from `carseg evaluate`'s per_image.csv.

    Raises:
        ValueError: Naming the file (and the line) when it is not UTF-8, lacks the columns, lists no image, or has a
            row without an image name, a dice that is not a number in [0, 1], or an image listed twice.
    """
    dice: dict[str, float] = {}
    lines: dict[str, int] = {}
    try:
        with open(per_image_csv, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"image", "dice"} <= set(reader.fieldnames):
                raise ValueError(f"{per_image_csv}: expected columns 'image' and 'dice', got {reader.fieldnames}")
            for row in reader:
                where = f"{per_image_csv}, line {reader.line_num}"
                name = (row["image"] or "").strip()
                if not name:
                    raise ValueError(f"{where}: the row names no image")
                if name in lines:
                    raise ValueError(f"{where}: image {name} is listed again (first on line {lines[name]})")
                dice[name], lines[name] = _dice_value(row["dice"], f"{where}, image {name}"), reader.line_num
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{per_image_csv} is not UTF-8 text ({error}); expected carseg evaluate's per_image.csv"
        ) from error
    except csv.Error as error:
        raise ValueError(f"{per_image_csv} is not a readable CSV file ({error})") from error
    if not dice:
        raise ValueError(f"{per_image_csv} lists no scored image; expected carseg evaluate's per_image.csv")
    return dice


def _dice_value(text: str | None, where: str) -> float:
    """The dice of a per_image.csv cell: a number in [0, 1], else a `ValueError` that names `where`."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: dice {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise ValueError(f"{where}: dice {text!r} is not a number from 0 to 1")
    return value


def read_hard_cases(metadata_jsonl: str | Path) -> dict[str, list[str]]:
    """Read `{image name: [hard case, ...]}` from the renderer's metadata.jsonl.

    Raises:
        ValueError: Naming the file and line of a record that is not a JSON object with a string `img` and a list of
            strings `hard_cases`, or of an image recorded twice; or naming a file that is not UTF-8.
    """
    cases: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    try:
        with open(metadata_jsonl, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    name, image_cases = _metadata_record(line, f"{metadata_jsonl}, line {number}")
                    if name in lines:
                        raise ValueError(
                            f"{metadata_jsonl}, line {number}: image {name} is recorded again (first on line "
                            f"{lines[name]})"
                        )
                    cases[name], lines[name] = image_cases, number
    except UnicodeDecodeError as error:
        raise ValueError(f"{metadata_jsonl} is not UTF-8 text ({error}); expected a metadata.jsonl") from error
    return cases


def _metadata_record(line: str, where: str) -> tuple[str, list[str]]:
    """The image name and hard cases of one metadata.jsonl line; a `ValueError` naming `where` if it is not one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not a metadata record ({error})") from error
    if not isinstance(record, dict) or not isinstance(record.get("img"), str):
        raise ValueError(f"{where}: not a metadata record; expected a JSON object with an image name 'img'")
    cases = record.get("hard_cases", [])
    if not isinstance(cases, list) or not all(isinstance(case, str) for case in cases):
        raise ValueError(f"{where}: 'hard_cases' is {cases!r}; expected a list of hard-case names")
    return record["img"], cases


def hard_case_table(dice: dict[str, float], cases: dict[str, list[str]]) -> list[dict[str, float | int | str]]:
    """Group per-image dice by hard case.

    Args:
        dice: `{image name: dice}`.
        cases: `{image name: [hard case, ...]}`; images missing from it are refused.

    Returns:
        One row per group, `(all)` first, then `(none)` and each hard case by name: `case`, `images`, `mean_dice`,
        `p05_dice` and `min_dice`.

    Raises:
        ValueError: If there is no scored image, or a scored image has no metadata.
    """
    if not dice:
        raise ValueError("no scored images: the per-image dice is empty")
    missing = sorted(set(dice) - set(cases))
    if missing:
        raise ValueError(f"{len(missing)} scored image(s) have no metadata record, e.g. {missing[:3]}")
    groups: dict[str, list[float]] = {"(all)": list(dice.values()), "(none)": []}
    for name, value in dice.items():
        for case in cases[name] or ["(none)"]:
            groups.setdefault(case, []).append(value)
    order = ["(all)", "(none)"] + sorted(g for g in groups if not g.startswith("("))
    rows = []
    for case in order:
        values = np.asarray(groups[case], dtype=np.float64)
        if values.size:
            rows.append(
                {
                    "case": case,
                    "images": int(values.size),
                    "mean_dice": float(values.mean()),
                    "p05_dice": float(np.percentile(values, 5)),
                    "min_dice": float(values.min()),
                }
            )
    return rows


def format_markdown(rows: list[dict[str, float | int | str]]) -> str:
    """Render the rows as a Markdown table."""
    lines = ["| hard case | images | mean dice | 5th percentile | worst |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['images']} | {row['mean_dice']:.4f} | {row['p05_dice']:.4f} | "
            f"{row['min_dice']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the per-hard-case table; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-image", required=True, help="per_image.csv written by carseg evaluate")
    parser.add_argument("--metadata", required=True, help="metadata.jsonl written by python -m training.synthetic")
    parser.add_argument("--out", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    try:
        if args.out and (problem := output_file_problem(args.out, "--out", "the name of a JSON file to write")):
            raise ValueError(problem)
        rows = hard_case_table(read_dice(args.per_image), read_hard_cases(args.metadata))
    except (OSError, ValueError) as error:
        print(f"hard_case_report: error: {error}", file=sys.stderr)
        return 2
    print(format_markdown(rows))
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, lambda tmp: tmp.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8"))
        except OSError as error:
            print(f"hard_case_report: error: could not write --out {out}: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
