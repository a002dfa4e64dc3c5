"""Command line of the synthetic data generator.

Example:
    python -m training.synthetic --out /data/synth --cars 300 --angles 16 --size 1280x1918 --seed 0 --workers 8

Cars get randomised surroundings (`params.VARIATION`); `--plain` renders the clean studio only, and
`--photo-fraction 0` keeps every car in a studio (no background photographs needed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

from carseg_hf.output_folders import output_folder_problem
from carseg_hf.sizes import height_width_type

from .backgrounds import BackgroundsNotFoundError, list_backgrounds, package_list
from .meshes import MeshesNotFoundError, available_cars
from .params import VARIATION
from .splits import assign_cars, mesh_splits, parse_split_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Render Carvana-like studio photos of the TORCS car meshes with pixel-exact masks.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (Carvana layout)")
    parser.add_argument("--cars", type=int, default=12, help="number of cars (default 12)")
    parser.add_argument("--angles", type=int, default=16, help="views per car, evenly around the turntable (16)")
    parser.add_argument(
        "--size",
        type=height_width_type(minimum=16),
        default="1280x1918",
        help="frame HEIGHTxWIDTH, each at least 16 (default 1280x1918, Carvana's)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed; car ids and all choices derive from it")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes (default 1)")
    parser.add_argument(
        "--split-by-mesh",
        nargs="+",
        metavar="SPLIT=MESHES",
        help="held-out meshes, e.g. val=acura-nsx-sz,car4-trb1 test=155-DTM,car7-trb1 (default: "
        "val=acura-nsx-sz,car4-trb1,car1-stock2 test=155-DTM,car7-trb1,buggy); all others are for training",
    )
    parser.add_argument("--meshes", help="comma-separated meshes to use (default: all 17)")
    parser.add_argument(
        "--torcs-dir", type=Path, help="unpacked torcs-data (default $CARSEG_TORCS_DIR or ~/.cache/carseg/torcs)"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="the clean studio only: no decorated backdrops, floor marks, reflections, cast shadows, photographs, "
        "free camera poses or image effects",
    )
    parser.add_argument(
        "--photo-fraction",
        type=float,
        default=VARIATION["photo_background"],
        help="share of cars in front of a background photograph instead of the studio (default "
        f"{VARIATION['photo_background']}; needs `python -m training.synthetic.backgrounds`)",
    )
    parser.add_argument(
        "--backgrounds-dir",
        type=Path,
        help="unpacked background packages (default $CARSEG_BACKGROUNDS_DIR or ~/.cache/carseg/backgrounds)",
    )
    parser.add_argument(
        "--background-packages",
        type=package_list,
        help="comma-separated Debian packages whose photographs to use (default: all of the allow-list's)",
    )
    parser.add_argument("--overwrite", action="store_true", help="allow writing into a folder that holds a data set")
    return parser


def _variation(args: argparse.Namespace) -> dict[str, float]:
    """The randomisation probabilities from the flags; checks that the backgrounds are there when needed.

    Raises:
        ValueError: If `--photo-fraction` is outside 0..1 or `--background-packages` names an unknown package.
        BackgroundsNotFoundError: If photographs are asked for and not unpacked (the message says how to get them).
    """
    if not 0.0 <= args.photo_fraction <= 1.0:
        raise ValueError(f"--photo-fraction must be within 0..1, got {args.photo_fraction}")
    variation = {name: 0.0 for name in VARIATION} if args.plain else dict(VARIATION)
    variation["photo_background"] = 0.0 if args.plain else args.photo_fraction
    if variation["photo_background"] > 0:
        list_backgrounds("all", root=args.backgrounds_dir, packages=args.background_packages)
    return variation


def _init_worker(threads: int) -> None:
    """Limit Mesa llvmpipe's threads per process so that workers share the CPU cores instead of fighting."""
    os.environ["LP_NUM_THREADS"] = str(threads)


def _meshes_and_variation(args: argparse.Namespace) -> tuple[dict, dict[str, float]]:
    """Check the flags and choose the meshes of each split and the randomisation probabilities.

    Raises:
        ValueError: For a count below 1, an unknown mesh or a bad `--photo-fraction` or `--split-by-mesh`.
        MeshesNotFoundError: If the meshes are not unpacked (the message says how to get them).
        BackgroundsNotFoundError: If photographs are asked for and not unpacked.
    """
    if args.cars < 1 or args.angles < 1 or args.workers < 1:
        raise ValueError("--cars, --angles and --workers must be at least 1")
    available = available_cars(args.torcs_dir)
    if args.meshes:
        wanted = [m.strip() for m in args.meshes.split(",") if m.strip()]
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise ValueError(f"--meshes names unknown meshes {missing}; available: {available}")
        available = wanted
    variation = _variation(args)
    held_out = parse_split_args(args.split_by_mesh)
    named = {mesh for meshes in held_out.values() for mesh in meshes} if args.split_by_mesh else set()
    if unknown := sorted(named - set(available_cars(args.torcs_dir))):  # a typo would move a mesh into training
        raise ValueError(
            f"--split-by-mesh names unknown meshes {unknown}; available: {available_cars(args.torcs_dir)}"
        )
    held_out = {k: tuple(m for m in v if m in available) for k, v in held_out.items()}  # those of --meshes
    return mesh_splits(available, held_out), variation


def _jobs(args: argparse.Namespace, meshes: dict, variation: dict[str, float]) -> list[dict]:
    """One rendering job per car (see `dataset.render_car`), the cars assigned to meshes and splits by the seed."""
    height, width = args.size
    return [
        {
            "index": i,
            "seed": args.seed,
            "split": split,
            "mesh": mesh,
            "num_angles": args.angles,
            "width": width,
            "height": height,
            "out": str(args.out),
            "torcs_root": str(args.torcs_dir) if args.torcs_dir else None,
            "variation": variation,
            "backgrounds_root": str(args.backgrounds_dir) if args.backgrounds_dir else None,
            "background_packages": args.background_packages,
        }
        for i, (split, mesh) in enumerate(assign_cars(args.cars, meshes, args.seed))
    ]


def _render_all(jobs: list[dict], workers: int) -> list[dict]:
    """Render the jobs in `workers` spawned processes, printing a line per finished car; returns all records."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    records: list[dict] = []
    context = multiprocessing.get_context("spawn")  # a fresh EGL context per process
    with context.Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
        for done, car_records in enumerate(pool.imap_unordered(_render_job, jobs), start=1):
            records.extend(car_records)
            print(
                f"[{done}/{len(jobs)}] {car_records[0]['car_id']} {car_records[0]['mesh']} "
                f"({car_records[0]['split']})",
                flush=True,
            )
    return records


#: The files of a rendered data set, as globs under its folder: what `--overwrite` deletes before rendering anew.
DATA_SET_FILES = ("train/*.jpg", "train_masks/*_mask.gif", "train_masks.csv", "metadata.jsonl", "splits.json")


def clear_earlier_data_set(out: Path) -> int:
    """Delete the renders, masks and index files of the data set in `out`; return how many files were deleted.

    Without this, a smaller rerun with `--overwrite` would leave the earlier run's extra images and masks beside the
    new ones, and a Carvana-layout loader would train on them although the new index files do not list them. Other
    files in `out` are left alone.
    """
    files = [path for pattern in DATA_SET_FILES for path in out.glob(pattern) if path.is_file()]
    for path in files:
        path.unlink()
    return len(files)


def main(argv: list[str] | None = None) -> int:
    """Render the data set; returns the exit status (0 on success, 2 on bad arguments or missing meshes)."""
    args = build_parser().parse_args(argv)
    try:
        height, width = args.size
        meshes, variation = _meshes_and_variation(args)
    except (ValueError, MeshesNotFoundError, BackgroundsNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out: Path = args.out
    if (problem := output_folder_problem(out, "--out")) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    earlier = (out / "train_masks.csv").exists() or any((out / "train").glob("*.jpg"))
    if earlier and not args.overwrite:  # a finished data set, or the images of an interrupted run
        print(
            f"error: {out} already holds a data set (train_masks.csv or train/ images, perhaps of an interrupted "
            "run); pass --overwrite or choose another --out",
            file=sys.stderr,
        )
        return 2
    if earlier:
        removed = clear_earlier_data_set(out)
        print(f"--overwrite: deleted the {removed} files of the data set that {out} held")
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "train_masks").mkdir(parents=True, exist_ok=True)

    jobs = _jobs(args, meshes, variation)
    workers = min(args.workers, len(jobs))
    start = time.perf_counter()
    records = _render_all(jobs, workers)
    from .dataset import write_index_files

    write_index_files(out, records)
    seconds = time.perf_counter() - start
    print(
        f"wrote {len(records)} images of {len(jobs)} cars at {height}x{width} to {out} in {seconds:.1f} s "
        f"({seconds / len(records):.3f} s per image wall, {workers} workers)"
    )
    return 0


def _render_job(job: dict) -> list[dict]:
    from .dataset import render_car

    return render_car(job)
