"""End-to-end `carseg predict` throughput: a folder of 1280x1918 JPEGs to a Kaggle submission CSV.

The script writes its own procedural Carvana-layout JPEGs (`tests.fixture.make_carvana_fixture`, in `--gen-workers`
processes, each image distinct) into a temporary folder (or `--data PATH/data/test`, reused by later runs that ask for
the same `--source-size`), then runs `BatchPredictor` (the engine of `carseg predict`) to a submission, without and
with hflip TTA. Each configuration runs twice on the same images with the same predictor:

1. as `carseg predict` runs, with one batch in flight on the device (`profile=False`): `images/s`, `s/image` and
   the ratio to the first row come from this run;
2. profiled (`profile=True`): the device is synchronised between stages and each batch is finished before the next
   is queued, which costs throughput on a GPU (`profiled images/s`) but splits the time exactly. The per-stage
   columns (`PredictSummary.stage_seconds`, in ms per image) come from this run:

- `decode`: file reading and decoding (PIL, or nvjpeg on CUDA), summed over the decoding threads, so with several
  workers it can exceed the wall time;
- `model`: preprocessing on the device, forward pass(es), resize of the logits to 1280x1918 and the threshold;
- `rle`: run-length encoding (on the device, only run boundaries copied back);
- `write`: appending the rows to the submission journal (writer thread).

Stages overlap, so the wall time is less than their sum. Each configuration first segments `--warmup` images
untimed (oneDNN/cuDNN set-up, compilation), so the figures are steady-state. Rows run the model as saved and with
BatchNorm folded into the convolutions (`carseg predict`'s default), so the first row is the baseline of the run.
The C allocator keeps freed memory for reuse (`--allocator retain`, as `carseg predict` does) unless
`--allocator default` is given. Without `--model` the network is randomly initialised:
its masks are not car-shaped, so the mean number of runs per image is printed to make the RLE cost comparable.

The last column checks the fast path against plain eager fp32 (the target is >= 99.9% of pixels): the first
`--check` images are also segmented with the model as saved, contiguous, unfolded, uncompiled, in fp32 with TF32 off
and PIL decoding, with the row's TTA setting, and the column gives the lowest per-image fraction of pixels on which
the row's submission agrees with that reference. With random weights the masks are not car-shaped (see runs/image;
with hflip TTA they come out nearly uniform), so a trained model (`--model`) gives the more telling check.

    python benchmarks/bench_predict.py --device cpu --images 8 --batch-size 1 --threads 2 --workers 1 --tta none
    python benchmarks/bench_predict.py --device cuda --images 256 --batch-size 16 --compile default   # the H100 run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.arguments import device_type, load_model_or_exit  # noqa: E402
from benchmarks.bench_inference import CONFIGS  # noqa: E402
from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor  # noqa: E402
from carseg_hf.commands.predict import parse_resolution  # noqa: E402
from carseg_hf.cpu_runtime import retain_freed_memory  # noqa: E402
from carseg_hf.device_info import describe_device  # noqa: E402
from carseg_hf.number_ranges import whole_number_type  # noqa: E402
from carseg_hf.output_folders import output_folder_problem  # noqa: E402
from carseg_hf.predict import BatchPredictor, PredictOptions  # noqa: E402
from carseg_hf.rle import rle_decode  # noqa: E402
from carseg_hf.sizes import height_width_type  # noqa: E402
from carseg_hf.submission import read_rle_csv  # noqa: E402
from tests.fixture import make_carvana_fixture  # noqa: E402

#: Written into `--data`'s `data/` beside `test/` once this script has generated the JPEGs there: only a folder
#: holding it may have its JPEGs replaced by new ones.
MARKER = "bench_predict.txt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="generated JPEGs")
    parser.add_argument(
        "--source-size",
        type=height_width_type(),
        default="1280x1918",
        help="HEIGHTxWIDTH of the JPEGs (Carvana: 1280x1918)",
    )
    parser.add_argument("--model", default=None, help="a model folder; default: random weights of --config")
    parser.add_argument("--config", default="reference", choices=tuple(CONFIGS))
    parser.add_argument("--resolution", default="1024x1024", help="network input: HxW, native or processor")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", type=device_type, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=whole_number_type(1), default=None, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=4, help="decoding threads")
    parser.add_argument("--compile", default="none", choices=("none", "default", "max-autotune"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--tta", default="both", choices=("none", "hflip", "both"))
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="keep the JPEGs in DATA/data/test instead of a temp dir, reusing them when they have the requested size",
    )
    parser.add_argument(
        "--decode", default="auto", choices=("auto", "processor", "tensor"), help="see PredictOptions.decode"
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed images per configuration (default: batch)")
    parser.add_argument("--allocator", default="retain", choices=("retain", "default"), help="see cpu_runtime")
    parser.add_argument(
        "--fold", default="both", choices=("no", "yes", "both"), help="fold BatchNorm into the convolutions"
    )
    parser.add_argument(
        "--gen-workers", type=int, default=min(os.cpu_count() or 1, 16), help="processes writing the JPEGs"
    )
    parser.add_argument("--check", type=int, default=8, help="images compared with plain eager fp32 (0: none)")
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch_size < 1 or args.workers < 1 or (args.warmup is not None and args.warmup < 0):
        parser.error("--images, --batch-size and --workers must be >= 1, and --warmup >= 0")
    if args.check < 0 or args.gen_workers < 1:
        parser.error("--check must be >= 0 and --gen-workers >= 1")
    try:
        parse_resolution(args.resolution)
    except ValueError as error:
        parser.error(str(error))
    if args.data is not None:
        problem = output_folder_problem(args.data, "--data") or foreign_jpegs(args.data / "data", args)
        if problem:
            parser.error(problem)
    return args


def reusable_jpegs(data: Path, count: int, size: tuple[int, int]) -> list[Path] | None:
    """The first `count` JPEGs of `data/test` when there are that many and each is `size` (height, width); else None.

    Only the files' headers are read; a file that is not a readable JPEG counts as a mismatch.
    """
    images = sorted((data / "test").glob("*.jpg"))[:count]
    if len(images) < count:
        return None
    for image in images:
        try:
            with Image.open(image) as opened:
                if opened.size != size[::-1]:  # PIL: (width, height)
                    return None
        except OSError:  # unreadable, or not an image
            return None
    return images


def foreign_jpegs(data: Path, args: argparse.Namespace) -> str | None:
    """Why the JPEGs of `data/test` can neither be reused nor replaced: files this script did not write; else None."""
    test = data / "test"
    if not test.is_dir() or (data / MARKER).is_file() or not any(test.iterdir()):
        return None
    if reusable_jpegs(data, args.images, args.source_size) is not None:
        return None
    height, width = args.source_size
    return (
        f"--data {str(args.data)!r}: {test} holds files that bench_predict did not write (no {MARKER} beside it), and "
        f"not {args.images} JPEGs of {height}x{width}; they would be deleted: empty that folder or pick another --data"
    )


def write_test_jpegs(data: Path, count: int, size: tuple[int, int], workers: int) -> list[Path]:
    """Write `count` distinct procedural JPEGs into `data/test` (replacing any there), one seed per process.

    Args:
        data: The data folder; the images go to its `test/` subfolder.
        count: Number of images.
        size: `(width, height)` of each image.
        workers: Processes to write them with.

    Returns:
        The written files, sorted.

    Raises:
        RuntimeError: If two processes produced the same file name (a car id drawn twice).
    """
    test = data / "test"
    if test.exists():
        shutil.rmtree(test)
    test.mkdir(parents=True)
    chunks = [count // workers + (index < count % workers) for index in range(workers)]
    parts = [data / f"part-{seed}" for seed in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [
            pool.submit(make_carvana_fixture, part, num_cars=0, size=size, seed=seed, num_test=chunk, write_csv=False)
            for seed, (part, chunk) in enumerate(zip(parts, chunks))
            if chunk
        ]
        for job in jobs:
            job.result()
    for part in parts:
        for image in sorted((part / "test").glob("*.jpg")) if part.exists() else []:
            if (test / image.name).exists():
                raise RuntimeError(f"two generated JPEGs are both named {image.name}; pick another --images count")
            image.rename(test / image.name)
        shutil.rmtree(part, ignore_errors=True)
    return sorted(test.glob("*.jpg"))


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """Turn off TF32 in cuDNN convolutions and matmuls (on by default for convolutions), restoring it afterwards."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def eager_fp32_rows(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    device: torch.device,
    images: list[Path],
    tta: bool,
    args: argparse.Namespace,
    submission: Path,
) -> dict[str, str]:
    """Submission rows of plain eager fp32 for `images`: the reference of the agreement column."""
    options = PredictOptions(
        submission=submission,
        batch_size=args.batch_size,
        tta=tta,
        resolution=parse_resolution(args.resolution),
        dtype="fp32",
        channels_last=False,
        fold_batchnorm=False,
        decode="processor",
        workers=args.workers,
        progress=False,
        overwrite=True,
    )
    with strict_fp32():
        BatchPredictor(model, processor, device, options).run(images)
    return read_rle_csv(submission)


def min_agreement(rows: dict[str, str], reference: dict[str, str], shape: tuple[int, int]) -> float:
    """Lowest per-image fraction of equal pixels between two sets of submission rows (over `reference`'s images)."""
    worst = 1.0
    for name, rle in reference.items():
        if name not in rows:
            return 0.0
        worst = min(worst, float((rle_decode(rows[name], shape) == rle_decode(rle, shape)).mean()))
    return worst


def prepare_jpegs(args: argparse.Namespace, scratch: str) -> list[Path]:
    """The `--images` JPEGs of `--source-size` to segment: reused from `--data` where they fit, else written there.

    Prints where the JPEGs come from. A `--data` folder of this script's whose JPEGs have another size or are too
    few gets new ones (`foreign_jpegs` has refused any other folder while parsing the arguments).
    """
    height, width = args.source_size
    data = (args.data or Path(scratch)) / "data"
    if args.data is not None:
        images = reusable_jpegs(data, args.images, args.source_size)
        if images is not None:
            print(f"# reusing {args.images} {height}x{width} JPEGs from {data / 'test'}")
            return images
        reason = "another size or too few" if (data / "test").is_dir() else "a new folder"
        print(f"# writing {args.images} {height}x{width} JPEGs into {data / 'test'} ({reason})", flush=True)
    start = time.perf_counter()
    processes = min(args.gen_workers, args.images)
    images = write_test_jpegs(data, args.images, (width, height), processes)
    (data / MARKER).write_text("JPEGs generated by benchmarks/bench_predict.py; it replaces them at will\n")
    seconds = time.perf_counter() - start
    print(f"# wrote {args.images} {height}x{width} JPEGs in {seconds:.1f} s with {processes} processes")
    return images


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "retain":
        retain_freed_memory()
    device = args.device
    dtype = ("bf16" if device.type == "cuda" else "fp32") if args.dtype == "auto" else args.dtype
    if args.model:
        model, processor = load_model_or_exit(args.model, device=device)
    else:
        torch.manual_seed(0)
        model = CarSegForSemanticSegmentation(CarSegConfig(**CONFIGS[args.config])).eval()
        processor = CarSegImageProcessor()
    height, width = args.source_size
    with tempfile.TemporaryDirectory(prefix="carseg-bench-") as scratch:
        try:
            images = prepare_jpegs(args, scratch)
        except OSError as error:
            print(f"error: --data {args.data}: cannot write the JPEGs: {error}", file=sys.stderr)
            return 2
        print(f"# bench_predict  {datetime.datetime.now().isoformat(timespec='seconds')}")
        name = describe_device(device)
        print(f"# device {device} ({name}), torch {torch.__version__}")
        print(
            f"# model {args.model or args.config + ' (random weights)'}, input {args.resolution}, dtype {dtype}, "
            f"allocator {args.allocator}, decode {args.decode}"
        )
        print(f"# source {len(images)} JPEGs of {height}x{width} (HEIGHTxWIDTH) in {images[0].parent}")
        print(f"# command: python benchmarks/bench_predict.py {' '.join(sys.argv[1:] if argv is None else argv)}")
        print()
        print(
            "| TTA | BN folded | images | batch | workers | images/s | s/image | vs first row | profiled images/s "
            "| decode ms/img | model ms/img | rle ms/img | write ms/img | runs/image | min agreement vs eager fp32 |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        warmup = args.batch_size if args.warmup is None else args.warmup
        baseline = None
        folds = (False, True) if args.fold == "both" else (args.fold == "yes",)
        references: dict[str, dict[str, str]] = {}
        for tta, fold in [(t, f) for t in (("none", "hflip") if args.tta == "both" else (args.tta,)) for f in folds]:
            submission = Path(scratch) / f"submission-{tta}.csv"
            options = PredictOptions(
                submission=submission,
                batch_size=args.batch_size,
                tta=tta == "hflip",
                resolution=parse_resolution(args.resolution),
                compile=args.compile,
                dtype=dtype,
                fold_batchnorm=fold,
                decode=args.decode,
                workers=args.workers,
                progress=False,
                overwrite=True,
            )
            predictor = BatchPredictor(model, processor, device, options)
            if warmup:  # set-up and compilation outside the timed run
                predictor.options.submission = Path(scratch) / "warmup.csv"
                predictor.run(images[:warmup])
                predictor.options.submission = submission
            summary = predictor.run(images)
            rows = read_rle_csv(submission)
            predictor.options.profile = True  # the same compiled predictor, finishing each batch before the next
            predictor.options.submission = Path(scratch) / "profiled.csv"
            profiled = predictor.run(images)
            runs = sum(len(rle.split()) // 2 for rle in rows.values()) / max(len(rows), 1)
            agreement = "–"
            if args.check:
                if tta not in references:
                    reference_csv = Path(scratch) / f"reference-{tta}.csv"
                    checked = images[: args.check]
                    references[tta] = eager_fp32_rows(
                        model, processor, device, checked, tta == "hflip", args, reference_csv
                    )
                agreement = f"{min_agreement(rows, references[tta], (height, width)):.5f}"
            stages = {key: 1000 * value / max(profiled.processed, 1) for key, value in profiled.stage_seconds.items()}
            baseline = baseline or summary.images_per_second
            print(
                f"| {tta} | {'yes' if fold else 'no'} | {summary.processed} | {args.batch_size} | {args.workers} | "
                f"{summary.images_per_second:.2f} | {summary.seconds / max(summary.processed, 1):.3f} | "
                f"{summary.images_per_second / baseline:.2f}x | {profiled.images_per_second:.2f} | "
                f"{stages['decode']:.1f} | {stages['model']:.1f} | {stages['rle']:.1f} | {stages['write']:.1f} | "
                f"{runs:.0f} | {agreement} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
