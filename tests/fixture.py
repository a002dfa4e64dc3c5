"""TEST DATA: a procedural Carvana-format data set, car-like silhouettes on a studio background, in Kaggle's layout.

The output is made for tests, docs, benchmarks and smoke runs, never for scores; it is not part of the installed
package:

```
out_dir/
  train/<car_id>_<NN>.jpg             # car_id: 12 hex digits, NN: 01..16 (the rotation angle)
  train_masks/<car_id>_<NN>_mask.gif  # palette ("P") GIFs holding indices 0 (background) and 1 (car)
  train_masks.csv                     # img,rle_mask with .jpg names and Kaggle RLE
  test/<car_id>_<NN>.jpg
```

From the repository root, `python -m tests.fixture --out DIR --cars N` writes one; tests and benchmarks import
`tests.fixture.make_carvana_fixture`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from carseg_hf.overlay import save_mask_gif
from carseg_hf.rle import rle_encode
from carseg_hf.submission import SubmissionWriter


@dataclass
class _CarStyle:
    """Per-car shape and colour parameters."""

    length: float  # fraction of the image width in side view
    width_ratio: float  # car width / length
    body_ratio: float  # body height / length
    cabin_ratio: float  # cabin height / length
    cabin_base: float  # cabin base / projected length
    cabin_shift: float  # cabin offset towards the rear, fraction of length
    wheel_ratio: float  # wheel radius / length
    color: np.ndarray  # (3,) float RGB


def _random_style(rng: np.random.Generator) -> _CarStyle:
    return _CarStyle(
        length=rng.uniform(0.62, 0.76),
        width_ratio=rng.uniform(0.38, 0.46),
        body_ratio=rng.uniform(0.19, 0.25),
        cabin_ratio=rng.uniform(0.10, 0.16),
        cabin_base=rng.uniform(0.45, 0.6),
        cabin_shift=rng.uniform(-0.02, 0.08),
        wheel_ratio=rng.uniform(0.075, 0.095),
        color=rng.uniform(20, 235, size=3),
    )


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A studio backdrop: a light wall gradient over a slightly darker floor, as float RGB `(height, width, 3)`."""
    horizon = int(height * rng.uniform(0.5, 0.6))
    rows = np.arange(height, dtype=np.float32)[:, None]  # (height, 1)
    wall = 240.0 - 25.0 * rows / max(horizon, 1)
    floor = 205.0 - 30.0 * (rows - horizon) / max(height - horizon, 1)
    grey = np.where(rows < horizon, wall, floor)  # (height, 1)
    columns = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]  # (1, width)
    vignette = 1.0 - 0.06 * columns**2  # (1, width)
    tint = rng.uniform(0.96, 1.04, size=3).astype(np.float32)
    return (grey * vignette)[..., None] * tint  # (height, width, 3)


def _render(style: _CarStyle, angle_index: int, angles: int, size: tuple[int, int], rng: np.random.Generator):
    """Draw one view of a car; returns (RGB uint8 image `(height, width, 3)`, 0/1 uint8 mask `(height, width)`)."""
    width, height = size
    theta = 2.0 * math.pi * angle_index / angles  # angle 0 looks at the front
    side, front = abs(math.sin(theta)), abs(math.cos(theta))
    facing = 1.0 if math.sin(theta) >= 0 else -1.0
    length = style.length * width
    projected = length * side + length * style.width_ratio * front
    wheel = style.wheel_ratio * length
    center_x = width / 2 + rng.uniform(-0.03, 0.03) * width
    ground = height * rng.uniform(0.78, 0.84)
    body_bottom = ground - 0.45 * wheel
    body_top = body_bottom - style.body_ratio * length
    left, right = center_x - projected / 2, center_x + projected / 2

    body = Image.new("L", size, 0)
    ImageDraw.Draw(body).rounded_rectangle(
        (left, body_top, right, body_bottom), radius=max(2.0, 0.35 * (body_bottom - body_top)), fill=255
    )
    cabin = Image.new("L", size, 0)
    base = projected * (style.cabin_base * side**2 + 0.8 * front**2)
    top = base * rng.uniform(0.55, 0.65)
    cabin_x = center_x + facing * style.cabin_shift * length * side
    cabin_top = body_top - style.cabin_ratio * length
    ImageDraw.Draw(cabin).polygon(
        [
            (cabin_x - base / 2, body_top + 1),
            (cabin_x - top / 2, cabin_top),
            (cabin_x + top / 2, cabin_top),
            (cabin_x + base / 2, body_top + 1),
        ],
        fill=255,
    )
    wheels = Image.new("L", size, 0)
    radius_x = wheel * (0.3 + 0.7 * side)
    offset = projected / 2 - max(1.4 * wheel * side, radius_x)
    for wheel_x in (center_x - offset, center_x + offset):
        ImageDraw.Draw(wheels).ellipse((wheel_x - radius_x, ground - 2 * wheel, wheel_x + radius_x, ground), fill=255)

    body_mask = np.asarray(body) > 127  # (height, width)
    cabin_mask = np.asarray(cabin) > 127
    wheel_mask = np.asarray(wheels) > 127
    mask = body_mask | cabin_mask | wheel_mask

    image = _background(width, height, rng)  # (height, width, 3)
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).ellipse(
        (left - 0.08 * projected, ground - 0.5 * wheel, right + 0.08 * projected, ground + 0.6 * wheel), fill=255
    )
    shadow = np.asarray(shadow.filter(ImageFilter.GaussianBlur(max(1.0, 0.6 * wheel))), np.float32) / 255.0
    image *= (1.0 - 0.45 * shadow)[..., None]

    rows = np.arange(height, dtype=np.float32)[:, None, None]  # (height, 1, 1)
    shade = 1.15 - 0.4 * np.clip((rows - body_top) / max(body_bottom - body_top, 1.0), 0.0, 1.0)
    paint = np.clip(style.color[None, None, :] * shade, 0, 255)  # (height, 1, 3)
    image = np.where(body_mask[..., None], paint, image)
    glass = 0.25 * style.color + np.array([40.0, 50.0, 60.0])
    image = np.where((cabin_mask & ~body_mask)[..., None], glass, image)
    image = np.where(wheel_mask[..., None], np.array([28.0, 28.0, 30.0]), image)
    image += rng.normal(0.0, 2.5, size=image.shape)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), mask.astype(np.uint8)


def make_carvana_fixture(
    out_dir: str | os.PathLike,
    num_cars: int = 2,
    angles: int = 16,
    size: tuple[int, int] = (480, 320),
    seed: int = 0,
    num_test: int = 4,
    write_gifs: bool = True,
    write_csv: bool = True,
) -> Path:
    """Write a procedural data set in the Kaggle Carvana layout (see the module docstring).

    Args:
        out_dir: Folder to write into (created if needed).
        num_cars: Number of training cars; each gets `angles` views.
        angles: Views per car, numbered 01..angles (Carvana has 16).
        size: `(width, height)` of every image.
        seed: Everything is deterministic given the seed.
        num_test: Number of images in `test/` (from cars not in `train/`).
        write_gifs: Write `train_masks/*.gif`.
        write_csv: Write `train_masks.csv`.

    Returns:
        The output folder.

    Raises:
        ValueError: If a count or the size is out of range.
    """
    if num_cars < 0 or num_test < 0:
        raise ValueError(f"num_cars and num_test must be non-negative, got {num_cars} and {num_test}")
    if not 1 <= angles <= 99:
        raise ValueError(f"angles must lie in 1..99 (two-digit Kaggle numbering), got {angles}")
    width, height = (int(v) for v in size)
    if width < 16 or height < 16:
        raise ValueError(f"size is (width, height) and must be at least 16x16, got {size}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    used: set[str] = set()

    def new_id() -> str:
        while True:
            car_id = rng.bytes(6).hex()
            if car_id not in used:
                used.add(car_id)
                return car_id

    (out_dir / "train").mkdir(parents=True, exist_ok=True)
    if write_gifs:
        (out_dir / "train_masks").mkdir(exist_ok=True)
    rows: list[tuple[str, str]] = []
    for _ in range(num_cars):
        car_id, style = new_id(), _random_style(rng)
        for index in range(angles):
            name = f"{car_id}_{index + 1:02d}"
            image, mask = _render(style, index, angles, (width, height), rng)
            Image.fromarray(image).save(out_dir / "train" / f"{name}.jpg", quality=92)
            if write_gifs:
                save_mask_gif(mask, out_dir / "train_masks" / f"{name}_mask.gif")
            if write_csv:
                rows.append((name, rle_encode(mask)))
    if write_csv:
        with SubmissionWriter(out_dir / "train_masks.csv") as writer:
            for name, rle in sorted(rows):
                writer.write(name, rle)

    if num_test:
        (out_dir / "test").mkdir(exist_ok=True)
    written = 0
    while written < num_test:
        car_id, style = new_id(), _random_style(rng)
        for index in range(min(angles, num_test - written)):
            image, _ = _render(style, index, angles, (width, height), rng)
            Image.fromarray(image).save(out_dir / "test" / f"{car_id}_{index + 1:02d}.jpg", quality=92)
            written += 1
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: `python -m tests.fixture --out DIR --cars N`, from the repository root."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fixture", description="Write a procedural data set in the Kaggle Carvana layout."
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--cars", type=int, default=2, help="number of training cars (default 2)")
    parser.add_argument("--angles", type=int, default=16, help="views per car (default 16)")
    parser.add_argument("--width", type=int, default=480, help="image width (default 480)")
    parser.add_argument("--height", type=int, default=320, help="image height (default 320)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--num-test", type=int, default=4, help="images in test/ (default 4)")
    parser.add_argument("--no-gifs", action="store_true", help="skip train_masks/*.gif (masks only in the CSV)")
    parser.add_argument("--no-csv", action="store_true", help="skip train_masks.csv")
    args = parser.parse_args(argv)
    try:
        out = make_carvana_fixture(
            args.out,
            num_cars=args.cars,
            angles=args.angles,
            size=(args.width, args.height),
            seed=args.seed,
            num_test=args.num_test,
            write_gifs=not args.no_gifs,
            write_csv=not args.no_csv,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.cars * args.angles} training and {args.num_test} test images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
