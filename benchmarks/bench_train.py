"""Training throughput with the real data pipeline versus in-memory tensors, and peak memory.

Both runs use the same model, batch size, optimizer (Adam), loss (BCE + dice) and mixed precision through Accelerate:

- `pipeline`: JPEG/GIF files -> HF dataset -> workers (decode, resize, joint augmentation, as in carseg_hf.training)
  -> pinned uint8 batches -> normalisation on the device -> forward/backward/step;
- `in-memory`: one batch already normalised on the device, reused every step.

The ratio pipeline / in-memory is the data-pipeline efficiency (1.0: the data loader never makes the model wait).
The script writes its own procedural Carvana-layout data set into a temporary folder.

    python benchmarks/bench_train.py --device cpu --config tiny --resolution 128x192 --batch-size 2 --steps 6
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.arguments import device_type  # noqa: E402
from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor  # noqa: E402
from carseg_hf.configuration_carseg import NAMED_CONFIGS  # noqa: E402
from carseg_hf.data import load_segmentation_dataset  # noqa: E402
from carseg_hf.device_info import describe_device  # noqa: E402
from carseg_hf.number_ranges import whole_number_type  # noqa: E402
from carseg_hf.sizes import MIN_INPUT_SIDE, height_width_type  # noqa: E402
from carseg_hf.training.augment import JointAugmentation  # noqa: E402
from carseg_hf.training.augmentation_config import AugmentationConfig  # noqa: E402
from carseg_hf.training.data_pipeline import (  # noqa: E402
    SegmentationTransform,
    build_dataloader,
    prepare_split,
    to_model_inputs,
)
from tests.fixture import make_carvana_fixture  # noqa: E402

#: Named model configurations (reference, slim = the bundled model's width, tiny = the test network).
CONFIGS = NAMED_CONFIGS


def accelerate_device_type(text: str) -> str:
    """An argparse `type=` for `--device`: `auto`, `cpu` or `cuda`, as the device type handed to Accelerate.

    Accelerate picks the GPU itself (the first that `CUDA_VISIBLE_DEVICES` shows), so `cuda:N` is refused: the
    figures would come from another GPU than the one named.
    """
    if text.startswith("cuda:"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: bench_train runs on the GPU Accelerate picks; give --device cuda and choose the GPU with "
            f"CUDA_VISIBLE_DEVICES={text.partition(':')[2]}"
        )
    return device_type(text).type


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line; every bad value is a usage error before any data is generated."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--resolution",
        type=height_width_type(minimum=MIN_INPUT_SIDE),
        default="1024x1024",
        help=f"training size HEIGHTxWIDTH, each side >= {MIN_INPUT_SIDE}",
    )
    parser.add_argument("--batch-size", type=whole_number_type(1), default=8)
    parser.add_argument("--steps", type=whole_number_type(1), default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=whole_number_type(0), default=3, help="untimed steps per mode")
    parser.add_argument(
        "--device",
        type=accelerate_device_type,
        default="auto",
        help="auto, cpu or cuda (choose the GPU with CUDA_VISIBLE_DEVICES)",
    )
    parser.add_argument("--config", default="reference", choices=tuple(CONFIGS))
    parser.add_argument(
        "--workers", type=whole_number_type(0), default=8, help="data-loader workers (0: main process)"
    )
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "no", "bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--source-size",
        type=height_width_type(),
        default="1280x1918",
        help="HEIGHTxWIDTH of the generated JPEGs (Carvana: 1280x1918)",
    )
    parser.add_argument(
        "--cars", type=whole_number_type(1), default=4, help="cars x 16 views in the generated data set"
    )
    args = parser.parse_args(argv)
    if args.mixed_precision == "auto":
        args.mixed_precision = "bf16" if args.device == "cuda" else "no"
    return args


def timed_steps(step, batches, warmup: int, steps: int, device: torch.device) -> float:
    """Run `warmup + steps` training steps and return the seconds of the last `steps`."""
    iterator = iter(batches)
    for _ in range(warmup):
        step(next(iterator))
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def repeat(dataloader):
    """Iterate a data loader forever, epoch after epoch."""
    epoch = 0
    while True:
        dataloader.set_epoch(epoch) if hasattr(dataloader, "set_epoch") else None
        yield from dataloader
        epoch += 1


def main(argv=None) -> int:
    from accelerate import Accelerator

    args = parse_args(argv)
    torch.manual_seed(0)
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.device == "cpu")
    device = accelerator.device
    height, width = args.resolution
    size = {"height": height, "width": width}
    processor = CarSegImageProcessor(size=size)
    model = CarSegForSemanticSegmentation(CarSegConfig(**CONFIGS[args.config])).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda")

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        data_dir = make_carvana_fixture(
            Path(folder) / "data", num_cars=args.cars, size=args.source_size[::-1], num_test=0
        )  # (width, height)
        print(f"generated {args.cars * 16} images at {args.source_size[0]}x{args.source_size[1]} (HxW) "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        splits = load_segmentation_dataset(data_dir=data_dir, validation_fraction=0.25, seed=0)
        augmentation = JointAugmentation(AugmentationConfig())
        epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        dataset = prepare_split(splits["train"], SegmentationTransform(processor, size, augmentation, 0, epoch))
        dataloader = build_dataloader(dataset, args.batch_size, True, args.workers, device.type == "cuda")
        model, optimizer, dataloader = accelerator.prepare(model, optimizer, dataloader)

        def train_step(pixel_values: torch.Tensor, labels: torch.Tensor) -> None:
            loss = model(pixel_values=pixel_values, labels=labels).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def pipeline_step(batch) -> None:
            train_step(to_model_inputs(batch["pixel_values"], processor, args.channels_last), batch["labels"])

        def memory_step(batch) -> None:
            train_step(*batch)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        pipeline_s = timed_steps(pipeline_step, repeat(dataloader), args.warmup, args.steps, device)
        fixed = next(iter(dataloader))
        fixed = (to_model_inputs(fixed["pixel_values"], processor, args.channels_last), fixed["labels"])

        def same_batch():
            while True:
                yield fixed

        memory_s = timed_steps(memory_step, same_batch(), args.warmup, args.steps, device)

    images = args.steps * args.batch_size
    pipeline_rate, memory_rate = images / pipeline_s, images / memory_s
    name = describe_device(device)
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB CUDA max allocated"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB peak RSS (main process)"
    print(
        f"\ndevice: {name}; torch {torch.__version__}; config {args.config}; {height}x{width}; batch "
        f"{args.batch_size}; {args.mixed_precision}; workers {args.workers}; {args.steps} timed steps"
    )
    print("| mode | images/s |\n| --- | --- |")
    print(f"| pipeline (files, workers, augmentation) | {pipeline_rate:.2f} |")
    print(f"| in-memory tensors | {memory_rate:.2f} |")
    print(f"| efficiency (pipeline / in-memory) | {pipeline_rate / memory_rate:.3f} |")
    print(f"| peak memory | {peak} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
