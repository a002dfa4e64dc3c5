"""Where a model's errors lie: dice, the input size's ceiling, and the error pixels by distance to the car's outline.

For each photo of a Carvana-layout folder (`train/<car>_<NN>.jpg` with `train_masks/<car>_<NN>_mask.gif`) the
script measures, at the photo's full resolution:

- `dice`: the model's mask (`carseg_hf.inference.Segmenter`, the processor's resize and threshold);
- `ceiling`: the true mask itself passed through the network's input size: area-averaged down to the size the
  processor feeds the network (`resized_size`), enlarged back bilinearly and thresholded at one half. No model
  working at that size, with masks upsampled, can do much better, so `ceiling - dice` is what the model loses, and
  `1 - ceiling` what the input size costs.

It then counts every wrong pixel (false positive or false negative) by its distance to the true outline: within
1, 2, 4, 8 and 16 pixels (a square neighbourhood, `boundary_band`), or further. Errors that crowd within a few
pixels of the outline are edge precision; errors far from it are regions taken for car or missed.

    python benchmarks/bench_error_bands.py --data path/to/carvana --cars 0495dcf27283,0795e132d090 --threads 2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_aspect import check_photo_args, photo_parser, start_photo_run  # noqa: E402
from benchmarks.photos import Sample  # noqa: E402
from carseg_hf.image_io import load_mask, load_rgb  # noqa: E402
from carseg_hf.inference import Segmenter  # noqa: E402
from carseg_hf.metrics import dice_score  # noqa: E402
from carseg_hf.modeling_carseg import boundary_band  # noqa: E402

#: Upper ends of the distance bands in pixels; errors beyond the last fall in "further".
BAND_EDGES = (1, 2, 4, 8, 16)


@dataclass
class ErrorBands:
    """Per-photo dice and ceiling, and the error pixels (false positives, false negatives) summed per band."""

    dice: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)
    false_positives: np.ndarray = field(default_factory=lambda: np.zeros(len(BAND_EDGES) + 1, np.int64))
    false_negatives: np.ndarray = field(default_factory=lambda: np.zeros(len(BAND_EDGES) + 1, np.int64))


def parse_args(argv: Sequence[str] | None = None):
    """Parse and validate the command line."""
    parser = photo_parser(__doc__)
    return check_photo_args(parser, parser.parse_args(argv))


def input_size_ceiling(truth: np.ndarray, size: dict[str, int]) -> float:
    """Dice of the true mask after a round trip through `size`: area-averaged down, bilinear up, threshold 0.5.

    Args:
        truth: `(height, width)` 0/1 mask at full resolution.
        size: `{"height", "width"}` the network sees.

    Returns:
        The dice of the round-tripped mask against `truth`.
    """
    mask = torch.from_numpy(truth.astype(np.float32))[None, None]  # (1, 1, height, width)
    small = F.interpolate(mask, size=(size["height"], size["width"]), mode="area")  # (1, 1, h, w)
    back = F.interpolate(small, size=truth.shape, mode="bilinear", align_corners=False)  # (1, 1, height, width)
    return dice_score((back[0, 0] > 0.5).numpy(), truth)


def band_index(truth: np.ndarray) -> np.ndarray:
    """For each pixel, the index of the first band of `BAND_EDGES` that holds it (`len(BAND_EDGES)` = further)."""
    targets = torch.from_numpy(truth.astype(np.int64))[None]  # (1, height, width)
    index = np.full(truth.shape, len(BAND_EDGES), np.int64)
    for position, width in reversed(list(enumerate(BAND_EDGES))):  # widest first, so the narrowest band wins
        index[boundary_band(targets, width)[0].numpy()] = position
    return index


def score(segmenter: Segmenter, samples: Sequence[Sample]) -> ErrorBands:
    """Segment every photo and collect dice, ceiling and the error pixels per band."""
    results = ErrorBands()
    for sample in samples:
        image, truth = load_rgb(sample.image), load_mask(sample.mask).astype(bool)
        predicted = segmenter.segment(image).mask.astype(bool)
        size = segmenter.processor.resized_size(*truth.shape)
        results.dice.append(dice_score(predicted, truth))
        results.ceiling.append(input_size_ceiling(truth, size))
        bands = band_index(truth)
        bins = len(BAND_EDGES) + 1
        results.false_positives += np.bincount(bands[predicted & ~truth], minlength=bins)
        results.false_negatives += np.bincount(bands[~predicted & truth], minlength=bins)
    return results


def format_report(results: ErrorBands) -> str:
    """Dice against the ceiling, then a Markdown table of the error pixels per band."""
    dice, ceiling = np.array(results.dice), np.array(results.ceiling)
    errors = results.false_positives + results.false_negatives
    total = max(int(errors.sum()), 1)
    lines = [
        f"{len(dice)} photos: dice {dice.mean():.5f} (p5 {np.percentile(dice, 5):.5f}); input-size ceiling "
        f"{ceiling.mean():.5f}; the model loses {ceiling.mean() - dice.mean():.5f} of the ceiling",
        "",
        "| distance to the outline | error pixels | share | cumulative | false positives | false negatives |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = [f"<= {edge} px" for edge in BAND_EDGES] + [f"> {BAND_EDGES[-1]} px"]
    cumulative = 0
    for label, count, positives, negatives in zip(labels, errors, results.false_positives, results.false_negatives):
        cumulative += int(count)
        lines.append(
            f"| {label} | {int(count)} | {count / total:.3f} | {cumulative / total:.3f} | {int(positives)} | "
            f"{int(negatives)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report."""
    segmenter, samples = start_photo_run(parse_args(argv))
    print(format_report(score(segmenter, samples)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
