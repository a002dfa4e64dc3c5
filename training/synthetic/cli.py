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
import shutil
import sys
import time
from pathlib import Path

from carseg_hf.number_ranges import whole_number_type
from carseg_hf.output_folders import output_folder_problem
from carseg_hf.sizes import height_width_type

from .ac3d import AC3DParseError
from .backgrounds import BackgroundsNotFoundError, list_backgrounds, package_list
from .car_xml import CarXMLError
from .meshes import MeshesNotFoundError, available_cars
from .params import VARIATION
from .render_folder import STAGING, earlier_render_files, start_staging, swap_in
from .splits import assign_cars, mesh_splits, parse_split_args

#: Errors of bad input files that a worker may raise while rendering: reported as usage errors (exit 2).
RENDER_ERRORS = (AC3DParseError, CarXMLError, MeshesNotFoundError, BackgroundsNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Render Carvana-like studio photos of the TORCS car meshes with pixel-exact masks.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (Carvana layout)")
    parser.add_argument("--cars", type=whole_number_type(1), default=12, help="number of cars (default 12)")
    parser.add_argument(
        "--angles", type=whole_number_type(1), default=16, help="views per car, evenly around the turntable (16)"
    )
    parser.add_argument(
        "--size",
        type=height_width_type(minimum=16),
        default="1280x1918",
        help="frame HEIGHTxWIDTH, each at least 16 (default 1280x1918, Carvana's)",
    )
    parser.add_argument(
        "--seed",
        type=whole_number_type(0),  # numpy's seeding refuses negative numbers
        default=0,
        help="random seed, at least 0; car ids and all choices derive from it",
    )
    parser.add_argument("--workers", type=whole_number_type(1), default=1, help="rendering processes (default 1)")
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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the data set of an earlier render in --out (its images, masks and index files)",
    )
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
        ValueError: For an unknown mesh or a bad `--photo-fraction` or `--split-by-mesh`.
        MeshesNotFoundError: If the meshes are not unpacked (the message says how to get them).
        BackgroundsNotFoundError: If photographs are asked for and not unpacked.
    """
    available = available_cars(args.torcs_dir)
    if args.meshes is not None:
        wanted = [m.strip() for m in args.meshes.split(",") if m.strip()]
        if not wanted:
            raise ValueError(f"--meshes {args.meshes!r} names no mesh; expected e.g. --meshes p406,car4-trb1")
        if repeated := sorted({m for m in wanted if wanted.count(m) > 1}):
            raise ValueError(f"--meshes names {', '.join(repeated)} twice; name each mesh once")
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
    """One rendering job per car (see `dataset.render_car`), the cars assigned to meshes and splits by the seed.

    The jobs write into the staging folder (`render_folder.STAGING`); `main` moves the images into `--out` at the end.

    Raises:
        ValueError: If no split has a mesh.
    """
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
            "out": str(args.out / STAGING),
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


def _plan_render(args: argparse.Namespace) -> tuple[list[dict], list[Path]]:
    """Everything that can fail before rendering: the flags, the meshes, the output folder and what it holds.

    Returns:
        The rendering jobs, and the files of an earlier render in `--out` (`render_folder.earlier_render_files`).

    Raises:
        ValueError: For a bad flag or output folder, or an `--out` that holds other images than an earlier render's.
        MeshesNotFoundError: If the meshes are not unpacked.
        BackgroundsNotFoundError: If photographs are asked for and not unpacked.
    """
    meshes, variation = _meshes_and_variation(args)
    jobs = _jobs(args, meshes, variation)
    if (problem := output_folder_problem(args.out, "--out")) is not None:
        raise ValueError(problem)
    earlier = earlier_render_files(args.out)
    if earlier and not args.overwrite:
        raise ValueError(
            f"{args.out} already holds a rendered data set ({len(earlier)} files: images, masks and index files); "
            "pass --overwrite to replace it, or choose another --out"
        )
    return jobs, earlier


def main(argv: list[str] | None = None) -> int:
    """Render the data set; returns the exit status (0 on success, 2 on bad arguments, meshes or output folder).

    Every check runs before anything is written. The cars and their index files are rendered into a staging folder
    inside `--out`, and only a complete render replaces the files of an earlier one there, so a run that fails or is
    interrupted while rendering changes nothing. One interrupted while the files move in leaves a folder that a rerun
    with `--overwrite` replaces (`render_folder.swap_in`).
    """
    args = build_parser().parse_args(argv)
    try:
        jobs, earlier = _plan_render(args)
    except (ValueError, MeshesNotFoundError, BackgroundsNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from .dataset import write_index_files

    out: Path = args.out
    workers = min(args.workers, len(jobs))
    start = time.perf_counter()
    staging = start_staging(out)
    try:
        records = _render_all(jobs, workers)
        write_index_files(staging, records)
        swap_in(staging, out, earlier)
    except RENDER_ERRORS as error:
        print(f"error: {error} (nothing was written to {out})", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if earlier:
        print(f"--overwrite: deleted the {len(earlier)} files of the earlier render in {out}")
    height, width = args.size
    seconds = time.perf_counter() - start
    print(
        f"wrote {len(records)} images of {len(jobs)} cars at {height}x{width} to {out} in {seconds:.1f} s "
        f"({seconds / len(records):.3f} s per image wall, {workers} workers)"
    )
    return 0


def _render_job(job: dict) -> list[dict]:
    from .dataset import render_car

    return render_car(job)
