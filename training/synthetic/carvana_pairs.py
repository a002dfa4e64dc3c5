"""Photo and mask pairs of Carvana-layout folders: those that `composite` and `reframe` read, and those they write.

Source photos are found by the Carvana loader's rule (`carseg_hf.data.carvana.carvana_images`: `<car_id>_<NN>.jpg`,
`.jpeg` or `.png`, in any case) with their masks `train_masks/<name>_mask.gif` or `_mask.png`, and every pair is
read and checked (decodable, mask of the photo's size, some car in the mask) before a tool writes anything, so that
a bad file stops a run with its name instead of leaving half a data set behind. Written pairs are saved
atomically (`write_pair`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carseg_hf.data.carvana import carvana_images, carvana_mask_file, non_carvana_names, repeated
from carseg_hf.data.carvana import parse_car_ids as shared_parse_car_ids
from carseg_hf.data.files import first_few
from carseg_hf.image_io import check_mask_size, load_mask, load_rgb


@dataclass(frozen=True)
class SourcePhoto:
    """One photo of a Carvana-layout folder and its mask.

    Attributes:
        photo: The photo, `train/<car>_<angle>.<ext>`.
        mask: Its mask, `train_masks/<car>_<angle>_mask.gif` (or `.png`).
        car: The car id.
        angle: The two-digit angle, as in the file name.
    """

    photo: Path
    mask: Path
    car: str
    angle: str

    @property
    def stem(self) -> str:
        """`<car>_<angle>`, the photo's name without its extension."""
        return self.photo.stem


def parse_car_ids(text: str | None, default: Sequence[str], option: str = "--cars") -> list[str]:
    """The car ids of a comma-separated option, or `default` when the option is not given.

    The ids follow `carseg_hf.data.carvana.parse_car_ids`, the rule the benchmarks use too.

    Raises:
        ValueError: If the option is given but names no car, names something that is not a car id, or names a car
            twice.
    """
    if text is None:
        return list(default)
    cars = shared_parse_car_ids(text, option)
    if not cars:
        raise ValueError(f"{option} is empty; expected comma-separated car ids")
    return cars


def find_source_photos(cars_dir: Path, car_ids: Sequence[str]) -> list[SourcePhoto]:
    """The photos of `car_ids` in `cars_dir/train` with their masks, in the order of `car_ids`, then by name.

    Photos and masks are found by the Carvana loader's rule (`carvana_images`, `carvana_mask_file`). Warns naming
    the files of `train/` that the loader would ignore too (names not `<car_id>_<NN>.jpg`).

    Raises:
        ValueError: If a car id is given twice, or a car has two photos of one angle (e.g. `.jpg` and `.png`).
        FileNotFoundError: Naming the cars that have no photo there, or the photos that have no mask.
    """
    if twice := repeated(car_ids):
        raise ValueError(f"car id(s) given twice: {', '.join(twice)}")
    train, masks = cars_dir / "train", cars_dir / "train_masks"
    if ignored := non_carvana_names(train):
        warnings.warn(
            f"ignoring {len(ignored)} file(s) in {train} whose names are not <car_id>_<NN>.jpg (or .png), as "
            f"training does: {first_few(ignored)}",
            stacklevel=2,
        )
    found: dict[str, list[Path]] = {car: [] for car in car_ids}
    for path, car, _ in carvana_images(train):
        if car in found:
            found[car].append(path)
    missing = [car for car in car_ids if not found[car]]
    if missing:
        raise FileNotFoundError(f"{train}: no <car_id>_<NN>.jpg photos of {', '.join(missing)}")
    photos = [path for car in car_ids for path in sorted(found[car], key=lambda p: p.stem)]
    if twice := repeated(path.stem for path in photos):
        raise ValueError(f"{train}: two photos of one car and angle: {first_few(twice)}; keep one of each")
    pairs = [(path, carvana_mask_file(masks, path.stem)) for path in photos]
    if no_mask := [path.name for path, mask in pairs if mask is None]:
        raise FileNotFoundError(f"{masks}: no <name>_mask.gif or <name>_mask.png for {first_few(no_mask)}")
    return [SourcePhoto(path, mask, *path.stem.rsplit("_", 1)) for path, mask in pairs]


def read_source_pair(source: SourcePhoto) -> tuple[np.ndarray, np.ndarray]:
    """Read a photo and its 0/1 mask through carseg's checked loaders.

    Returns:
        `(image, mask)`: `(height, width, 3)` uint8 RGB and `(height, width)` uint8 0/1.

    Raises:
        ImageDecodeError: (a `ValueError`) If a file cannot be read, the mask is not binary or its size differs
            from the photo's, naming the files.
        ValueError: If the mask marks no car pixel, naming it.
    """
    image, mask = load_rgb(source.photo), load_mask(source.mask)
    check_mask_size(mask.shape[::-1], image.shape[1::-1], source.mask, source.photo)
    if not mask.any():
        raise ValueError(f"{source.mask}: the mask marks no car pixel; expected the car of {source.photo.name}")
    return image, mask


def report_interrupt(out: Path, what: str) -> int:
    """Say on stderr that a run writing `what` to `out` was interrupted (Ctrl-C), and return its exit status, 130.

    The generators write `out/splits.json`, with every new car, before their images, so the images already written
    have their split; the message says so, and that rerunning the command writes the rest.
    """
    print(
        f"error: interrupted; {out} holds only part of the {what} of this run (its splits.json names them all "
        "already, so no car is on two sides); rerun the same command to write them all",
        file=sys.stderr,
    )
    return 130


def write_pair(out: Path, name: str, image: np.ndarray, label: np.ndarray, quality: int) -> None:
    """Write `train/<name>.jpg` at the JPEG `quality` and `train_masks/<name>_mask.gif`, each atomically."""
    from PIL import Image

    from carseg_hf.overlay import mask_gif_image

    from .dataset import save_image_atomic

    save_image_atomic(Image.fromarray(image), out / "train" / f"{name}.jpg", "JPEG", quality=quality)
    save_image_atomic(mask_gif_image(label), out / "train_masks" / f"{name}_mask.gif", "GIF")
