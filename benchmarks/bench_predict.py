"""End-to-end `carseg predict` throughput: a folder of 1918x1280 JPEGs to a Kaggle submission CSV.

The script writes its own procedural Carvana-layout JPEGs (`carseg_hf.fixture.make_carvana_fixture`) into a
temporary folder, then runs `BatchPredictor` (the engine of `carseg predict`) to a submission, without and with hflip
TTA. It prints images/s and the per-stage breakdown from `PredictSummary.stage_seconds`, measured with device
synchronisation between stages (`profile=True`):

- `decode`: file reading and decoding (PIL, or nvjpeg on CUDA), summed over the decoding threads, so with several
  workers it can exceed the wall time;
- `model`: preprocessing on the device, forward pass(es), resize of the logits to 1918x1280 and the threshold;
- `rle`: run-length encoding (on the device, only run boundaries copied back);
- `write`: appending the rows to the submission journal (writer thread).

Stages overlap, so the wall time is less than their sum. Each configuration first segments `--warmup` images
untimed (oneDNN/cuDNN set-up, compilation), so the figures are steady-state. Rows run the model as saved and with
BatchNorm folded into the convolutions (`carseg predict`'s default), so the first row is the baseline of the run.
The C allocator keeps freed memory for reuse (`--allocator retain`, as `carseg predict` does) unless
`--allocator default` is given. Without `--model` the network is randomly initialised:
its masks are not car-shaped, so the mean number of runs per image is printed to make the RLE cost comparable.

    python benchmarks/bench_predict.py --device cpu --images 8 --batch-size 1 --threads 2 --workers 1 --tta none
    python benchmarks/bench_predict.py --device cuda --images 256 --batch-size 16 --compile default   # the H100 run
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_inference import CONFIGS  # noqa: E402
from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor  # noqa: E402
from carseg_hf.cpu_runtime import retain_freed_memory  # noqa: E402
from carseg_hf.device_info import describe_device  # noqa: E402
from carseg_hf.fixture import make_carvana_fixture  # noqa: E402
from carseg_hf.loading import load_model, resolve_device  # noqa: E402
from carseg_hf.predict import BatchPredictor, PredictOptions  # noqa: E402
from carseg_hf.rle import read_rle_csv  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="generated JPEGs")
    parser.add_argument("--source-size", default="1918x1280", help="WxH of the JPEGs (Carvana: 1918x1280)")
    parser.add_argument("--model", default=None, help="a model folder; default: random weights of --config")
    parser.add_argument("--config", default="reference", choices=tuple(CONFIGS))
    parser.add_argument("--resolution", default="1024x1024", help="network input: HxW, native or processor")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=4, help="decoding threads")
    parser.add_argument("--compile", default="none", choices=("none", "default", "max-autotune"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--tta", default="both", choices=("none", "hflip", "both"))
    parser.add_argument("--data", default=None, help="reuse (or create) the JPEG folder here instead of a temp dir")
    parser.add_argument(
        "--decode", default="auto", choices=("auto", "processor", "tensor"), help="see PredictOptions.decode"
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed images per configuration (default: batch)")
    parser.add_argument("--allocator", default="retain", choices=("retain", "default"), help="see cpu_runtime")
    parser.add_argument(
        "--fold", default="both", choices=("no", "yes", "both"), help="fold BatchNorm into the convolutions"
    )
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch_size < 1 or args.workers < 1 or (args.warmup is not None and args.warmup < 0):
        parser.error("--images, --batch-size and --workers must be >= 1, and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "retain":
        retain_freed_memory()
    device = resolve_device(args.device)
    dtype = ("bf16" if device.type == "cuda" else "fp32") if args.dtype == "auto" else args.dtype
    if args.model:
        model, processor = load_model(args.model, device=device)
    else:
        torch.manual_seed(0)
        model = CarSegForSemanticSegmentation(CarSegConfig(**CONFIGS[args.config])).eval()
        processor = CarSegImageProcessor()
    width, height = (int(v) for v in args.source_size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="carseg-bench-") as scratch:
        data = Path(args.data or scratch) / "data"
        if not (data / "test").is_dir() or len(list((data / "test").glob("*.jpg"))) < args.images:
            start = time.perf_counter()
            make_carvana_fixture(data, num_cars=0, size=(width, height), num_test=args.images, write_csv=False)
            print(f"# wrote {args.images} {width}x{height} JPEGs in {time.perf_counter() - start:.1f} s")
        images = sorted((data / "test").glob("*.jpg"))[: args.images]
        print(f"# bench_predict  {datetime.datetime.now().isoformat(timespec='seconds')}")
        name = describe_device(device)
        print(f"# device {device} ({name}), torch {torch.__version__}")
        print(
            f"# model {args.model or args.config + ' (random weights)'}, input {args.resolution}, dtype {dtype}, "
            f"allocator {args.allocator}, decode {args.decode}"
        )
        print(f"# command: python benchmarks/bench_predict.py {' '.join(sys.argv[1:] if argv is None else argv)}")
        print()
        print(
            "| TTA | BN folded | images | batch | workers | images/s | s/image | vs first row | decode s | model s "
            "| rle s | write s | runs/image |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        warmup = args.batch_size if args.warmup is None else args.warmup
        baseline = None
        folds = (False, True) if args.fold == "both" else (args.fold == "yes",)
        for tta, fold in [(t, f) for t in (("none", "hflip") if args.tta == "both" else (args.tta,)) for f in folds]:
            submission = Path(scratch) / f"submission-{tta}.csv"
            options = PredictOptions(
                submission=submission,
                batch_size=args.batch_size,
                tta=tta == "hflip",
                resolution=args.resolution,
                compile=args.compile,
                dtype=dtype,
                fold_batchnorm=fold,
                decode=args.decode,
                workers=args.workers,
                progress=False,
                profile=True,
                overwrite=True,
            )
            predictor = BatchPredictor(model, processor, device, options)
            if warmup:  # set-up and compilation outside the timed run
                predictor.options.submission = Path(scratch) / "warmup.csv"
                predictor.run(images[:warmup])
                predictor.options.submission = submission
            summary = predictor.run(images)
            rows = read_rle_csv(submission)
            runs = sum(len(rle.split()) // 2 for rle in rows.values()) / max(len(rows), 1)
            stages = summary.stage_seconds
            baseline = baseline or summary.images_per_second
            print(
                f"| {tta} | {'yes' if fold else 'no'} | {summary.processed} | {args.batch_size} | {args.workers} | "
                f"{summary.images_per_second:.2f} | {summary.seconds / max(summary.processed, 1):.3f} | "
                f"{summary.images_per_second / baseline:.2f}x | "
                f"{stages['decode']:.2f} | {stages['model']:.2f} | {stages['rle']:.2f} | {stages['write']:.2f} | "
                f"{runs:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
