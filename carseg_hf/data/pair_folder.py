"""Loading a folder of image/mask pairs such as `car7_03.jpg` + `car7_03_mask.png`."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import datasets

from ..image_io import IMAGE_EXTENSIONS, PAIR_MASK_SUFFIX, ImageDecodeError
from .files import check_pairs, example_row, first_few, list_files, path_entry
from .splits import split_rows_by_car

_ANGLE_SUFFIX = re.compile(r"^(?P<car>.+)_(?P<angle>\d+)$")


def _refuse_shared_stems(root: Path, files: list[Path]) -> None:
    """Refuse two files of one stem (`x_01.jpg` + `x_01.png`, `x_01_mask.png` + `x_01_mask.gif`): pairs are a guess.

    Raises:
        ImageDecodeError: Listing the first few such groups.
    """
    by_stem: dict[str, list[str]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path.name)
    shared = [" and ".join(names) for names in by_stem.values() if len(names) > 1]
    if shared:
        raise ImageDecodeError(
            f"{len(shared)} name(s) in {root} are shared by files of different extensions, so which image goes with "
            f"which mask is ambiguous: {first_few(shared)}; keep one file per name"
        )


def _car_and_angle(stem: str) -> tuple[str, int]:
    match = _ANGLE_SUFFIX.match(stem)
    return (match["car"], int(match["angle"])) if match else (stem, 0)


def load_pair_folder(
    folder: str | os.PathLike,
    mask_suffix: str = PAIR_MASK_SUFFIX,
    validation_fraction: float = 0.2,
    seed: int = 42,
    keep_unreadable: bool = False,
) -> datasets.DatasetDict:
    """Load a folder of image/mask pairs such as `car7_03.jpg` + `car7_03_mask.png`.

    Masks are the files whose stem ends with `mask_suffix`; any image extension works for either. The car id is the
    stem before a trailing `_<number>` (which becomes the angle), or the whole stem.

    Args:
        folder: The folder (not searched recursively).
        mask_suffix: What a mask's stem adds to its image's stem.
        validation_fraction: Share of cars held out for validation.
        seed: Seed of the split by car.
        keep_unreadable: Keep pairs whose header check fails instead of raising (see `load_carvana`).

    Returns:
        A `DatasetDict` with `train` and `validation`.

    Raises:
        FileNotFoundError: If the folder holds no images.
        ImageDecodeError: If an image has no mask (the first few are listed), sizes differ, or a file is unreadable.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {str(root)!r} does not exist")
    if not mask_suffix:
        raise ValueError("mask_suffix must not be empty")
    files = [p for p in list_files(root) if p.suffix.lower() in IMAGE_EXTENSIONS]
    masks = {p.stem[: -len(mask_suffix)]: p for p in files if p.stem.endswith(mask_suffix)}
    images = [p for p in files if not p.stem.endswith(mask_suffix)]
    _refuse_shared_stems(root, files)
    if not images:
        raise FileNotFoundError(f"{root} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    missing = [str(p) for p in images if p.stem not in masks]
    if missing:
        raise ImageDecodeError(
            f"{len(missing)} image(s) in {root} have no mask named <stem>{mask_suffix}.<ext>: {first_few(missing)}"
        )
    orphans = sorted(masks[stem].name for stem in set(masks) - {p.stem for p in images})
    if orphans:
        warnings.warn(
            f"ignoring {len(orphans)} mask(s) in {root} without an image: {first_few(orphans)}", stacklevel=2
        )
    pairs = [(p, masks[p.stem]) for p in images]
    check_pairs(pairs, keep_unreadable)
    rows = [example_row(image, path_entry(mask), *_car_and_angle(image.stem)) for image, mask in pairs]
    train, validation = split_rows_by_car(rows, validation_fraction, seed)
    return datasets.DatasetDict({"train": train, "validation": validation})
