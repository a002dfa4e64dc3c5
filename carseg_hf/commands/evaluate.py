"""`carseg evaluate`: per-image dice, summary, worst-image overlays and an HTML report for a model on a data set."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time, so that `carseg --help` stays fast
    import datasets


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `carseg evaluate`."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model image by image; write per_image.csv, summary.json, worst overlays and report.html",
        description=(
            "Evaluate a model on a Carvana folder, a folder of image/mask pairs or a Hub data set. Writes "
            "per_image.csv, summary.json (mean dice and 5/50/95th percentiles), worst/<name>_overlay.png for the "
            "k worst images (red = false positive, green = true positive, blue = false negative) and report.html."
        ),
    )
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: $CARSEG_MODEL or bundled)")
    parser.add_argument("--revision", default=None, help="Hub revision of the model to pin")
    parser.add_argument("--data", required=True, help="Carvana folder, image/mask pair folder, or Hub dataset id")
    parser.add_argument(
        "--split",
        choices=("validation", "train", "heldout", "all"),
        default="validation",
        help="which images to score (default: validation, the validation cars of the split; heldout: the 'test' cars "
        "of a splits.json, e.g. synthetic held-out meshes)",
    )
    parser.add_argument("--validation-fraction", type=float, default=0.2, help="share of cars held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split by car (default 42, as in training)")
    parser.add_argument("--mask-suffix", default="_mask", help="mask suffix in a pair folder (default _mask)")
    parser.add_argument("--out", default="carseg-eval", help="output folder (default carseg-eval)")
    parser.add_argument("--worst", type=int, default=8, help="full-size overlays of the K worst images (default 8)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default 4)")
    parser.add_argument("--threshold", type=float, default=None, help="probability threshold (default: processor's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--resolution",
        choices=("processor", "native"),
        default="processor",
        help=(
            "predict at the processor's size (with keep_aspect_ratio: that many pixels, each image's aspect ratio) "
            "and resize back (default), or at each image's native size"
        ),
    )
    parser.add_argument(
        "--tta", choices=("none", "hflip"), default="none", help="test-time augmentation (default: none)"
    )
    parser.add_argument(
        "--zoom",
        action="store_true",
        help="segment a close-up's car (larger than the frame) once more at a small input, a car that runs off both "
        "sides of a portrait frame once more at a smaller input, and a car that fills little of the frame once more "
        "from a crop around it (see docs/zoom.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run `carseg evaluate`; prints the summary and returns 0, or 1 when some images could not be scored."""
    from pathlib import Path

    from ..data import load_segmentation_dataset
    from ..evaluation import evaluate_model
    from ..loading import load_model, resolve_device, resolve_model_path
    from ..output_folders import output_folder_problem

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold must lie strictly between 0 and 1, got {args.threshold}")
    if args.batch_size < 1 or args.worst < 0:
        raise ValueError(f"--batch-size must be >= 1 and --worst >= 0, got {args.batch_size} and {args.worst}")
    if (problem := output_folder_problem(args.out, "--out")) is not None:
        raise ValueError(problem)
    local = Path(args.data).is_dir()
    if Path(args.data).is_file():
        raise ValueError(
            f"--data {args.data!r} is a file; expected a folder in the Carvana layout (train/, train_masks/) or of "
            "image/mask pairs, or a Hub dataset id ORG/NAME"
        )
    if not local and (args.data.startswith((".", "/", "~")) or args.data.count("/") != 1):
        raise FileNotFoundError(
            f"data folder {args.data!r} does not exist (and it is not a Hub dataset id ORG/NAME); expected a "
            "Carvana layout (train/, train_masks/) or a folder of image/mask pairs"
        )
    data = load_segmentation_dataset(
        data_dir=args.data if local else None,
        dataset_name=None if local else args.data,
        validation_fraction=0.0 if args.split == "all" else args.validation_fraction,
        seed=args.seed,
        mask_suffix=args.mask_suffix,
        keep_unreadable=True,  # skipped and reported by evaluate_model, like carseg predict's bad inputs
    )
    dataset = _select_split(data, args)
    device = resolve_device(args.device)
    model, processor = load_model(args.model, device=device, revision=args.revision)
    summary = evaluate_model(
        model,
        processor,
        dataset,
        args.out,
        batch_size=args.batch_size,
        threshold=args.threshold,
        resolution=args.resolution,
        worst=args.worst,
        tta=args.tta == "hflip",
        zoom=args.zoom,
        progress=not args.no_progress,
        model_name=resolve_model_path(args.model),
        data_name=args.data,
        split=args.split,
    )
    percentiles = summary["dice_percentiles"]
    print(
        f"{summary['count']} images ({args.split}): mean dice {summary['mean_dice']:.5f}, "
        f"p5 {percentiles['5']:.5f}, median {percentiles['50']:.5f}, p95 {percentiles['95']:.5f}",
        file=sys.stdout,
    )
    print(f"wrote {args.out}/per_image.csv, summary.json, worst/ and report.html", file=sys.stdout)
    if summary["skipped"]:
        print(f"{len(summary['skipped'])} image(s) could not be scored and were skipped:", file=sys.stderr)
        for entry in summary["skipped"]:
            print(f"  {entry['error']}", file=sys.stderr)
        return 1
    return 0


def _select_split(data: datasets.DatasetDict, args: argparse.Namespace) -> datasets.Dataset:
    """The images `--split` asks for; says how many of the data's images that leaves out, and how to score them."""
    import datasets

    scored = [name for name in ("train", "validation", "heldout") if name in data and len(data[name])]
    if args.split == "all":
        parts = [data[name] for name in scored]
        return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if args.split not in data:
        raise ValueError(f"{args.data} has no {args.split!r} split (it has {', '.join(data)})")
    dataset = data[args.split]
    total = sum(len(data[name]) for name in scored)
    if len(dataset) < total:
        print(
            f"scoring the {args.split} split only: {len(dataset)} of the {total} images (split by car as training "
            "splits them: the folder's splits.json, else --validation-fraction and --seed); pass --split all to "
            "score every image",
            file=sys.stdout,
        )
    return dataset
