"""`carseg predict`: segment files, folders or globs into mask files and/or a Kaggle submission."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ..predict.options import COMPILE_MODES, DEVICE_DEFAULTS, DTYPE_NAMES, MASK_FORMATS, PredictOptions
from ..sizes import MIN_INPUT_SIDE, parse_height_width

_RESOLUTION_ERROR = (
    "--resolution must be 'processor', 'native' or HEIGHTxWIDTH such as 1024x1024 with both sides at least "
    f"{MIN_INPUT_SIDE}, got {{!r}}"
)


def parse_resolution(text: str) -> str | tuple[int, int]:
    """Turn a `--resolution` value into `PredictOptions.resolution`.

    Args:
        text: `"processor"` (the processor's size), `"native"` (each image's own size) or `"HxW"`, each side at
            least `MIN_INPUT_SIDE`.

    Returns:
        `"processor"`, `"native"` or `(height, width)`.

    Raises:
        ValueError: If the value is none of these forms; it names `--resolution`, the forms and the value.
    """
    if text in ("processor", "native"):
        return text
    try:
        return parse_height_width(text, minimum=MIN_INPUT_SIDE)
    except ValueError as error:
        raise ValueError(_RESOLUTION_ERROR.format(text)) from error


def _default(name: str) -> Any:
    """The default of a `PredictOptions` field, the one place where it is written."""
    return next(option.default for option in dataclasses.fields(PredictOptions) if option.name == name)


def _by_device(name: str) -> str:
    """A setting's device-tuned defaults for help texts, e.g. `"16 on GPU, 1 on CPU"`."""
    return f"{DEVICE_DEFAULTS['cuda'][name]} on GPU, {DEVICE_DEFAULTS['cpu'][name]} on CPU"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `carseg predict`."""
    parser = subparsers.add_parser(
        "predict",
        help="segment images in batches into masks and/or a Kaggle submission (resumable)",
        description=(
            "Segment images into 0/255 PNG (or 0/1 GIF) masks and/or a Kaggle `img,rle_mask` submission. "
            "Rerunning the same command skips finished masks and keeps the rows of an interrupted submission."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted glob patterns")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: $CARSEG_MODEL or bundled)")
    parser.add_argument("--revision", default=None, help="Hub revision to pin")
    parser.add_argument("--out", default=None, help="folder for mask files, named <image stem>.png|gif")
    parser.add_argument(
        "--format",
        choices=MASK_FORMATS,
        default=_default("mask_format"),
        help="mask files: 0/255 PNG or 0/1 GIF (default: %(default)s)",
    )
    parser.add_argument(
        "--overlay",
        default=None,
        metavar="DIR",
        help="folder for overlays to look at: <image stem>_overlay.jpg, the photo with the predicted car tinted",
    )
    parser.add_argument("--submission", default=None, help="Kaggle submission to write: FILE.csv or FILE.csv.gz")
    parser.add_argument(
        "--batch-size", type=int, default=None, help=f"images per forward pass (default: {_by_device('batch_size')})"
    )
    parser.add_argument(
        "--tta",
        choices=("none", "hflip"),
        default="hflip" if _default("tta") else "none",
        help="test-time augmentation (default: %(default)s)",
    )
    parser.add_argument(
        "--zoom",
        action="store_true",
        help="segment a close-up's car (larger than the frame) once more at a small input, a car that runs off both "
        "sides of a portrait frame once more at a smaller input, and a car that fills little of the frame once more "
        "from a crop around it (slower for such photos; docs/zoom.md)",
    )
    parser.add_argument(
        "--threshold", type=float, default=_default("threshold"), help="probability threshold (default: processor's)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--resolution",
        default=_default("resolution"),
        help=(
            "network input size: processor (its size), native, or HxW; a processor with keep_aspect_ratio keeps "
            "each photo's aspect ratio at that many pixels (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default=_default("compile"),
        help="torch.compile mode (default: %(default)s)",
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", *DTYPE_NAMES),
        default="auto",
        help=f"autocast (default: auto, {_by_device('dtype')})",
    )
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--workers", type=int, default=None, help=f"decoding threads (default: {_by_device('workers')})"
    )
    parser.add_argument("--no-channels-last", action="store_true", help="keep the contiguous memory format")
    parser.add_argument(
        "--no-fold-batchnorm", action="store_true", help="run the model as saved, without folding BatchNorm"
    )
    parser.add_argument(
        "--allocator",
        choices=("retain", "default"),
        default="retain",
        help="retain: keep freed memory for reuse (faster on CPU, see carseg_hf.cpu_runtime); default: glibc's",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute everything instead of resuming (needed when the outputs were made with other settings)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the time per stage, synchronising the device between stages (slower on a GPU)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run `carseg predict`; returns 0 when every image was segmented, 1 when some could not be read."""
    import torch

    from ..cpu_runtime import retain_freed_memory
    from ..loading import load_model, resolve_device, resolve_model_path, weights_file
    from ..predict import BatchPredictor, expand_inputs
    from ..predict_record import ModelSource, file_sha256

    resolution = parse_resolution(args.resolution)

    if args.allocator == "retain":
        retain_freed_memory()
    if args.num_threads is not None:
        if args.num_threads < 1:
            raise ValueError(f"--num-threads must be >= 1, got {args.num_threads}")
        torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    options = PredictOptions.for_device(  # None keeps the default: the device's batch size, workers and dtype
        device.type,
        out_dir=args.out,
        mask_format=args.format,
        overlay_dir=args.overlay,
        submission=args.submission,
        batch_size=args.batch_size,
        tta=args.tta == "hflip",
        zoom=args.zoom,
        threshold=args.threshold,
        resolution=resolution,
        compile=args.compile,
        dtype=None if args.dtype == "auto" else args.dtype,
        channels_last=not args.no_channels_last,
        fold_batchnorm=not args.no_fold_batchnorm,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        profile=args.profile,
    )
    options.validate()
    options.validate_outputs()
    if options.dtype == "bf16" and device.type != "cuda":
        from ..device_info import cpu_bf16_warning

        if (warning := cpu_bf16_warning()) is not None:
            print(f"carseg predict: warning: {warning}", file=sys.stderr)
    expand_inputs(args.inputs)  # fail on a typo before loading the model
    model, processor = load_model(args.model, device=device, revision=args.revision)
    weights_sha256 = file_sha256(weights_file(args.model, revision=args.revision))
    source = ModelSource(resolve_model_path(args.model), args.revision, weights_sha256)
    predictor = BatchPredictor(model, processor, device, options, source=source)
    summary = predictor.run(args.inputs)  # as given: the run also checks that no output lands in an input folder
    return _report(args, summary, options, device)


def _report(args: argparse.Namespace, summary: Any, options: PredictOptions, device: Any) -> int:
    """Print what the run did; returns 0 when every image was segmented, 1 when some could not be read."""
    parts = [f"{summary.processed} segmented", f"{summary.skipped} already done", f"{len(summary.failed)} failed"]
    print(
        f"carseg predict: {summary.total} images: {', '.join(parts)} in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.2f} img/s on {device})"
    )
    if args.profile:
        stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in summary.stage_seconds.items())
        print(f"stages: {stages} (decode summed over {options.workers} worker(s))")
    if args.out:
        print(f"masks in {args.out}")
    if args.overlay:
        print(f"overlays (predicted car tinted) in {args.overlay}")
    if args.submission:
        kept = summary.submission_rows_kept
        notes = [f"{kept} kept from earlier runs: images not among this run's inputs"] if kept else []
        if summary.failed:  # Kaggle needs a row for every test image
            notes.append(
                f"{len(summary.failed)} image(s) missing: the submission is INCOMPLETE; fix them and rerun to add them"
            )
        note = f" ({'; '.join(notes)})" if notes else ""
        print(f"submission {args.submission}: {summary.submission_rows} rows{note}")
    if summary.failed:
        print(f"{len(summary.failed)} image(s) could not be read and were skipped:", file=sys.stderr)
        for path, reason in summary.failed:
            print(f"  {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
        return 1
    return 0
