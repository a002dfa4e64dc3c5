"""What the demo shows of a result: the before/after pair, the error map and its legend, metrics, RLE and timing.

Every function takes and returns plain Python, numpy or PIL objects (no gradio).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..inference import SegmentationResult
from ..metrics import confusion_counts, scores_from_counts
from ..overlay import (
    FN_COLOR,
    FP_COLOR,
    PREDICTION_ALPHA,
    PREDICTION_COLOR,
    TP_COLOR,
    error_overlay,
    legend_swatch_html,
    prediction_overlay,
)
from ..rle import rle_encode

#: Tint of the predicted car in the before/after view (amber: distinct from the error map's red, green and blue).
OVERLAY_COLOR = PREDICTION_COLOR
#: Weight of the tint in the before/after view.
OVERLAY_ALPHA = PREDICTION_ALPHA
#: Weight of the colours in the error map.
ERROR_ALPHA = 0.6
#: Inline style of a legend entry of the error map, and of its coloured square (`{rgb}`: the colour).
LEGEND_ENTRY_STYLE = 'style="display:inline-flex;align-items:center;gap:4px;margin-right:14px"'
LEGEND_BOX_STYLE = 'style="width:14px;height:14px;border-radius:3px;background:{rgb};display:inline-block"'
#: Headers of the one-row metrics table: scores, then true-positive, false-positive and false-negative pixel counts.
METRICS_HEADERS = ["dice", "IoU", "precision", "recall", "TP px", "FP px", "FN px"]
#: Decimals of the scores in the metrics table.
METRICS_DECIMALS = 6
#: What the page says before anything is segmented (uploading or picking an example runs the model at once).
WELCOME_TEXT = (
    "Upload a car photo or pick an example below: it is segmented at once. To run it again with other settings or "
    "with a ground-truth mask, press **Segment**."
)


#: The status line while a request runs, and after one fails (its error is shown beside the page).
NO_RESULT_TEXT = "No result yet for this photo and these settings."


def cleared_outputs() -> tuple[Any, ...]:
    """The six outputs of `segment`, emptied: shown when a request starts, so a failed one leaves no stale result."""
    return None, None, "", NO_RESULT_TEXT, [], None


def slider_pair(image: np.ndarray, mask: np.ndarray) -> tuple[Image.Image, Image.Image]:
    """The before/after pair for the image slider: the photo, and the photo with the predicted car tinted.

    Args:
        image: `(height, width, 3)` uint8.
        mask: `(height, width)` 0/1 predicted mask.

    Returns:
        `(original, overlay)` as RGB PIL images of the same size.
    """
    overlay = prediction_overlay(image, mask)  # (height, width, 3) uint8
    return Image.fromarray(image), Image.fromarray(overlay)


def error_map(image: np.ndarray, pred: np.ndarray, target: np.ndarray) -> Image.Image:
    """The error map: false positives red, true positives green, false negatives blue, over the photo.

    Args:
        image: `(height, width, 3)` uint8.
        pred: `(height, width)` predicted mask.
        target: `(height, width)` ground-truth mask.

    Returns:
        An RGB PIL image of the photo's size.
    """
    return Image.fromarray(error_overlay(image, pred, target, alpha=ERROR_ALPHA))


def _legend_entry(color: tuple[int, int, int], label: str) -> str:
    """A legend entry styled inline (the page has no legend classes of its own)."""
    return legend_swatch_html(color, label, entry_attributes=LEGEND_ENTRY_STYLE, box_attributes=LEGEND_BOX_STYLE)


def error_legend_html() -> str:
    """The legend of the error map, built from the colours `carseg_hf.overlay` paints with."""
    return (
        '<div class="carseg-legend">'
        + _legend_entry(FP_COLOR, "false positive")
        + _legend_entry(TP_COLOR, "true positive")
        + _legend_entry(FN_COLOR, "false negative")
        + "</div>"
    )


def metrics_rows(pred: np.ndarray, target: np.ndarray) -> list[list[float | int]]:
    """The metrics table: dice, IoU, precision, recall and pixel counts of one prediction against its ground truth.

    Scores are `carseg_hf.metrics`' own (dice and IoU are 1.0 when both masks are empty), rounded to
    `METRICS_DECIMALS` decimals so that the one-row table stays narrow.

    Args:
        pred: `(height, width)` predicted mask.
        target: `(height, width)` ground-truth mask.

    Returns:
        One row, in the order of `METRICS_HEADERS`.
    """
    counts = confusion_counts(pred, target)
    scores = scores_from_counts(counts)
    rounded = [round(scores[name], METRICS_DECIMALS) for name in ("dice", "iou", "precision", "recall")]
    return [rounded + [counts["tp"], counts["fp"], counts["fn"]]]


def rle_string(mask: np.ndarray) -> str:
    """The mask in Kaggle Carvana run-length encoding (row-major, 1-indexed); `""` for an empty mask."""
    return rle_encode(mask)


#: Whether the page starts with "zoom" ticked, and what an API call that leaves zoom out gets.
DEMO_ZOOM_DEFAULT = True


def timing_text(result: SegmentationResult, tta: bool, threshold: float, zoom: bool = False) -> str:
    """One line with the inference time, the device and the settings used.

    Args:
        result: What `Segmenter.segment` returned.
        tta: Whether hflip TTA was on.
        threshold: The probability threshold used.
        zoom: Whether zoom's second pass was asked for (`result.zoom_box`, `result.zoom_out_size` and
            `result.close_up_size` say which pass was kept).

    Returns:
        Markdown text.
    """
    height, width = result.mask.shape
    net_height, net_width = result.input_size
    waited = (
        f" (after {result.waited_seconds * 1000:.0f} ms waiting for another request)"
        if result.waited_seconds >= 0.001
        else ""
    )
    return (
        f"**{result.seconds * 1000:.0f} ms**{waited} on `{result.device}` · image {width}×{height} · "
        f"network input {net_width}×{net_height} · hflip TTA {'on' if tta else 'off'} · {zoom_text(result, zoom)} · "
        f"threshold {threshold:.2f} · car {100.0 * float(result.mask.mean()):.1f}% of pixels"
    )


def zoom_text(result: SegmentationResult, zoom: bool) -> str:
    """What zoom's second pass did, e.g. `zoom: 980×653 crop segmented again`."""
    if not zoom:
        return "zoom off"
    if result.close_up_size is not None:
        net_height, net_width = result.close_up_size
        return f"zoom: segmented again at {net_width}×{net_height} (a close-up: the car is larger than the frame)"
    if result.zoom_out_size is not None:
        net_height, net_width = result.zoom_out_size
        return f"zoom: segmented again at {net_width}×{net_height} (the car runs off both sides of a tall frame)"
    if result.zoom_box is None:
        return "zoom: first pass kept (no close-up, no small car to crop, or an implausible crop pass)"
    crop_height, crop_width = result.zoom_box.size
    return f"zoom: {crop_width}×{crop_height} crop segmented again"
