"""Dice per hard case: join `carseg evaluate`'s per_image.csv with the renderer's metadata.jsonl.

Usage:
    python -m training.synthetic.hard_case_report --per-image EVAL/per_image.csv --metadata DATA/metadata.jsonl

It prints a Markdown table (hard case, images, mean dice, 5th percentile, worst) and, with `--out`, writes the same
figures as JSON. An image counts for every hard case in its `hard_cases` list; images with none form the group
`(none)`, and `(all)` covers every scored image.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def read_dice(per_image_csv: str | Path) -> dict[str, float]:
    """Read `{image name: dice}` from `carseg evaluate`'s per_image.csv."""
    with open(per_image_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"image", "dice"} <= set(reader.fieldnames):
            raise ValueError(f"{per_image_csv}: expected columns 'image' and 'dice', got {reader.fieldnames}")
        return {row["image"]: float(row["dice"]) for row in reader}


def read_hard_cases(metadata_jsonl: str | Path) -> dict[str, list[str]]:
    """Read `{image name: [hard case, ...]}` from the renderer's metadata.jsonl."""
    cases = {}
    with open(metadata_jsonl, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                cases[record["img"]] = list(record.get("hard_cases", []))
            except (json.JSONDecodeError, KeyError) as error:
                raise ValueError(f"{metadata_jsonl}, line {number}: not a metadata record ({error})") from error
    return cases


def hard_case_table(dice: dict[str, float], cases: dict[str, list[str]]) -> list[dict[str, float | int | str]]:
    """Group per-image dice by hard case.

    Args:
        dice: `{image name: dice}`.
        cases: `{image name: [hard case, ...]}`; images missing from it are refused.

    Returns:
        One row per group, `(all)` first, then `(none)` and each hard case by name: `case`, `images`, `mean_dice`,
        `p05_dice` and `min_dice`.

    Raises:
        ValueError: If a scored image has no metadata.
    """
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
        rows = hard_case_table(read_dice(args.per_image), read_hard_cases(args.metadata))
    except (OSError, ValueError) as error:
        print(f"hard_case_report: error: {error}", file=sys.stderr)
        return 2
    print(format_markdown(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
