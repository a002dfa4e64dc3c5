"""The HTML report of an evaluation (`report.html`): a colour legend, the summary, and every image's thumbnail.

Thumbnails are sorted by dice ascending, so the worst images come first. Overlay colours: red = false positive,
green = true positive, blue = false negative (see `carseg_hf.overlay`).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from .overlay import FN_COLOR, FP_COLOR, TP_COLOR, legend_swatch_html


def write_report(rows: list[dict[str, Any]], summary: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write `report.html`: a legend, the summary, and every thumbnail sorted by dice ascending.

    Args:
        rows: Per-image rows with `image`, `dice`, `iou`, `fp`, `fn` and `thumb` (a path relative to the report).
        summary: The summary dict (mean and percentiles are shown).
        path: The HTML file to write.

    Returns:
        The path written.
    """
    cards = []
    for row in sorted(rows, key=lambda r: (r["dice"], r["image"])):
        name = html.escape(row["image"])
        cards.append(
            f'<figure><img src="{html.escape(row["thumb"])}" alt="{name}" loading="lazy">'
            f"<figcaption>{name}<br>dice {row['dice']:.4f} · IoU {row['iou']:.4f}<br>"
            f"FP {row['fp']} px · FN {row['fn']} px</figcaption></figure>"
        )
    percentiles = summary["dice_percentiles"]
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>carseg evaluation</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.key {{ margin-right: 1.5em; }} .box {{ display: inline-block; width: 1em; height: 1em; margin-right: .4em;
vertical-align: middle; border: 1px solid #444; }}
figure {{ display: inline-block; margin: .4em; font-size: 12px; vertical-align: top; }}
img {{ display: block; max-width: 256px; }}
</style></head><body>
<h1>carseg evaluation</h1>
<p>Model: {html.escape(str(summary.get("model")))} · data: {html.escape(str(summary.get("data")))} ·
split: {html.escape(str(summary.get("split")))} · {summary["count"]} images</p>
<p>Mean dice <b>{summary["mean_dice"]:.5f}</b> · 5th percentile {percentiles["5"]:.5f} ·
median {percentiles["50"]:.5f} · 95th percentile {percentiles["95"]:.5f}</p>
<p>{legend_swatch_html(FP_COLOR, "false positive (predicted car, is background)")}
{legend_swatch_html(TP_COLOR, "true positive")}
{legend_swatch_html(FN_COLOR, "false negative (missed car)")}</p>
<p>Images sorted by dice, worst first.</p>
{"".join(cards)}
</body></html>
"""
    path = Path(path)
    path.write_text(body, encoding="utf-8")
    return path
