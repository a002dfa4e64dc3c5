"""Loading a folder in the Kaggle Carvana layout: `train/`, masks in `train_masks/` or `train_masks.csv`, `test/`."""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets

from ..image_io import PAIR_MASK_SUFFIX, ImageDecodeError
from ..rle import rle_decode
from ..submission import read_rle_csv
from .files import check_pairs, example_row, first_few, list_files, path_entry, png_entry
from .splits import assigned_splits, dataset_features, read_split_file, split_rows_by_car

_CARVANA_NAME = re.compile(r"^(?P<car>[^_/]+)_(?P<angle>\d{2})\.(?:jpe?g|png)$", re.IGNORECASE)

#: The extensions of a photo's mask in `train_masks/`, in the order they are looked for.
_MASK_EXTENSIONS = (".gif", ".png")

#: An image of a Carvana folder: its path, car id and angle.
CarvanaImage = tuple[Path, str, int]


def carvana_car_id(file_name: str) -> str | None:
    """The car id of a Carvana image name `<car_id>_<NN>.jpg` (or `.png`), or None for another name."""
    match = _CARVANA_NAME.match(file_name)
    return match["car"] if match else None


def carvana_images(folder: Path) -> list[CarvanaImage]:
    """The Carvana images of `folder`, sorted by path, as `(path, car_id, angle)`: the loader's rule.

    An image is named `<car_id>_<NN>.jpg`, `.jpeg` or `.png` (in any case); other files, and hidden ones, are left
    out (`non_carvana_names` lists them).

    Raises:
        FileNotFoundError: If `folder` does not exist.
    """
    images = []
    for path in list_files(folder):
        match = _CARVANA_NAME.match(path.name)
        if match:
            images.append((path, match["car"], int(match["angle"])))
    return images


def non_carvana_names(folder: Path) -> list[str]:
    """The names of the files of `folder` that `carvana_images` leaves out (hidden files aside), sorted."""
    return [path.name for path in list_files(folder) if not _CARVANA_NAME.match(path.name)]


def carvana_mask_names(stem: str) -> tuple[str, ...]:
    """The names the mask of photo `<stem>.jpg` may have in `train_masks/`, in the order they are looked for."""
    return tuple(f"{stem}{PAIR_MASK_SUFFIX}{extension}" for extension in _MASK_EXTENSIONS)


def carvana_mask_file(masks_dir: Path, stem: str) -> Path | None:
    """The mask of photo `<stem>.jpg`: `masks_dir/<stem>_mask.gif`, else `_mask.png`; None if neither is a file."""
    return next((masks_dir / name for name in carvana_mask_names(stem) if (masks_dir / name).is_file()), None)


def repeated(items: Iterable[str]) -> list[str]:
    """The items that occur more than once, sorted."""
    return sorted(item for item, count in Counter(items).items() if count > 1)


def parse_car_ids(text: str, option: str | None = None) -> list[str]:
    """The car ids of a comma-separated list, in the order given; an empty list for an empty text.

    A car id is the `<car_id>` of a photo name `<car_id>_<NN>.jpg` (`carvana_car_id`), so it has no `_` nor `/`.
    An id named twice is refused rather than dropped, so that a typo in a long list does not go unnoticed.

    Args:
        text: The option's value, such as `"00087a6bd4dc, 0cdf5b5d0ce1"` (spaces and empty items are ignored).
        option: The option's name, put at the start of the messages; None where the caller names it (argparse).

    Raises:
        ValueError: If an item is not a car id, or names a car already named.
    """
    prefix = f"{option}: " if option else ""
    cars = [car.strip() for car in text.split(",") if car.strip()]
    for car in cars:
        if carvana_car_id(f"{car}_01.jpg") != car:
            raise ValueError(
                f"{prefix}{car!r} is not a car id: photos are named <car>_<NN>.jpg, so an id has no _ nor /"
            )
    if twice := repeated(cars):
        raise ValueError(f"{prefix}{', '.join(twice)} named twice; name each car once")
    return cars


def _carvana_images(folder: Path, kind: str) -> list[CarvanaImage]:
    """List `<car>_<NN>.jpg` files of a Carvana folder as (path, car_id, angle), warning about other names.

    Call it from `load_carvana` itself: the warning names `load_carvana`'s caller.
    """
    found, unknown = carvana_images(folder), non_carvana_names(folder)
    if unknown:
        warnings.warn(
            f"ignoring {len(unknown)} file(s) in {folder} whose names are not <car_id>_<NN>.jpg: {first_few(unknown)}",
            stacklevel=3,
        )
    if not found and kind == "train":
        raise FileNotFoundError(f"{folder} holds no images named <car_id>_<NN>.jpg (the Kaggle Carvana layout)")
    return found


def _mask_file_rows(mask_dir: Path, images: list[CarvanaImage], keep_unreadable: bool) -> list[dict[str, Any]]:
    """Rows of images whose masks are files `train_masks/<name>_mask.gif` (or `.png`), checked from the headers."""
    masks = {p.name: p for p in list_files(mask_dir)}
    pairs = [
        (path, next((masks[name] for name in carvana_mask_names(path.stem) if name in masks), None))
        for path, _, _ in images
    ]
    missing = [str(path) for path, mask in pairs if mask is None]
    if missing:
        raise ImageDecodeError(
            f"{len(missing)} image(s) have no mask in {mask_dir} (expected <name>_mask.gif): {first_few(missing)}"
        )
    expected = {mask.name for _, mask in pairs}
    unknown = sorted(set(masks) - expected)
    if unknown:
        warnings.warn(
            f"ignoring {len(unknown)} file(s) in {mask_dir} without an image: {first_few(unknown)}", stacklevel=4
        )  # names load_carvana's caller
    check_pairs(pairs, keep_unreadable)
    return [example_row(path, path_entry(mask), car, angle) for (path, car, angle), (_, mask) in zip(images, pairs)]


def _csv_mask_rows(csv_path: Path, images: list[CarvanaImage], keep_unreadable: bool) -> list[dict[str, Any]]:
    """Rows of images whose masks are run-length rows of `train_masks.csv`, decoded to PNG entries."""
    rles = read_rle_csv(csv_path)
    missing = [str(path) for path, _, _ in images if path.name not in rles]
    if missing:
        raise ImageDecodeError(f"{len(missing)} image(s) have no row in {csv_path}: {first_few(missing)}")
    sizes = check_pairs([(path, None) for path, _, _ in images], keep_unreadable)
    rows, malformed = [], []
    for (path, car, angle), size in zip(images, sizes):
        mask = None
        if size is not None:
            try:
                mask = png_entry(rle_decode(rles[path.name], (size[1], size[0])))
            except ValueError as error:
                malformed.append(f"{path.name}: {error}")
        rows.append(example_row(path, mask, car, angle))
    if malformed:  # every bad row at once, so that one fix mends the file
        raise ValueError(f"{csv_path}: {len(malformed)} malformed mask row(s): {first_few(malformed)}")
    return rows


def _labelled_rows(root: Path, images: list[CarvanaImage], keep_unreadable: bool) -> list[dict[str, Any]]:
    """Rows of the `train/` images with their masks: `train_masks/` when it exists, else `train_masks.csv`."""
    mask_dir, csv_path = root / "train_masks", root / "train_masks.csv"
    if mask_dir.is_dir():
        return _mask_file_rows(mask_dir, images, keep_unreadable)
    if csv_path.is_file():
        return _csv_mask_rows(csv_path, images, keep_unreadable)
    raise FileNotFoundError(f"{root}: no masks; expected a train_masks/ folder of GIFs or train_masks.csv")


def _test_split(tests: list[CarvanaImage], keep_unreadable: bool) -> datasets.Dataset:
    """The unlabelled `test` split (no `mask` column), its images checked from the headers."""
    check_pairs([(path, None) for path, _, _ in tests], keep_unreadable)
    return datasets.Dataset.from_dict(
        {
            "image": [path_entry(path) for path, _, _ in tests],
            "car_id": [car for _, car, _ in tests],
            "angle": [angle for _, _, angle in tests],
            "name": [path.name for path, _, _ in tests],
        },
        features=dataset_features(with_mask=False),
    )


def load_carvana(
    data_dir: str | os.PathLike, validation_fraction: float = 0.2, seed: int = 42, keep_unreadable: bool = False
) -> datasets.DatasetDict:
    """Load a folder in the Kaggle Carvana layout.

    Expected layout: `train/<car_id>_<NN>.jpg`, masks as `train_masks/<car_id>_<NN>_mask.gif` or, when that folder
    is absent, `train_masks.csv` (`img,rle_mask`), and optionally `test/<car_id>_<NN>.jpg`. When the folder has a
    `splits.json` (`{car_id: "train" | "val" | "test"}`, as written by `training.synthetic`), it fixes the split
    instead of `validation_fraction` and `seed`: "val" cars become `validation` and "test" cars a labelled
    `heldout` split.

    Args:
        data_dir: The folder.
        validation_fraction: Share of cars held out for validation.
        seed: Seed of the split by car.
        keep_unreadable: Keep images whose header check fails (unreadable, over the pixel limit, a mask of
            another size) instead of raising; reading them raises the named error (their CSV mask is None).

    Returns:
        A `DatasetDict` with `train`, `validation`, `heldout` (only with a `splits.json` that names test cars) and,
        when `test/` exists, `test` (no `mask` column).

    Raises:
        FileNotFoundError: If `train/` or the masks are missing.
        ImageDecodeError: If an image has no mask (the first few are listed), a mask's size differs from its
            image's, or a file is not a readable image.
    """
    root = Path(data_dir)
    if not (root / "train").is_dir():
        raise FileNotFoundError(f"{root}: no train/ folder; expected the Kaggle Carvana layout (train/, train_masks/)")
    rows = _labelled_rows(root, _carvana_images(root / "train", "train"), keep_unreadable)
    assignment = read_split_file(root / "splits.json", {row["car_id"] for row in rows})
    if assignment is None:
        train, validation = split_rows_by_car(rows, validation_fraction, seed)
        splits = {"train": train, "validation": validation}
    else:
        splits = assigned_splits(rows, assignment)
    if (root / "test").is_dir():
        splits["test"] = _test_split(_carvana_images(root / "test", "test"), keep_unreadable)
    return datasets.DatasetDict(splits)
