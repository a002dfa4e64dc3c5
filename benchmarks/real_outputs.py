"""The outputs of `bench_real.py`: per-model results, the table, `table.md`, `results.json` and report folders.

A rerun into the same `--out` replaces the numbered report folders, `table.md` and `results.json` of the earlier run
(`remove_earlier_outputs`), and refuses a numbered folder holding files this script does not write.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.photos import Sample

TABLE_COLUMNS = (
    "model",
    "input",
    "images",
    "mean dice",
    "p5 dice",
    "worst image",
    "worst dice",
    "s/image",
    "vs first row",
)
#: A report folder `<NN>-<model>/` of `--out` and what `score_model` writes into it.
REPORT_FOLDER = re.compile(r"^\d{2}-")
REPORT_CONTENTS = frozenset({"report.html", "thumbs", "worst"})


@dataclass
class ModelResult:
    """Scores and timings of one model over the samples."""

    name: str
    input_size: str
    source: str
    dice: list[float] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    report: str = ""
    worst_overlays: list[str] = field(default_factory=list)


def earlier_report_folders(out: Path) -> list[Path]:
    """The numbered report folders `<NN>-<model>/` that an earlier run left in `out`."""
    if not out.is_dir():
        return []
    return sorted(path for path in out.iterdir() if path.is_dir() and REPORT_FOLDER.match(path.name))


def foreign_report_folder(out: Path) -> str | None:
    """Why `out` cannot be reused: a numbered folder in it holds files no run of this script writes; else None."""
    for folder in earlier_report_folders(out):
        other = sorted(path.name for path in folder.iterdir() if path.name not in REPORT_CONTENTS)
        if other:
            return (
                f"--out {str(out)!r}: {folder.name}/ holds {', '.join(other[:3])}, which bench_real does not write; "
                "a rerun replaces the numbered report folders, so move those files or pick another --out"
            )
    return None


def remove_earlier_outputs(out: Path) -> int:
    """Delete the report folders, `table.md` and `results.json` of an earlier run, so `out` holds only this run's.

    Returns:
        The number of report folders removed.
    """
    folders = earlier_report_folders(out)
    for folder in folders:
        shutil.rmtree(folder)
    for name in ("table.md", "results.json"):
        (out / name).unlink(missing_ok=True)
    return len(folders)


def summarize(result: ModelResult) -> dict[str, Any]:
    """Mean dice, its percentiles (as `carseg evaluate` gives them), count and seconds per image."""
    dice = np.asarray(result.dice, dtype=np.float64)
    return {
        "mean_dice": float(dice.mean()),
        "dice_percentiles": {q: float(np.percentile(dice, int(q))) for q in ("5", "50", "95")},
        "count": int(dice.size),
        "seconds_per_image": float(np.mean(result.seconds)),
    }


def table_rows(results: Sequence[ModelResult], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """One dict per model with the table's figures; `vs_first_row` divides by the first row's s/image."""
    rows = []
    for result in results:
        summary = summarize(result)
        worst = int(np.argmin(result.dice))
        rows.append(
            {
                "model": result.name,
                "input": result.input_size,
                "images": summary["count"],
                "mean_dice": summary["mean_dice"],
                "p5_dice": summary["dice_percentiles"]["5"],
                "worst_image": samples[worst].name,
                "worst_dice": result.dice[worst],
                "seconds_per_image": summary["seconds_per_image"],
            }
        )
    first = rows[0]["seconds_per_image"] if rows else 1.0
    for row in rows:
        row["vs_first_row"] = row["seconds_per_image"] / first
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of `table_rows`."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + " --- |" * len(TABLE_COLUMNS)]
    for row in rows:
        cells = [
            row["model"],
            row["input"],
            str(row["images"]),
            f"{row['mean_dice']:.4f}",
            f"{row['p5_dice']:.4f}",
            row["worst_image"],
            f"{row['worst_dice']:.4f}",
            f"{row['seconds_per_image']:.3f}",
            f"{row['vs_first_row']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, header: list[str], rows: list[dict], results: list[ModelResult], skipped: list) -> str:
    """Write `table.md` and `results.json`; returns the Markdown text."""
    text = "\n".join([*header, "", format_table(rows)])
    text += "".join(f"\n\n{item['model']} skipped: {item['reason']}" for item in skipped) + "\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    per_model = [
        {
            **row,
            "source": result.source,
            "report": result.report,
            "worst_overlays": result.worst_overlays,
            "per_image": {"dice": result.dice, "iou": result.iou, "seconds": result.seconds},
        }
        for row, result in zip(rows, results)
    ]
    payload = {"header": header, "rows": per_model, "skipped": skipped}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return text
