"""Dice on photos framed at other aspect ratios: the processor's fixed-size resize against `keep_aspect_ratio`.

People photograph cars in portrait, square and wide frames, not only in Carvana's 3:2 landscape. This script crops
each photo of a Carvana-layout folder (`train/<car>_<NN>.jpg` with `train_masks/<car>_<NN>_mask.gif`) to several
aspect ratios around the car's bounding box (the full height, or the full width for wide frames; a car wider than
the frame is cut, as in a real portrait photo), and segments every crop twice with the same model in the same run:

- `fixed`: resized to the processor's `size` whatever its shape (a portrait photo is squeezed sideways);
- `kept`: resized to about as many pixels with the crop's own aspect ratio (`keep_aspect_ratio=True`).

Masks come back at the crop's size, and dice is computed there against the cropped ground truth. The table gives,
per aspect ratio, the mean dice and 5th percentile of each mode, their difference, the network's input size for
`kept`, and seconds per image of each mode (wall time through `carseg_hf.inference.Segmenter`, from the array to
the full-size mask, with `--threads` threads). A 3:2 landscape crop is the processor's own shape: both modes give
the same input there, which checks the comparison itself.

`--zoom` adds a third mode, `kept + zoom`: kept, with zoom's second pass (`carseg_hf.zoom`, the demo's default),
with its difference to `kept`, the number of crops where a second pass was kept (every crop also gets the close-up
check's small pass), and its seconds per image.

    python benchmarks/bench_aspect.py --data path/to/carvana --cars 0495dcf27283,0795e132d090 --threads 2 [--zoom]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.arguments import car_ids, load_model_or_exit  # noqa: E402
from benchmarks.photos import Sample, list_photos  # noqa: E402
from carseg_hf.image_io import load_mask, load_rgb  # noqa: E402
from carseg_hf.inference import Segmenter  # noqa: E402
from carseg_hf.metrics import dice_score  # noqa: E402
from training.synthetic.reframe import ASPECTS, crop_to_aspect  # noqa: E402

MODES = ("fixed", "kept")
#: With --zoom: kept, plus zoom's second pass (`carseg_hf.zoom`), as the demo runs it.
ZOOM_MODE = "kept + zoom"


@dataclass
class AspectScores:
    """Dice, seconds and input sizes of one aspect ratio, per mode."""

    dice: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in (*MODES, ZOOM_MODE)})
    seconds: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in (*MODES, ZOOM_MODE)})
    input_sizes: set[tuple[int, int]] = field(default_factory=set)
    second_passes: int = 0  # crops where a 2nd pass of zoom was kept (a crop, the whole at a smaller size, a close-up)


def photo_parser(description: str) -> argparse.ArgumentParser:
    """The options of the photo benchmarks: --data, --cars, --model, --every and --threads."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="Carvana-layout folder with train/, train_masks/")
    parser.add_argument("--cars", type=car_ids, default="", help="comma-separated car ids (default: every photo)")
    parser.add_argument("--model", default="carseg-lite0", help="a carseg model name or folder")
    parser.add_argument("--every", type=int, default=1, help="score every Nth photo")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch")
    return parser


def check_photo_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Validate the options of `photo_parser` (exiting through `parser.error`); the photos go to `args.samples`."""
    if args.every < 1 or (args.threads is not None and args.threads < 1):
        parser.error(f"--every and --threads must be >= 1, got {args.every} and {args.threads}")
    if not (args.data / "train").is_dir() or not (args.data / "train_masks").is_dir():
        parser.error(f"--data {str(args.data)!r} lacks train/ and train_masks/ (Kaggle's Carvana layout)")
    try:
        args.samples = list_photos(args.data, args.cars, args.every)
    except FileNotFoundError as error:  # a car without photos, a photo without a mask
        parser.error(str(error))
    return args


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = photo_parser(__doc__)
    parser.add_argument("--zoom", action="store_true", help=f"also score '{ZOOM_MODE}' (the demo's default)")
    return check_photo_args(parser, parser.parse_args(argv))


def score(segmenter: Segmenter, samples: Sequence[Sample], zoom: bool = False) -> dict[str, AspectScores]:
    """Segment every crop in each mode (one untimed warm-up first) and collect the scores per aspect ratio."""
    modes = (*MODES, ZOOM_MODE) if zoom else MODES
    segmenter.segment(load_rgb(samples[0].image))  # warm-up: allocator and kernels
    results = {name: AspectScores() for name, _ in ASPECTS}
    for sample in samples:
        image, mask = load_rgb(sample.image), load_mask(sample.mask)
        for name, ratio in ASPECTS:
            try:
                crop, truth = crop_to_aspect(image, mask, ratio)
            except ValueError as error:  # a mask without car pixels
                raise ValueError(f"{sample.mask}: {error}") from None
            for mode in modes:
                segmenter.processor.keep_aspect_ratio = mode != "fixed"
                start = time.perf_counter()
                result = segmenter.segment(crop, zoom=mode == ZOOM_MODE)
                results[name].seconds[mode].append(time.perf_counter() - start)
                results[name].dice[mode].append(dice_score(result.mask, truth))
                if mode == "kept":
                    results[name].input_sizes.add(result.input_size)
                if any(kept is not None for kept in (result.zoom_box, result.zoom_out_size, result.close_up_size)):
                    results[name].second_passes += 1
    return results


def format_table(results: dict[str, AspectScores]) -> str:
    """The Markdown table: one row per aspect ratio, with the `kept + zoom` columns when that mode was scored."""
    zoom = any(scores.dice[ZOOM_MODE] for scores in results.values())
    lines = [
        "| frame | images | fixed dice (p5) | kept dice (p5) | kept - fixed | kept input | s/image fixed | kept |"
        + (" kept + zoom dice (p5) | zoom - kept | 2nd passes kept | s/image kept + zoom |" if zoom else ""),
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |" + (" ---: | ---: | ---: | ---: |" if zoom else ""),
    ]
    for name, scores in results.items():
        fixed, kept, zoomed = (np.array(scores.dice[mode]) for mode in (*MODES, ZOOM_MODE))
        sizes = ", ".join(f"{h}x{w}" for h, w in sorted(scores.input_sizes))
        seconds = {mode: float(np.mean(times)) for mode, times in scores.seconds.items() if times}
        line = (
            f"| {name} | {len(fixed)} | {fixed.mean():.4f} ({np.percentile(fixed, 5):.4f}) | "
            f"{kept.mean():.4f} ({np.percentile(kept, 5):.4f}) | {kept.mean() - fixed.mean():+.4f} | {sizes} | "
            f"{seconds['fixed']:.3f} | {seconds['kept']:.3f} ({seconds['kept'] / seconds['fixed']:.2f}x) |"
        )
        if zoom:
            line += (
                f" {zoomed.mean():.4f} ({np.percentile(zoomed, 5):.4f}) | {zoomed.mean() - kept.mean():+.4f} | "
                f"{scores.second_passes} | {seconds[ZOOM_MODE]:.3f} ({seconds[ZOOM_MODE] / seconds['fixed']:.2f}x) |"
            )
        lines.append(line)
    return "\n".join(lines)


def start_photo_run(args: argparse.Namespace) -> tuple[Segmenter, list[Sample]]:
    """Set the threads, load the model on the CPU and print the run's header."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    samples = args.samples
    model, processor = load_model_or_exit(args.model, device="cpu")
    size = processor.size
    print(f"model {args.model}, processor size {size['height']}x{size['width']}, {len(samples)} photos of {args.data}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    return Segmenter(model, processor, "cpu"), samples


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    segmenter, samples = start_photo_run(args)
    print(format_table(score(segmenter, samples, args.zoom)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
