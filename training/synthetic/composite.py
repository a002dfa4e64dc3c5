"""Copy-paste composites: real cars cut out with their masks and pasted onto photographic backgrounds.

This is "Simple Copy-Paste" (Ghiasi et al., 2021): the mask stays exact and the car keeps its real appearance, while
the surroundings change. Each composite gets a soft contact shadow under the tyres and, often, a cast shadow of the
car's silhouette on the ground; shadows darken the background only and are never part of the mask. With
`--distractors N`, up to N other objects (Tux Paint's stamps, `distractors`) are pasted into the scene behind the car,
as background. With `--background-blur P`, a fraction P of the scenes is defocused or streaked sideways behind the
sharp car, as in a wide-aperture or panning shot (`background_blur`). The car's width is drawn from `--car-width`
(default 0.35 to 0.95 of the frame's); a lower bound such as 0.12 adds street-style shots with the car small in the
scene. The camera and image are then randomised: exposure, white balance, blur, noise and JPEG quality.

Each split of cars draws the backgrounds of the same split: composites of training cars use training backgrounds
only; validation composites (`split="validation"`) paste the validation cars onto validation backgrounds, so that
model selection sees cars and backgrounds the network never saw without touching the held-out ones; held-out
composites (`split="held_out"`) use held-out backgrounds, for the final figures. `--backgrounds` overrides the
choice, e.g. validation cars on training backgrounds.

Example:
    python -m training.synthetic.composite --cars-dir path/to/carvana --out /data/composites \
        --per-image 2 --size 640x960 --seed 0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from carseg_hf.number_ranges import number_range_type

from .background_blur import BackgroundBlur, blur_background, sample_background_blur
from .background_sources import KINDS, SOURCE_SPLITS
from .backgrounds import random_background, require_backgrounds
from .carvana_pairs import (
    SourcePhoto,
    find_source_photos,
    read_source_pair,
    write_pair,
)
from .distractors import load_stamps, paste_distractors
from .ground_shadows import cast_shadow, contact_shadow, darken
from .split_file import plan_splits, write_splits

#: Per split: the car-id tag of its composites (distinct, so all can share one folder) and its `splits.json` mark.
SPLITS = {"train": ("c", "train"), "validation": ("v", "val"), "held_out": ("h", "test")}

#: Default range of the pasted car's width, as fractions of the frame width (`--car-width`).
CAR_WIDTH_RANGE = (0.35, 0.95)
#: The most stamps pasted into one composite (`--distractors`); each covers 8% to 45% of the frame's height.
MAX_DISTRACTORS = 20
#: The largest height and width of a composite (`--size`); Carvana's photos are 1280x1918.
MAX_SIDE = 4096


def check_car_width_range(car_width: tuple[float, float]) -> tuple[float, float]:
    """Return `(low, high)` if `0 < low <= high <= 1`.

    Raises:
        ValueError: Otherwise, quoting the range.
    """
    low, high = car_width
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(
            f"the car width range must satisfy 0 < low <= high <= 1 (fractions of the frame width), got {car_width}"
        )
    return float(low), float(high)


#: An argparse `type=` for `--car-width LOW,HIGH`, e.g. `"0.12,0.95"`.
car_width_range = number_range_type(check_car_width_range, example="0.12,0.95")


@dataclass(frozen=True)
class CompositeParams:
    """Random choices of one composite.

    Attributes:
        car_width: Width of the pasted car as a fraction of the frame width.
        center_x: Horizontal centre of the car, as a fraction of the frame width (may leave the car partly outside).
        bottom_y: Bottom edge of the car (its tyres), as a fraction of the frame height.
        contact_strength: How much the contact shadow darkens the ground, in [0, 1].
        cast_strength: How much the cast shadow darkens the ground, in [0, 1]; 0 for none.
        cast_offset: Horizontal shift of the cast shadow as a fraction of the car width (the sun's side).
        cast_blur: Blur radius of the cast shadow in pixels, from hard to soft.
        car_gain: Per-channel gain of the car, to match the scene's light.
        exposure: Global brightness factor.
        white_balance: Per-channel gains of the whole frame.
        blur: Gaussian blur radius of the whole frame in pixels (0 for none).
        noise: Standard deviation of additive Gaussian noise, in grey levels.
        jpeg_quality: Quality of the saved JPEG.
    """

    car_width: float
    center_x: float
    bottom_y: float
    contact_strength: float
    cast_strength: float
    cast_offset: float
    cast_blur: float
    car_gain: tuple[float, float, float]
    exposure: float
    white_balance: tuple[float, float, float]
    blur: float
    noise: float
    jpeg_quality: int


def sample_params(rng: np.random.Generator, car_width: tuple[float, float] = CAR_WIDTH_RANGE) -> CompositeParams:
    """Draw the random choices of one composite, the car's width uniformly from `car_width`."""
    has_cast = rng.random() < 0.6
    return CompositeParams(
        car_width=float(rng.uniform(*car_width)),
        center_x=float(rng.uniform(0.3, 0.7)),
        bottom_y=float(rng.uniform(0.6, 0.97)),
        contact_strength=float(rng.uniform(0.35, 0.75)),
        cast_strength=float(rng.uniform(0.2, 0.55)) if has_cast else 0.0,
        cast_offset=float(rng.uniform(-0.35, 0.35)),
        cast_blur=float(rng.choice([1.0, 3.0, 8.0, 16.0])),
        car_gain=tuple(float(g) for g in rng.uniform(0.8, 1.12, size=3) * rng.uniform(0.75, 1.1)),
        exposure=float(rng.uniform(0.8, 1.2)),
        white_balance=tuple(float(g) for g in rng.uniform(0.92, 1.08, size=3)),
        blur=float(rng.choice([0.0, 0.0, 0.6, 1.2])),
        noise=float(rng.choice([0.0, 2.0, 4.0, 7.0])),
        jpeg_quality=int(rng.integers(60, 96)),
    )


def _car_cutout(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop an image and its 0/1 mask to the mask's bounding box.

    Raises:
        ValueError: If the mask is empty.
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("the car mask is empty; nothing to paste")
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return image[top:bottom, left:right], mask[top:bottom, left:right]


def compose(
    image: np.ndarray,
    mask: np.ndarray,
    background: np.ndarray,
    params: CompositeParams,
    rng: np.random.Generator,
    distractors: Sequence[np.ndarray] = (),
    background_blur: BackgroundBlur | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste one car onto a background.

    Args:
        image: The car photo, `(height, width, 3)` uint8 RGB.
        mask: Its 0/1 mask, `(height, width)` uint8.
        background: The scene, `(frame_height, frame_width, 3)` uint8 RGB; sets the output size.
        params: The random choices.
        rng: Source of the noise and of the distractors' placement.
        distractors: RGBA objects, `(h, w, 4)` uint8 each, pasted into the scene before the car (background).
        background_blur: A blur of the scene (with its distractors) behind the sharp car, or None.

    Returns:
        `(composite, mask)`: a `(frame_height, frame_width, 3)` uint8 image and its exact 0/1 mask (before JPEG).
    """
    frame_height, frame_width = background.shape[:2]
    car, car_mask = _car_cutout(image, mask)
    width = max(int(params.car_width * frame_width), 8)
    height = max(int(car.shape[0] * width / car.shape[1]), 4)
    left = int(params.center_x * frame_width - width / 2)
    top = int(params.bottom_y * frame_height) - height
    box = (left, top, left + width, top + height)

    car_image = Image.fromarray(car).resize((width, height), Image.LANCZOS)
    label = np.asarray(Image.fromarray(car_mask * 255).resize((width, height), Image.BILINEAR)) >= 128
    alpha = Image.fromarray(label.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(0.6))

    frame = background.astype(np.float32)
    if distractors:
        frame = paste_distractors(frame, list(distractors), rng)
    frame = blur_background(frame, background_blur)  # (frame_height, frame_width, 3) float32
    frame = darken(frame, contact_shadow(frame_height, frame_width, box), params.contact_strength)
    if params.cast_strength > 0:
        cast = cast_shadow(car_mask, (frame_height, frame_width), box, params.cast_offset, params.cast_blur)
        frame = darken(frame, cast, params.cast_strength)
    car_layer = np.asarray(car_image, dtype=np.float32) * np.asarray(params.car_gain, dtype=np.float32)
    canvas = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
    canvas.paste(Image.fromarray(np.clip(car_layer, 0, 255).astype(np.uint8)), (left, top), alpha)
    full_label = Image.new("L", (frame_width, frame_height), 0)
    full_label.paste(Image.fromarray(label.astype(np.uint8)), (left, top))

    out = np.asarray(canvas, dtype=np.float32) * params.exposure * np.asarray(params.white_balance, dtype=np.float32)
    if params.blur > 0:
        out = np.asarray(
            Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(params.blur)),
            dtype=np.float32,
        )
    if params.noise > 0:
        out = out + rng.normal(0.0, params.noise, size=out.shape)
    return np.clip(out, 0, 255).astype(np.uint8), np.asarray(full_label, dtype=np.uint8)


def write_composites(
    cars_dir: Path,
    car_ids: list[str],
    out: Path,
    per_image: int,
    size: tuple[int, int],
    seed: int,
    split: str,
    backgrounds_root: Path | None = None,
    distractors: int = 0,
    backgrounds: str | None = None,
    background_packages: tuple[str, ...] | None = None,
    background_blur: float = 0.0,
    car_width: tuple[float, float] = CAR_WIDTH_RANGE,
) -> int:
    """Write composites of the given cars in the Carvana layout, with a `splits.json`.

    Each composite gets the car id `<source car id>c<k>` (`v<k>` for validation, `h<k>` when held out), so that a
    split by car keeps the sources apart, and the source photo's angle. `split="train"` draws training backgrounds
    of every kind and marks the cars "train"; `split="validation"` draws validation outdoor backgrounds and marks
    them "val"; `split="held_out"` draws held-out outdoor backgrounds and marks them "test", so that
    `carseg_hf.data.load_carvana` puts them in `heldout`.

    Args:
        cars_dir: A Carvana-layout folder with the real photos and masks.
        car_ids: The source cars (all 16 angles of each are used).
        out: The output folder; files are added to what is there and `splits.json` is merged.
        per_image: Composites per source photo.
        size: `(height, width)` of the composites.
        seed: Seed of every random choice.
        split: `"train"`, `"validation"` or `"held_out"` (see `SPLITS`).
        backgrounds_root: The unpacked background packages; defaults to `backgrounds.backgrounds_dir()`.
        distractors: At most this many stamps per composite (0 to N, uniformly), from the same cache.
        backgrounds: The background split to draw from, if not the one named like `split` ("train", "validation"
            or "held_out").
        background_packages: Draw only from the backgrounds of these packages (None: all of them).
        background_blur: Probability that a composite's scene is blurred behind the car (`background_blur.py`);
            at 0 no extra random number is drawn, so a seed gives the composites it gave before the option.
        car_width: The range of the car's width, as fractions of the frame width; the default range gives the
            composites a seed gave before the option.

    Every source pair, the backgrounds and `out/splits.json` are checked before anything is written; then
    `splits.json` is written, with the new cars, before the images, so that an interrupted run leaves fewer images,
    never images without a split.

    Returns:
        The number of composites written.

    Raises:
        ValueError: If an argument is out of range, a car id is given twice, a source pair is unreadable, of two
            sizes or without car (`read_source_pair`), `out/splits.json` is malformed, or a car's images would fall
            on several sides (a source car, or composites of it, in `out` with another split: `plan_splits`).
        FileNotFoundError: If a car has no photo in `cars_dir/train`, or a photo has no mask, naming them, or the
            backgrounds or stamps are missing.
    """
    backgrounds = _background_split(split, backgrounds, distractors)
    car_width = check_car_width_range(car_width)
    # Validation and held-out composites stand for outdoor photos: outdoor scenes only. Training also sees close-ups
    # and interiors.
    kinds = KINDS if split == "train" else ("outdoor",)
    sources = _checked_sources(cars_dir, car_ids)
    require_backgrounds(backgrounds, kinds, backgrounds_root, background_packages)
    stamps = load_stamps(backgrounds_root) if distractors else []
    tag, mark = SPLITS[split]
    made_from = {f"{car}{tag}{k}": car for car in sorted({s.car for s in sources}) for k in range(per_image)}
    splits = plan_splits(out, made_from, mark)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "train_masks").mkdir(parents=True, exist_ok=True)
    write_splits(out, splits)
    rng = np.random.default_rng(seed)
    count = 0
    for source in sources:
        image, mask = read_source_pair(source)
        for k in range(per_image):
            background = random_background(
                rng, size[1], size[0], backgrounds, kinds, backgrounds_root, background_packages
            )
            params = sample_params(rng, car_width)
            chosen = (
                [stamps[i] for i in rng.choice(len(stamps), size=rng.integers(0, distractors + 1))] if stamps else []
            )
            blur = sample_background_blur(rng, background_blur)
            composite, label = compose(image, mask, background, params, rng, chosen, blur)
            write_pair(out, f"{source.car}{tag}{k}_{source.angle}", composite, label, quality=params.jpeg_quality)
            count += 1
    return count


def _background_split(split: str, backgrounds: str | None, distractors: int) -> str:
    """The background split to draw from (`backgrounds`, else the one named like `split`), checking the arguments.

    Raises:
        ValueError: If `split` is not one of `SPLITS`, `backgrounds` not one of `SOURCE_SPLITS`, or `distractors`
            outside 0..`MAX_DISTRACTORS`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    backgrounds = split if backgrounds is None else backgrounds
    if backgrounds not in SOURCE_SPLITS:
        raise ValueError(f"backgrounds must be one of {SOURCE_SPLITS}, got {backgrounds!r}")
    if not 0 <= distractors <= MAX_DISTRACTORS:
        raise ValueError(f"distractors must lie in 0..{MAX_DISTRACTORS}, got {distractors}")
    return backgrounds


def _checked_sources(cars_dir: Path, car_ids: Sequence[str]) -> list[SourcePhoto]:
    """The cars' photos and masks (`find_source_photos`) sorted by name, each pair read once to check it."""
    sources = sorted(find_source_photos(cars_dir, car_ids), key=lambda source: source.stem)
    for source in sources:
        read_source_pair(source)
    return sources


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m training.synthetic.composite` (`composite_cli.main`)."""
    from .composite_cli import main as command_line

    return command_line(argv)


if __name__ == "__main__":
    raise SystemExit(main())
