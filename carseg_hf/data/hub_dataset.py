"""Loading a Hub data set with `image` and `mask` columns, failing clearly offline or when the Hub is unreachable."""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from .splits import split_by_car


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


def _download(name: str, revision: str | None, token: str | bool | None) -> datasets.DatasetDict:
    """`datasets.load_dataset(name)`, failing at once offline without a cached copy, and saying how to fix it."""
    how_to_fix = (
        f"download it once while online (e.g. `hf download --repo-type dataset {name}`), unset HF_HUB_OFFLINE, or "
        "use a local folder instead (`carseg train --data-dir DIR`, `carseg evaluate --data DIR`)"
    )
    if _hub_offline() and not _in_local_cache(name):
        raise ConnectionError(
            f"Hub dataset {name!r} is not in the local cache and HF_HUB_OFFLINE is set; {how_to_fix}"
        )
    try:
        return datasets.load_dataset(name, revision=revision, token=token)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as error:
        raise ConnectionError(f"could not load Hub dataset {name!r}: {error}; {how_to_fix}") from error


def _check_columns(name: str, loaded: datasets.DatasetDict) -> None:
    """Require a `train` split, and `image` and `mask` columns in every split."""
    if "train" not in loaded:
        raise ValueError(f"Hub dataset {name!r} has no 'train' split (splits: {list(loaded)})")
    for split_name, split in loaded.items():
        absent = [c for c in ("image", "mask") if c not in split.column_names]
        if absent:
            raise ValueError(
                f"Hub dataset {name!r} split {split_name!r} lacks column(s) {absent}; it has {split.column_names}. "
                "carseg needs an 'image' and a 'mask' column"
            )


def _with_carseg_columns(split: datasets.Dataset, split_name: str) -> datasets.Dataset:
    """Cast `image` and `mask` to `datasets.Image()` and fill in missing `car_id`, `angle` and `name` columns."""
    for column in ("image", "mask"):
        if not isinstance(split.features[column], datasets.Image):
            split = split.cast_column(column, datasets.Image())
    if "car_id" not in split.column_names:
        split = split.add_column("car_id", [f"{split_name}-{i}" for i in range(len(split))])
    if "angle" not in split.column_names:
        split = split.add_column("angle", [0] * len(split))
    if "name" not in split.column_names:
        split = split.add_column("name", [f"{split_name}-{i:06d}.png" for i in range(len(split))])
    return split


def _split_train(
    full: datasets.Dataset, validation_fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split a `train` split by `car_id` into `(train, validation)`."""
    train_ids, _ = split_by_car(full["car_id"], validation_fraction, seed)
    keep = set(train_ids)
    in_train = [car in keep for car in full["car_id"]]
    return (
        full.select([i for i, flag in enumerate(in_train) if flag]),
        full.select([i for i, flag in enumerate(in_train) if not flag]),
    )


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
    loaded = _download(name, revision, token)
    _check_columns(name, loaded)
    result = {
        split_name: _with_carseg_columns(loaded[split_name], split_name)
        for split_name in ("train", "validation")
        if split_name in loaded
    }
    if "validation" not in result:
        result["train"], result["validation"] = _split_train(result["train"], validation_fraction, seed)
    return datasets.DatasetDict(result)
