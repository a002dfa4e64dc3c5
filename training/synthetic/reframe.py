"""Reframe: crop photos and composites to portrait, square and wide frames around the car.

People photograph cars in portrait, square and wide frames, where the car often fills the frame or runs out of it;
the Carvana photos and the composites are all 3:2 landscapes with room around the car. This tool crops each photo
of a Carvana-layout folder to other aspect ratios: the largest window of the drawn shape (the full height, or the
full width for wide frames), centred on the car's bounding box with a random shift, and kept inside the photo; a car
wider than a portrait window is cut, as in a real portrait photo. Masks are cropped with the photos, so labels stay
exact. A processor that keeps the aspect ratio then trains on these frames as it segments them (see
`docs/training.md`).

    python -m training.synthetic.reframe --cars-dir data --out data --per-image 1 --seed 20

writes `train/<car_id>r<k>_<NN>.jpg` and `train_masks/<car_id>r<k>_<NN>_mask.gif` (k = 0 .. per-image - 1) and
gives the new ids their source cars' splits in `out/splits.json` (`split_file.plan_splits`).
`benchmarks/bench_aspect.py` uses the same crop, unshifted.

`--close-up LOW,HIGH` crops close-ups instead: windows of every shape, 3:2 included, that the car's box is LOW to
HIGH times wider than (1 <= LOW <= HIGH <= 10), centred on a random point of the middle half of the car's box, and
holding 30% to 92% car where 20 draws allow; a photo whose narrowest window would be under 32 pixels is refused.
They are written as `<car_id>z<k>_<NN>`. The close-up validation sets of `docs/zoom.md` are

    python -m training.synthetic.reframe --cars-dir CARVANA --out valclose --cars ID1,ID2,ID3 --close-up 1.2,2.5 \
        --seed 31
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from carseg_hf.number_ranges import number_range_type, whole_number_type
from carseg_hf.output_folders import output_folder_problem

from .carvana_pairs import (
    SourcePhoto,
    find_source_photos,
    parse_car_ids,
    read_source_pair,
    report_interrupt,
    write_pair,
)
from .split_file import plan_splits, write_splits

#: Frame shapes: (name, with width:height as photographers write it; height / width).
ASPECTS = (("3:2 landscape", 2 / 3), ("4:3 landscape", 3 / 4), ("1:1 square", 1.0), ("3:4 portrait", 4 / 3))
ASPECTS += (("9:16 portrait", 16 / 9), ("16:9 wide", 9 / 16))
#: The frames drawn by default: every shape but Carvana's own 3:2.
REFRAME_ASPECTS = tuple(name for name, _ in ASPECTS if name != "3:2 landscape")


def crop_to_aspect(
    image: np.ndarray, mask: np.ndarray, ratio: float, shift: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """The largest `height / width == ratio` window of the photo, centred on the car's box and kept inside.

    Args:
        image: `(height, width, 3)` uint8 photo.
        mask: `(height, width)` 0/1 mask of the car (at least one car pixel).
        ratio: Height over width of the window.
        shift: `(rows, cols)` moves of the window's centre from the car box's centre, as fractions of the window's
            height and width (0 keeps it centred).

    Returns:
        The cropped image and mask.

    Raises:
        ValueError: If the mask marks no car pixel.
    """
    _check_has_car(mask)
    height, width = mask.shape
    crop_height, crop_width = (
        (height, round(height / ratio)) if height / ratio <= width else (round(width * ratio), width)
    )
    rows, cols = np.nonzero(mask)
    centre_row = (rows.min() + rows.max()) // 2 + round(shift[0] * crop_height)
    centre_col = (cols.min() + cols.max()) // 2 + round(shift[1] * crop_width)
    top, left = centre_row - crop_height // 2, centre_col - crop_width // 2
    return _window_inside(image, mask, top, left, crop_height, crop_width)


def crop_close_up(
    image: np.ndarray, mask: np.ndarray, ratio: float, factor: float, anchor: tuple[float, float] = (0.5, 0.5)
) -> tuple[np.ndarray, np.ndarray]:
    """A `height / width == ratio` window narrower than the car, as in a close-up that the car runs out of.

    The window is `factor` times narrower than the car's bounding box (shrunk further, keeping its ratio, where it
    would not fit in the photo). Its centre is the point `anchor` of the car box, and it is kept inside the photo.

    Args:
        image: `(height, width, 3)` uint8 photo.
        mask: `(height, width)` 0/1 mask of the car (at least one car pixel).
        ratio: Height over width of the window.
        factor: The car box's width over the window's width (above 1 cuts the car at the sides).
        anchor: `(row, col)` of the window's centre as fractions of the car box's height and width.

    Returns:
        The cropped image and mask.

    Raises:
        ValueError: If the mask marks no car pixel or `factor` is not positive.
    """
    _check_has_car(mask)
    if factor <= 0:
        raise ValueError(f"the close-up factor must be positive, got {factor}")
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    crop_width = max(1.0, (cols.max() - cols.min() + 1) / factor)
    crop_width = min(crop_width, width, height / ratio)
    crop_height, crop_width = max(1, round(crop_width * ratio)), max(1, round(crop_width))
    centre_row = rows.min() + anchor[0] * (rows.max() - rows.min())
    centre_col = cols.min() + anchor[1] * (cols.max() - cols.min())
    top, left = round(centre_row - crop_height / 2), round(centre_col - crop_width / 2)
    return _window_inside(image, mask, top, left, crop_height, crop_width)


def _check_has_car(mask: np.ndarray) -> None:
    """Raise `ValueError` if the mask marks no car pixel (a frame cannot be placed around no car)."""
    if not mask.any():
        raise ValueError("the mask marks no car pixel; cannot centre a frame on the car")


def _window_inside(
    image: np.ndarray, mask: np.ndarray, top: int, left: int, crop_height: int, crop_width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The `crop_height` x `crop_width` window of image and mask at `(top, left)`, moved inside the photo."""
    height, width = mask.shape
    top = int(np.clip(top, 0, height - crop_height))
    left = int(np.clip(left, 0, width - crop_width))
    window = (slice(top, top + crop_height), slice(left, left + crop_width))
    return image[window], mask[window]


#: Close-ups: the window's centre is drawn in this range of the car box's height and width (as fractions).
CLOSE_UP_ANCHORS = (0.25, 0.75)
#: Close-ups: windows are drawn again (up to `CLOSE_UP_DRAWS` times) until they hold this share of car.
CLOSE_UP_CAR_SHARE = (0.3, 0.92)
CLOSE_UP_DRAWS = 20
#: Close-ups: the range of the car box's width over the window's width that `--close-up` accepts.
CLOSE_UP_FACTORS = (1.0, 10.0)
#: Close-ups: the shortest side of a window, in pixels; a photo whose windows could be smaller is refused.
CLOSE_UP_MIN_SIDE = 32


def draw_close_up(
    image: np.ndarray, mask: np.ndarray, ratio: float, factors: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random close-up (`crop_close_up`): the last of up to `CLOSE_UP_DRAWS` windows, the first with enough car.

    Args:
        image: `(height, width, 3)` uint8 photo.
        mask: `(height, width)` 0/1 mask of the car.
        ratio: Height over width of the window.
        factors: `(low, high)` range of the car box's width over the window's width.
        rng: The draws' generator.

    Returns:
        The cropped image and mask.
    """
    for _ in range(CLOSE_UP_DRAWS):
        factor = float(rng.uniform(*factors))
        anchor = tuple(float(v) for v in rng.uniform(*CLOSE_UP_ANCHORS, size=2))
        frame, label = crop_close_up(image, mask, ratio, factor, anchor)
        if CLOSE_UP_CAR_SHARE[0] <= label.mean() <= CLOSE_UP_CAR_SHARE[1]:
            break
    return frame, label


def check_close_up_range(factors: tuple[float, float]) -> tuple[float, float]:
    """Return `(low, high)` if `1 <= low <= high <= 10` (`CLOSE_UP_FACTORS`): a close-up cuts the car at the sides.

    Raises:
        ValueError: Otherwise (NaN and infinity included), quoting the range.
    """
    low, high = factors
    least, most = CLOSE_UP_FACTORS
    if not least <= low <= high <= most:
        raise ValueError(
            f"the close-up range must satisfy {least:g} <= low <= high <= {most:g} (the car box's width over the "
            f"window's), got {factors}"
        )
    return float(low), float(high)


def check_close_up_size(
    source: SourcePhoto, image: np.ndarray, mask: np.ndarray, ratios: Sequence[float], high: float
) -> None:
    """Raise `ValueError`, naming the photo, if a close-up window of it could be under `CLOSE_UP_MIN_SIDE` pixels.

    The smallest windows are those of the largest factor, `high`; a window's size does not depend on its anchor.
    """
    for ratio in ratios:
        frame, _ = crop_close_up(image, mask, ratio, high)
        if min(frame.shape[:2]) < CLOSE_UP_MIN_SIDE:
            height, width = frame.shape[:2]
            raise ValueError(
                f"{source.photo}: its close-ups at a factor of up to {high:g} (windows {high:g} times narrower than "
                f"the car) could be as small as {width}x{height} pixels, under the {CLOSE_UP_MIN_SIDE}-pixel minimum; "
                "lower the close-up range's HIGH, or leave this car out"
            )


#: An argparse `type=` for `--close-up LOW,HIGH`, e.g. `"1.2,2.5"`.
close_up_range = number_range_type(check_close_up_range, example="1.2,2.5")


def reframe_folder(
    cars_dir: Path,
    car_ids: Sequence[str],
    out: Path,
    per_image: int = 1,
    seed: int = 0,
    aspects: Sequence[str] = REFRAME_ASPECTS,
    max_shift: float = 0.15,
    quality: int = 95,
    close_up: tuple[float, float] | None = None,
) -> int:
    """Write `per_image` reframed copies of every photo of `car_ids` in `cars_dir` to `out` (Carvana layout).

    Args:
        cars_dir: Carvana-layout folder with `train/<car_id>_<NN>.jpg` and `train_masks/<car_id>_<NN>_mask.gif`.
        car_ids: The cars to reframe (exact ids, the part before `_<NN>`).
        out: Output folder; may be `cars_dir` itself.
        per_image: Frames per photo, each of a shape drawn from `aspects`.
        seed: Seed of the shape and shift draws.
        aspects: Names from `ASPECTS` to draw from.
        max_shift: Largest shift of the window's centre, as a fraction of its height and width.
        quality: JPEG quality of the written frames.
        close_up: `(low, high)`: write close-ups (`draw_close_up`, car box `low` to `high` times wider than the
            window) named `<car_id>z<k>_<NN>`, of every shape in `ASPECTS` unless `aspects` is given; None reframes.

    Every source pair and `out/splits.json` (and `cars_dir/splits.json`) are checked before anything is written;
    then `splits.json` is written, with the new ids, before the images, so that an interrupted run leaves fewer
    images, never images without a split. Each new id takes the split of the car it shows (`split_file.plan_splits`):
    its split in `out`, else in `cars_dir/splits.json`, else "train".

    Returns:
        The number of frames written.

    Raises:
        FileNotFoundError: If a car has no photo, or a photo no mask.
        ValueError: If an aspect name is unknown, the close-up range is out of bounds (`check_close_up_range`), a
            car id is given twice, a photo or mask is unreadable, of another size than its pair or without car, a
            close-up would be too small (`check_close_up_size`), a `splits.json` is malformed, or a car's images
            would fall on several sides of `out`'s split, naming the files and cars.
    """
    ratios = dict(ASPECTS)
    if close_up is not None and aspects is REFRAME_ASPECTS:
        aspects = tuple(ratios)
    unknown = sorted(set(aspects) - set(ratios))
    if unknown:
        raise ValueError(f"unknown aspect(s) {unknown}; expected some of {list(ratios)}")
    if close_up is not None:
        close_up = check_close_up_range(close_up)
    sources = find_source_photos(cars_dir, car_ids)
    for source in sources:  # every pair checked before anything is written
        image, mask = read_source_pair(source)
        if close_up is not None:
            check_close_up_size(source, image, mask, [ratios[name] for name in aspects], close_up[1])
    tag = "r" if close_up is None else "z"
    made_from = {f"{car}{tag}{k}": car for car in car_ids for k in range(per_image)}
    splits = plan_splits(out, made_from, cars_dir=cars_dir)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "train_masks").mkdir(parents=True, exist_ok=True)
    write_splits(out, splits)
    rng = np.random.default_rng(seed)
    written = 0
    for source in sources:
        image, mask = read_source_pair(source)
        for k in range(per_image):
            name = aspects[int(rng.integers(len(aspects)))]
            if close_up is None:
                shift = tuple(float(v) for v in rng.uniform(-max_shift, max_shift, size=2))
                frame, label = crop_to_aspect(image, mask, ratios[name], shift)
            else:
                frame, label = draw_close_up(image, mask, ratios[name], close_up, rng)
            write_pair(out, f"{source.car}{tag}{k}_{source.angle}", frame, label, quality)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: reframe the photos of the sample's training cars (or of `--cars`)."""
    from training.carvana_sample import TRAIN_CARS

    parser = argparse.ArgumentParser(prog="python -m training.synthetic.reframe", description=__doc__.split("\n")[0])
    parser.add_argument("--cars-dir", type=Path, required=True, help="Carvana-layout folder of photos and masks")
    parser.add_argument("--out", type=Path, required=True, help="output folder (Carvana layout; may be --cars-dir)")
    parser.add_argument("--cars", help="comma-separated car ids (default: the sample's 9 training cars)")
    parser.add_argument("--per-image", type=whole_number_type(1), default=1, help="frames per photo (default 1)")
    parser.add_argument("--max-shift", type=float, default=0.15, help="largest shift off the car's centre (0.15)")
    parser.add_argument(
        "--close-up",
        type=close_up_range,
        help="LOW,HIGH: crop close-ups instead, the car box LOW to HIGH times wider than the window (e.g. 1.2,2.5)",
    )
    parser.add_argument("--seed", type=whole_number_type(0), default=0, help="seed of every random choice (default 0)")
    args = parser.parse_args(argv)
    if not (args.cars_dir / "train").is_dir():
        parser.error(f"--cars-dir {args.cars_dir}: no train/ folder; expected the Kaggle Carvana layout")
    if not 0.0 <= args.max_shift <= 0.5:
        parser.error(f"--max-shift must lie in [0, 0.5], got {args.max_shift}")
    if (problem := output_folder_problem(args.out, "--out")) is not None:
        parser.error(problem)
    try:
        cars = parse_car_ids(args.cars, TRAIN_CARS)
        count = reframe_folder(
            args.cars_dir, cars, args.out, args.per_image, args.seed, max_shift=args.max_shift, close_up=args.close_up
        )
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        return report_interrupt(args.out, "frames")
    print(f"wrote {count} {'close-ups' if args.close_up else 'reframed photos'} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
