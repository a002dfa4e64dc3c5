"""Loading segmentation data sets as `datasets.DatasetDict`: Kaggle Carvana folders, image/mask pair folders, Hub.

Every loader returns splits `train` and `validation` (and `test` for a Carvana folder with `test/`), with columns:

- `image`: `datasets.Image()` (the photo);
- `mask`: `datasets.Image()`: the original mask file (Carvana's palette GIFs hold 0/1), or a 0/255 "L" PNG decoded
  from `train_masks.csv`. Decode it with `carseg_hf.image_io.load_mask` (or [`read_mask`]), which normalises every
  encoding to 0/1;
- `car_id` (str) and `angle` (int), so that train and validation never share a car;
- `name`: the image's file name, e.g. `0004d4463b50_01.jpg`.

File names and sizes are checked from the image headers when loading (cheap); pixel data is decoded when read.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from PIL import Image

from .image_io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    PAIR_MASK_SUFFIX,
    ImageDecodeError,
    check_mask_size,
    displayed_size,
    load_mask,
    load_rgb,
)
from .rle import rle_decode
from .submission import read_rle_csv

_CARVANA_NAME = re.compile(r"^(?P<car>[^_/]+)_(?P<angle>\d{2})\.(?:jpe?g|png)$", re.IGNORECASE)
_ANGLE_SUFFIX = re.compile(r"^(?P<car>.+)_(?P<angle>\d+)$")
_SHOWN = 5


def _features(with_mask: bool = True) -> datasets.Features:
    columns = {"image": datasets.Image()}
    if with_mask:
        columns["mask"] = datasets.Image()
    columns.update(car_id=datasets.Value("string"), angle=datasets.Value("int32"), name=datasets.Value("string"))
    return datasets.Features(columns)


def _first(items: Sequence[Any], count: int = _SHOWN) -> str:
    shown = ", ".join(str(item) for item in list(items)[:count])
    return shown + (f", ... ({len(items)} in all)" if len(items) > count else "")


def split_by_car(
    car_ids: Sequence[str], validation_fraction: float = 0.2, seed: int = 42
) -> tuple[list[str], list[str]]:
    """Split car ids into training and validation cars, so all angles of a car fall on one side.

    Args:
        car_ids: Car id of every image (repeats are fine).
        validation_fraction: Share of cars for validation, in [0, 1).
        seed: The split is deterministic given the seed (and independent of the order of `car_ids`).

    Returns:
        `(train_ids, val_ids)`, each sorted. With two or more cars and a positive fraction, each side has at
        least one car; with one car, it goes to training.

    Raises:
        ValueError: If the fraction is out of range.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {validation_fraction}")
    unique = sorted(set(car_ids))
    count = 0
    if validation_fraction > 0 and len(unique) >= 2:
        count = min(max(1, round(len(unique) * validation_fraction)), len(unique) - 1)
    order = np.random.default_rng(seed).permutation(len(unique))
    val = sorted(unique[i] for i in order[:count])
    val_set = set(val)
    return [car for car in unique if car not in val_set], val


def _check_header(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Open an image's header only and return its (width, height) as displayed and decoded (EXIF orientation applied).

    Refuses empty, non-image and truncated files, and images over `max_pixels` (the limit `image_io` decodes up
    to), decompression bombs included, so that they fail here with the file's name rather than in a worker.
    """
    if path.stat().st_size == 0:
        raise ImageDecodeError(f"{path}: the file is empty (0 bytes); expected an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(path) as image:
                size, kind = displayed_size(image), image.format
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(
            f"{path}: refusing to decode it, it is far over the limit of {max_pixels:,} pixels ({error})"
        ) from error
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"{path}: not a readable image ({error})") from error
    if size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"{path}: the image is {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, over the limit of "
            f"{max_pixels:,}; refusing to decode it"
        )
    if kind == "JPEG":
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            if b"\xff\xd9" not in handle.read():
                raise ImageDecodeError(f"{path}: the JPEG is truncated (no end-of-image marker)")
    return size


def _check_pairs(
    pairs: Sequence[tuple[Path, Path | None]], keep_unreadable: bool = False
) -> list[tuple[int, int] | None]:
    """Check every image (and its mask file, if any) from the headers; return the image sizes as (width, height).

    With `keep_unreadable`, a pair that fails the check gets the size None instead of raising: the caller keeps it,
    and decoding it later raises the same named error (`carseg evaluate` then skips and reports it).
    """
    sizes = []
    for image_path, mask_path in pairs:
        try:
            size = _check_header(image_path)
            if mask_path is not None:
                check_mask_size(_check_header(mask_path), size, mask_path, image_path)
        except ImageDecodeError:
            if not keep_unreadable:
                raise
            size = None
        sizes.append(size)
    return sizes


def _png_entry(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 0/1 mask as a 0/255 "L" PNG entry of a `datasets.Image()` column."""
    buffer = io.BytesIO()
    Image.fromarray((mask * 255).astype(np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _path_entry(path: Path) -> dict[str, Any]:
    return {"bytes": None, "path": str(path)}


def _build(
    rows: list[dict[str, Any]], validation_fraction: float, seed: int, with_mask: bool = True
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split rows by car and turn them into train and validation datasets."""
    train_ids, _ = split_by_car([row["car_id"] for row in rows], validation_fraction, seed)
    train_set = set(train_ids)
    if validation_fraction > 0 and len(train_ids) == len({row["car_id"] for row in rows}):
        warnings.warn(f"only {len(train_ids)} car(s): the validation split is empty", stacklevel=3)
    features = _features(with_mask)
    columns = list(features)

    def to_dataset(selected: list[dict[str, Any]]) -> datasets.Dataset:
        return datasets.Dataset.from_dict({c: [row[c] for row in selected] for c in columns}, features=features)

    return (
        to_dataset([row for row in rows if row["car_id"] in train_set]),
        to_dataset([row for row in rows if row["car_id"] not in train_set]),
    )


#: Names used in `splits.json` (written by `training.synthetic`) and the DatasetDict splits they become.
_ASSIGNED_SPLITS = {"train": "train", "val": "validation", "validation": "validation", "test": "heldout"}


def _read_split_file(path: Path, car_ids: set[str]) -> dict[str, str] | None:
    """Read a `{car_id: "train" | "val" | "test"}` file, checking that it covers every car; None when absent."""
    if not path.is_file():
        return None
    try:
        assignment = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); expected {{car_id: 'train' | 'val' | 'test'}}") from error
    if not isinstance(assignment, dict):
        raise ValueError(f"{path}: expected a JSON object {{car_id: 'train' | 'val' | 'test'}}")
    bad = sorted({str(v) for v in assignment.values()} - set(_ASSIGNED_SPLITS))
    if bad:
        raise ValueError(f"{path}: unknown split names {bad}; expected train, val or test")
    missing = sorted(car_ids - set(assignment))
    if missing:
        raise ValueError(f"{path}: {len(missing)} car(s) have no split: {_first(missing)}")
    return {car: _ASSIGNED_SPLITS[split] for car, split in assignment.items()}


def _build_assigned(rows: list[dict[str, Any]], assignment: dict[str, str]) -> dict[str, datasets.Dataset]:
    """Turn rows into the splits named by an explicit car assignment (e.g. held-out meshes of synthetic data)."""
    features = _features(True)
    splits = {}
    for name in ("train", "validation", "heldout"):
        selected = [row for row in rows if assignment[row["car_id"]] == name]
        if selected or name != "heldout":
            splits[name] = datasets.Dataset.from_dict(
                {c: [row[c] for row in selected] for c in features}, features=features
            )
    return splits


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _carvana_rows(folder: Path, kind: str) -> list[tuple[Path, str, int]]:
    """List `<car>_<NN>.jpg` files of a Carvana folder as (path, car_id, angle), warning about other names."""
    found, unknown = [], []
    for path in _list_images(folder):
        match = _CARVANA_NAME.match(path.name)
        if match:
            found.append((path, match["car"], int(match["angle"])))
        else:
            unknown.append(path.name)
    if unknown:
        warnings.warn(
            f"ignoring {len(unknown)} file(s) in {folder} whose names are not <car_id>_<NN>.jpg: {_first(unknown)}",
            stacklevel=3,
        )
    if not found and kind == "train":
        raise FileNotFoundError(f"{folder} holds no images named <car_id>_<NN>.jpg (the Kaggle Carvana layout)")
    return found


def _csv_mask(csv_path: Path, name: str, rles: dict[str, str], size: tuple[int, int]) -> np.ndarray:
    """Decode the `train_masks.csv` row of image `name`, of size (width, height), naming both in errors."""
    try:
        return rle_decode(rles[name], (size[1], size[0]))
    except ValueError as error:
        raise ValueError(f"{csv_path}: the mask of {name}: {error}") from error


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
    images = _carvana_rows(root / "train", "train")
    mask_dir, csv_path = root / "train_masks", root / "train_masks.csv"
    rows = []
    if mask_dir.is_dir():
        masks = {p.name: p for p in _list_images(mask_dir)}
        pairs = [
            (path, masks.get(f"{path.stem}_mask.gif") or masks.get(f"{path.stem}_mask.png")) for path, _, _ in images
        ]
        missing = [str(path) for path, mask in pairs if mask is None]
        if missing:
            raise ImageDecodeError(
                f"{len(missing)} image(s) have no mask in {mask_dir} (expected <name>_mask.gif): {_first(missing)}"
            )
        expected = {mask.name for _, mask in pairs}
        unknown = sorted(set(masks) - expected)
        if unknown:
            warnings.warn(
                f"ignoring {len(unknown)} file(s) in {mask_dir} without an image: {_first(unknown)}", stacklevel=2
            )
        _check_pairs(pairs, keep_unreadable)
        for (path, car, angle), (_, mask) in zip(images, pairs):
            rows.append(dict(image=_path_entry(path), mask=_path_entry(mask), car_id=car, angle=angle, name=path.name))
    elif csv_path.is_file():
        rles = read_rle_csv(csv_path)
        missing = [str(path) for path, _, _ in images if path.name not in rles]
        if missing:
            raise ImageDecodeError(f"{len(missing)} image(s) have no row in {csv_path}: {_first(missing)}")
        sizes = _check_pairs([(path, None) for path, _, _ in images], keep_unreadable)
        for (path, car, angle), size in zip(images, sizes):
            mask = None if size is None else _png_entry(_csv_mask(csv_path, path.name, rles, size))
            rows.append(dict(image=_path_entry(path), mask=mask, car_id=car, angle=angle, name=path.name))
    else:
        raise FileNotFoundError(f"{root}: no masks; expected a train_masks/ folder of GIFs or train_masks.csv")
    assignment = _read_split_file(root / "splits.json", {row["car_id"] for row in rows})
    if assignment is None:
        train, validation = _build(rows, validation_fraction, seed)
        splits = {"train": train, "validation": validation}
    else:
        splits = _build_assigned(rows, assignment)
    if (root / "test").is_dir():
        tests = _carvana_rows(root / "test", "test")
        _check_pairs([(path, None) for path, _, _ in tests], keep_unreadable)
        splits["test"] = datasets.Dataset.from_dict(
            {
                "image": [_path_entry(path) for path, _, _ in tests],
                "car_id": [car for _, car, _ in tests],
                "angle": [angle for _, _, angle in tests],
                "name": [path.name for path, _, _ in tests],
            },
            features=_features(with_mask=False),
        )
    return datasets.DatasetDict(splits)


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
    files = [p for p in _list_images(root) if p.suffix.lower() in IMAGE_EXTENSIONS]
    masks = {p.stem[: -len(mask_suffix)]: p for p in files if p.stem.endswith(mask_suffix)}
    images = [p for p in files if not p.stem.endswith(mask_suffix)]
    if not images:
        raise FileNotFoundError(f"{root} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    missing = [str(p) for p in images if p.stem not in masks]
    if missing:
        raise ImageDecodeError(
            f"{len(missing)} image(s) in {root} have no mask named <stem>{mask_suffix}.<ext>: {_first(missing)}"
        )
    orphans = sorted(masks[stem].name for stem in set(masks) - {p.stem for p in images})
    if orphans:
        warnings.warn(f"ignoring {len(orphans)} mask(s) in {root} without an image: {_first(orphans)}", stacklevel=2)
    pairs = [(p, masks[p.stem]) for p in images]
    _check_pairs(pairs, keep_unreadable)
    rows = []
    for image, mask in pairs:
        car, angle = _car_and_angle(image.stem)
        rows.append(dict(image=_path_entry(image), mask=_path_entry(mask), car_id=car, angle=angle, name=image.name))
    train, validation = _build(rows, validation_fraction, seed)
    return datasets.DatasetDict({"train": train, "validation": validation})


def _hub_offline() -> bool:
    import huggingface_hub.constants

    flag = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("HF_DATASETS_OFFLINE", "")
    return bool(
        huggingface_hub.constants.HF_HUB_OFFLINE
        or datasets.config.HF_HUB_OFFLINE
        or flag.strip().upper() in ("1", "ON", "YES", "TRUE")
    )


def _in_local_cache(name: str) -> bool:
    """Whether the datasets or hub cache holds anything for `name` (an approximation, used only offline)."""
    import huggingface_hub.constants

    hub = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"datasets--{name.replace('/', '--')}"
    processed = Path(datasets.config.HF_DATASETS_CACHE) / name.replace("/", "___")
    return hub.is_dir() or processed.is_dir()


def load_hub_dataset(
    name: str,
    validation_fraction: float = 0.2,
    seed: int = 42,
    revision: str | None = None,
    token: str | bool | None = None,
) -> datasets.DatasetDict:
    """Load a Hub data set with `image` and `mask` columns.

    A `validation` split is used when the data set has one; otherwise `train` is split by `car_id` (or by row
    when there is no `car_id` column). Missing `car_id`/`angle`/`name` columns are filled in.

    Args:
        name: Hub id `ORG/NAME`.
        validation_fraction: Share held out for validation when there is no validation split.
        seed: Seed of that split.
        revision: Branch, tag or commit.
        token: Hub token for private data sets.

    Returns:
        A `DatasetDict` with `train` and `validation`.

    Raises:
        ConnectionError: Offline (`HF_HUB_OFFLINE=1`) with nothing cached, or when the Hub cannot be reached.
        ValueError: If the data set lacks an `image` or `mask` column, or a `train` split.
    """
    how_to_fix = (
        f"download it once while online (e.g. `hf download --repo-type dataset {name}`), unset HF_HUB_OFFLINE, or "
        "use a local folder (--data DIR)"
    )
    if _hub_offline() and not _in_local_cache(name):
        raise ConnectionError(
            f"Hub dataset {name!r} is not in the local cache and HF_HUB_OFFLINE is set; {how_to_fix}"
        )
    try:
        loaded = datasets.load_dataset(name, revision=revision, token=token)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as error:
        raise ConnectionError(f"could not load Hub dataset {name!r}: {error}; {how_to_fix}") from error
    if "train" not in loaded:
        raise ValueError(f"Hub dataset {name!r} has no 'train' split (splits: {list(loaded)})")
    for split_name, split in loaded.items():
        absent = [c for c in ("image", "mask") if c not in split.column_names]
        if absent:
            raise ValueError(
                f"Hub dataset {name!r} split {split_name!r} lacks column(s) {absent}; it has {split.column_names}. "
                "carseg needs an 'image' and a 'mask' column"
            )
    result = {}
    for split_name in ("train", "validation"):
        if split_name not in loaded:
            continue
        split = loaded[split_name]
        for column in ("image", "mask"):
            if not isinstance(split.features[column], datasets.Image):
                split = split.cast_column(column, datasets.Image())
        if "car_id" not in split.column_names:
            split = split.add_column("car_id", [f"{split_name}-{i}" for i in range(len(split))])
        if "angle" not in split.column_names:
            split = split.add_column("angle", [0] * len(split))
        if "name" not in split.column_names:
            split = split.add_column("name", [f"{split_name}-{i:06d}.png" for i in range(len(split))])
        result[split_name] = split
    if "validation" not in result:
        train_ids, _ = split_by_car(result["train"]["car_id"], validation_fraction, seed)
        keep = set(train_ids)
        in_train = [car in keep for car in result["train"]["car_id"]]
        full = result["train"]
        result["train"] = full.select([i for i, flag in enumerate(in_train) if flag])
        result["validation"] = full.select([i for i, flag in enumerate(in_train) if not flag])
    return datasets.DatasetDict(result)


def load_segmentation_dataset(
    data_dir: str | os.PathLike | None = None,
    dataset_name: str | None = None,
    validation_fraction: float = 0.2,
    seed: int = 42,
    mask_suffix: str = PAIR_MASK_SUFFIX,
    keep_unreadable: bool = False,
) -> datasets.DatasetDict:
    """Load data from a Carvana folder, a pair folder or the Hub, detecting the layout.

    Args:
        data_dir: A local folder: the Carvana layout when it has `train/`, otherwise a folder of image/mask pairs.
        dataset_name: A Hub data set id (or a local folder, treated like `data_dir`).
        validation_fraction: Share of cars held out for validation.
        seed: Seed of the split by car.
        mask_suffix: Mask suffix of a pair folder.
        keep_unreadable: For local folders, keep images that fail the header check instead of raising, so that
            the caller can skip and report them when it decodes them (see `load_carvana`).

    Returns:
        A `DatasetDict` with at least `train` and `validation`.

    Raises:
        ValueError: If both or neither of `data_dir` and `dataset_name` are given.
    """
    if (data_dir is None) == (dataset_name is None):
        raise ValueError("pass exactly one of data_dir (a local folder) and dataset_name (a Hub dataset id)")
    if dataset_name is not None and not Path(dataset_name).is_dir():
        return load_hub_dataset(dataset_name, validation_fraction=validation_fraction, seed=seed)
    root = Path(data_dir if data_dir is not None else dataset_name)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {str(root)!r} does not exist")
    split = {"validation_fraction": validation_fraction, "seed": seed, "keep_unreadable": keep_unreadable}
    if (root / "train").is_dir():
        return load_carvana(root, **split)
    return load_pair_folder(root, mask_suffix=mask_suffix, **split)


def entry_source(value: Any) -> Any:
    """Turn a `datasets.Image` value (decoded PIL, or an undecoded {"path", "bytes"} dict) into an image_io input."""
    if isinstance(value, dict):
        if value.get("bytes"):
            try:
                return Image.open(io.BytesIO(value["bytes"]))
            except (Image.UnidentifiedImageError, OSError) as error:
                raise ImageDecodeError(f"{value.get('path') or 'embedded image'}: not a readable image") from error
        if value.get("path"):
            return value["path"]
        raise ImageDecodeError("an image entry has neither bytes nor a path")
    return value


def read_image(value: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an `image` column value to `(height, width, 3)` uint8 through `image_io` (errors name the file).

    Use `dataset.cast_column("image", datasets.Image(decode=False))` so that the file path reaches `image_io`.

    Args:
        value: A `datasets.Image` value (decoded PIL image, or an undecoded `{"path", "bytes"}` dict), or anything
            `image_io.load_rgb` accepts.
        max_pixels: Largest accepted width x height (checked from a file's header before decoding); None for no bound.

    Raises:
        ImageDecodeError: Naming the file and what is wrong.
    """
    return load_rgb(entry_source(value), max_pixels=max_pixels)  # (height, width, 3) uint8


def read_mask(value: Any) -> np.ndarray:
    """Decode a `mask` column value to a `(height, width)` 0/1 uint8 array through `image_io.load_mask`."""
    return load_mask(entry_source(value))
