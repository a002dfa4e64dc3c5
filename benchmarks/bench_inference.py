"""Model-only inference throughput: eager fp32, channels_last, folded BatchNorm, bf16, torch.compile, max-autotune.

Each mode runs `BatchPredictor.forward` (the exact forward of `carseg predict`) on one random batch kept on the
device, so decoding and writing are left out. For every size it prints images/s (from the median timed pass, with the
fastest and slowest pass beside it), GFLOP per image (counted with `torch.utils.flop_counter.FlopCounterMode` on one
fp32 forward pass), the achieved TFLOP/s, peak memory and the ratio of images/s against the first row of the same
size, measured in the same run: eager fp32, contiguous, unfolded, unless `--modes` or `--skip-*` leave that mode
out, in which case the first mode run is the baseline. The line above the table names the baseline. Nothing here
asserts a timing.

`--allocator` picks the C allocator's behaviour (see `carseg_hf.cpu_runtime`): `default` is glibc's, `retain` keeps
freed memory for reuse as the `carseg` commands do, and `both` first measures every mode with `default` in a child
process and then with `retain` here, so that one run prints both with ratios against the same baseline: the default
allocator's first row, from the child process. The `retain` rows' ratios therefore compare two processes, which
other load on the machine can skew; the header says so and prints the load average.

Peak memory is `torch.cuda.max_memory_allocated` on a GPU; on the CPU it is the process's peak resident set size
(it never decreases, so later rows include earlier ones).

    python benchmarks/bench_inference.py --device cpu --config reference --sizes 1024x1024 --batch-size 1 \\
        --iters 10 --threads 2 --skip-compile --skip-bf16 --allocator both
    python benchmarks/bench_inference.py --device cuda --config reference --batch-size 8   # the H100 table
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.arguments import device_type, sizes_type  # noqa: E402
from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor  # noqa: E402
from carseg_hf.configuration_carseg import NAMED_CONFIGS  # noqa: E402
from carseg_hf.cpu_runtime import retain_freed_memory  # noqa: E402
from carseg_hf.device_info import describe_device  # noqa: E402
from carseg_hf.number_ranges import whole_number_type  # noqa: E402
from carseg_hf.predict import BatchPredictor, PredictOptions  # noqa: E402
from carseg_hf.sizes import MIN_INPUT_SIDE  # noqa: E402

#: Named model configurations (reference, slim = the bundled model's width, tiny = the test network).
CONFIGS = NAMED_CONFIGS

#: Modes: (key for --modes, name, dtype, channels_last, fold_batchnorm, compile).
MODES = [
    ("eager-fp32", "eager fp32", "fp32", False, False, "none"),
    ("eager-fp32-cl", "eager fp32 + channels_last", "fp32", True, False, "none"),
    ("eager-fp32-cl-fold", "eager fp32 + channels_last + folded BN", "fp32", True, True, "none"),
    ("eager-bf16", "eager bf16 + channels_last + folded BN", "bf16", True, True, "none"),
    ("compile-fp32", "compile fp32 + channels_last + folded BN", "fp32", True, True, "default"),
    ("compile-bf16", "compile bf16 + channels_last + folded BN", "bf16", True, True, "default"),
    ("max-autotune-bf16", "compile max-autotune bf16 + channels_last + folded BN", "bf16", True, True, "max-autotune"),
]
MODE_KEYS = tuple(mode[0] for mode in MODES)
TABLE_HEADER = (
    "| size | allocator | mode | batch | images/s | s/batch min–max | vs first row | GFLOP/image | TFLOP/s "
    "| peak memory GiB | warm-up s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="reference", choices=tuple(CONFIGS))
    parser.add_argument(
        "--sizes",
        type=sizes_type(MIN_INPUT_SIDE),
        default="1024x1024,1280x1920",
        help=f"comma-separated HEIGHTxWIDTH input sizes, each side >= {MIN_INPUT_SIDE}",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iters", type=int, default=20, help="timed forward passes per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes per mode (compilation happens here)")
    parser.add_argument("--device", type=device_type, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=whole_number_type(1), default=None, help="torch CPU threads")
    parser.add_argument("--skip-compile", action="store_true", help="skip both compiled modes")
    parser.add_argument("--skip-bf16", action="store_true", help="skip bf16 modes (slow on CPUs without bf16 units)")
    parser.add_argument("--skip-max-autotune", action="store_true", help="skip compile max-autotune (slow to build)")
    parser.add_argument(
        "--modes",
        default=None,
        help=f"comma-separated modes, run in table order (default: all but --skip-* ones): {', '.join(MODE_KEYS)}",
    )
    parser.add_argument("--no-flops", action="store_true", help="do not count FLOPs")
    parser.add_argument(
        "--allocator",
        choices=("default", "retain", "both"),
        default="retain",
        help="C allocator: glibc's default, retain freed memory (as carseg does), or both in one run",
    )
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)  # child of --allocator both
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error("--iters and --batch-size must be >= 1 and --warmup >= 0")
    if args.modes is not None:
        args.modes = args.modes.split(",")
        unknown = sorted(set(args.modes) - set(MODE_KEYS))
        if unknown:
            parser.error(f"unknown --modes {', '.join(unknown)}; expected some of {', '.join(MODE_KEYS)}")
    args.selected = selected_modes(args)
    if not args.selected:
        parser.error("no mode left to run: --modes and --skip-compile/--skip-bf16/--skip-max-autotune leave out all")
    return args


def selected_modes(args: argparse.Namespace) -> list[tuple[str, str, str, bool, bool, str]]:
    """The rows of `MODES` that `--modes` and the `--skip-*` options leave, in table order."""
    modes = [m for m in MODES if args.modes is None or m[0] in args.modes]
    modes = [m for m in modes if not (args.skip_compile and m[5] != "none")]
    modes = [m for m in modes if not (args.skip_max_autotune and m[5] == "max-autotune")]
    return [m for m in modes if not (args.skip_bf16 and m[2] == "bf16")]


def baseline_line(args: argparse.Namespace) -> str:
    """The header line that names the baseline of the `vs first row` column and where it was measured."""
    key, label = args.selected[0][:2]
    line = f"# vs first row: images/s over that of {label}"
    if key != MODES[0][0]:
        line += f" (the first mode run; --modes or --skip-* left out {MODES[0][1]})"
    if args.allocator == "both":
        return line + (
            " with the default allocator at the same size, measured in a child process: the retain rows are"
            " compared across two processes"
        )
    return line + f" with the {args.allocator} allocator at the same size, in this process"


def count_gflop(model: CarSegForSemanticSegmentation, height: int, width: int, device: torch.device) -> float:
    """GFLOP of one fp32 forward pass on one image (a multiply-add counts as 2 FLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    pixel_values = torch.randn(1, 3, height, width, device=device)  # (1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(pixel_values=pixel_values)
    return counter.get_total_flops() / 1e9


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory since the last reset (GPU), or the process's peak RSS (CPU), in GiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def time_mode(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    device: torch.device,
    pixel_values: torch.Tensor,
    dtype: str,
    channels_last: bool,
    fold_batchnorm: bool,
    compile_mode: str,
    iters: int,
    warmup: int,
) -> tuple[list[float], float, float]:
    """Seconds of each timed pass, peak memory (GiB) and seconds spent in warm-up (compilation) of one mode."""
    options = PredictOptions(
        batch_size=pixel_values.shape[0],
        dtype=dtype,
        channels_last=channels_last,
        fold_batchnorm=fold_batchnorm,
        compile=compile_mode,
    )
    predictor = BatchPredictor(model, processor, device, options)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(warmup):
        predictor.forward(pixel_values)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    warmup_seconds = time.perf_counter() - start
    seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        predictor.forward(pixel_values)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds, peak_memory_gib(device), warmup_seconds


def run_default_allocator_child(argv: list[str]) -> float:
    """Measure every mode with glibc's default allocator in a child process; print its rows, return its baseline."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--allocator", "default", "--rows-only"]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    for row in rows:
        print(row, flush=True)
    return float(rows[0].split("|")[5])


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or `n/a` where the system has none."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator in ("retain", "both"):
        retain_freed_memory()
    device = args.device
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(CarSegConfig(**CONFIGS[args.config])).eval().to(device)
    processor = CarSegImageProcessor()
    name = describe_device(device)
    if not args.rows_only:
        print(f"# bench_inference  {datetime.datetime.now().isoformat(timespec='seconds')}")
        print(f"# device {device} ({name}), torch {torch.__version__}")
        print(f"# config {args.config} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters)")
        print(f"# command: python benchmarks/bench_inference.py {' '.join(argv)}")
        print(f"# load average at start (1, 5, 15 min): {load_average()}")
        print(baseline_line(args))
        print()
        print(TABLE_HEADER, flush=True)
    modes = args.selected
    allocator = "retain" if args.allocator == "both" else args.allocator
    for height, width in args.sizes:
        baseline = None
        if args.allocator == "both":
            child_argv = [a for a in argv if not a.startswith("--allocator")]
            child_argv = [*child_argv, "--sizes", f"{height}x{width}"]  # the last --sizes wins
            baseline = run_default_allocator_child([a for a in child_argv if a not in ("both",)])
        gflop = float("nan") if args.no_flops else count_gflop(model, height, width, device)
        pixel_values = torch.randn(args.batch_size, 3, height, width, device=device)  # (batch, 3, height, width)
        for _, label, dtype, channels_last, fold, compile_mode in modes:
            seconds, memory, warmup = time_mode(
                model,
                processor,
                device,
                pixel_values,
                dtype,
                channels_last,
                fold,
                compile_mode,
                args.iters,
                args.warmup,
            )
            rate = args.batch_size / statistics.median(seconds)
            baseline = baseline or rate
            print(
                f"| {height}x{width} | {allocator} | {label} | {args.batch_size} | {rate:.2f} | "
                f"{min(seconds):.3f}–{max(seconds):.3f} | {rate / baseline:.2f}x | {gflop:.2f} | "
                f"{gflop * rate / 1e3:.3f} | {memory:.2f} | {warmup:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
