"""Dice on small photos: each photo shrunk to several widths, segmented at the processor's size and at its own size.

Photos on the web and in chat apps are often a few hundred pixels wide, far below Carvana's 1918x1280. This script
shrinks each photo of a Carvana-layout folder (`train/<car>_<NN>.jpg` with `train_masks/<car>_<NN>_mask.gif`) to
each `--widths` width (aspect ratio kept; bicubic with antialiasing, the mask area-averaged and thresholded at one
half; a width above the narrowest photo's is refused) and segments every shrunk photo twice with the same model in
the same run:

- `resized`: the processor's resize, so a small photo is enlarged to the processor's size (the default everywhere);
- `native`: the photo at its own size (`Segmenter.segment(native_size=True)`, the demo's "native" choice).

Masks come back at the shrunk photo's size, and dice is computed there against the shrunk ground truth. The table
gives, per width, the mean dice and 5th percentile of each mode, the `resized` dice against that of the widest
photos (the first width, the baseline of the run), and seconds per image of each mode (wall time through
`carseg_hf.inference.Segmenter`, with `--threads` threads).

    python benchmarks/bench_small_photos.py --data path/to/carvana --cars 0495dcf27283 --widths 1918,640,320
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_aspect import check_photo_args, photo_parser, start_photo_run  # noqa: E402
from benchmarks.photos import Sample  # noqa: E402
from carseg_hf.image_io import load_mask, load_rgb  # noqa: E402
from carseg_hf.inference import Segmenter  # noqa: E402
from carseg_hf.metrics import dice_score  # noqa: E402

MODES = ("resized", "native")
DEFAULT_WIDTHS = "1918,960,640,480,320,240"


@dataclass
class WidthScores:
    """Dice and seconds of one width, per mode, and the shrunk photos' sizes."""

    dice: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in MODES})
    seconds: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in MODES})
    photo_sizes: set[tuple[int, int]] = field(default_factory=set)


def parse_widths(value: str) -> list[int]:
    """Parse `--widths`: comma-separated widths of at least 32 pixels, such as `1918,640,320`."""
    try:
        widths = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths such as 640,320, got {value!r}") from None
    if not widths or min(widths) < 32:
        raise argparse.ArgumentTypeError(f"expected widths of at least 32 pixels, got {value!r}")
    return widths


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = photo_parser(__doc__)
    parser.add_argument(
        "--widths", type=parse_widths, default=DEFAULT_WIDTHS, help=f"photo widths (default {DEFAULT_WIDTHS})"
    )
    args = check_photo_args(parser, parser.parse_args(argv))  # argparse applies parse_widths to the default too
    narrowest = min(args.samples, key=photo_width)
    if max(args.widths) > photo_width(narrowest):
        parser.error(
            f"--widths {max(args.widths)} is wider than the photos ({narrowest.name} is {photo_width(narrowest)} "
            "pixels wide): the benchmark shrinks each photo, so give widths up to the narrowest photo's"
        )
    return args


def photo_width(sample: Sample) -> int:
    """The width of a sample's photo in pixels, read from the file's header."""
    with Image.open(sample.image) as image:
        return image.width


def shrink(image: np.ndarray, mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its mask at `width` pixels wide, aspect ratio kept (`parse_args` keeps `width` <= the photo's).

    Args:
        image: `(height, width, 3)` uint8 photo.
        mask: `(height, width)` 0/1 mask.
        width: Width of the result.

    Returns:
        The resized `(h, width, 3)` photo and `(h, width)` 0/1 mask.
    """
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    photo = Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC)
    area = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.Resampling.BOX)
    return np.asarray(photo), (np.asarray(area) >= 128).astype(np.uint8)


def score(segmenter: Segmenter, samples: Sequence[Sample], widths: Sequence[int]) -> dict[int, WidthScores]:
    """Segment every shrunk photo in both modes (one untimed warm-up first) and collect the scores per width."""
    segmenter.segment(load_rgb(samples[0].image))  # warm-up: allocator and kernels
    results = {width: WidthScores() for width in widths}
    for sample in samples:
        image, mask = load_rgb(sample.image), load_mask(sample.mask)
        for width in widths:
            photo, truth = shrink(image, mask, width)
            results[width].photo_sizes.add(truth.shape)
            for mode in MODES:
                start = time.perf_counter()
                result = segmenter.segment(photo, native_size=mode == "native")
                results[width].seconds[mode].append(time.perf_counter() - start)
                results[width].dice[mode].append(dice_score(result.mask, truth))
    return results


def format_table(results: dict[int, WidthScores]) -> str:
    """The Markdown table: one row per width, the first width's `resized` dice as the baseline."""
    lines = [
        "| width | photo | images | resized dice (p5) | vs first width | native dice (p5) | s/image resized "
        "| native |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    baseline = None
    for width, scores in results.items():
        resized, native = (np.array(scores.dice[mode]) for mode in MODES)
        baseline = resized.mean() if baseline is None else baseline
        sizes = ", ".join(f"{w}x{h}" for h, w in sorted(scores.photo_sizes))
        seconds = [float(np.mean(scores.seconds[mode])) for mode in MODES]
        lines.append(
            f"| {width} | {sizes} | {len(resized)} | {resized.mean():.4f} ({np.percentile(resized, 5):.4f}) | "
            f"{resized.mean() - baseline:+.4f} | {native.mean():.4f} ({np.percentile(native, 5):.4f}) | "
            f"{seconds[0]:.3f} | {seconds[1]:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    segmenter, samples = start_photo_run(args)
    print(format_table(score(segmenter, samples, args.widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
