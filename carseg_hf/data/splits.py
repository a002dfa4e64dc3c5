"""Splitting rows into `train`, `validation` (and `heldout`) data sets, by car or by an explicit `splits.json`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from .files import first_few

#: Names used in `splits.json` (written by `training.synthetic`) and the DatasetDict splits they become: the side of
#: the data a car falls on ("val" and "validation" are one side).
SPLIT_SIDES = {"train": "train", "val": "validation", "validation": "validation", "test": "heldout"}


def dataset_features(with_mask: bool = True) -> datasets.Features:
    """The columns of every loaded split: `image`, `mask` (unless `with_mask` is False), `car_id`, `angle`, `name`."""
    columns = {"image": datasets.Image()}
    if with_mask:
        columns["mask"] = datasets.Image()
    columns.update(car_id=datasets.Value("string"), angle=datasets.Value("int32"), name=datasets.Value("string"))
    return datasets.Features(columns)


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


def _to_dataset(rows: list[dict[str, Any]], features: datasets.Features) -> datasets.Dataset:
    return datasets.Dataset.from_dict({c: [row[c] for row in rows] for c in features}, features=features)


def split_rows_by_car(
    rows: list[dict[str, Any]], validation_fraction: float, seed: int, with_mask: bool = True
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split rows by car (see `split_by_car`) and turn them into train and validation datasets.

    Warns when there are too few cars for a validation split; the warning names the loader's caller, so call this
    from the loader itself.
    """
    train_ids, _ = split_by_car([row["car_id"] for row in rows], validation_fraction, seed)
    train_set = set(train_ids)
    if validation_fraction > 0 and len(train_ids) == len({row["car_id"] for row in rows}):
        warnings.warn(f"only {len(train_ids)} car(s): the validation split is empty", stacklevel=3)
    features = dataset_features(with_mask)
    return (
        _to_dataset([row for row in rows if row["car_id"] in train_set], features),
        _to_dataset([row for row in rows if row["car_id"] not in train_set], features),
    )


def read_split_names(path: Path) -> dict[str, str] | None:
    """Read a `{car_id: "train" | "val" | "test"}` file as written, checking its split names; None when absent.

    Returns:
        `{car_id: split}` with the split names of the file (keys of `SPLIT_SIDES`).

    Raises:
        ValueError: If the file is not UTF-8 JSON, not an object, or names an unknown split, naming the file.
    """
    if not path.is_file():
        return None
    expected = "expected a JSON object {car_id: 'train' | 'val' | 'test'}"
    try:
        assignment = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error}); {expected}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); {expected}") from error
    if not isinstance(assignment, dict):
        raise ValueError(f"{path}: {expected}")
    bad = sorted({str(v) for v in assignment.values()} - set(SPLIT_SIDES))
    if bad:
        raise ValueError(f"{path}: unknown split names {bad}; expected train, val or test")
    return assignment


def read_split_file(path: Path, car_ids: set[str]) -> dict[str, str] | None:
    """Read a `{car_id: "train" | "val" | "test"}` file, checking that it covers every car; None when absent.

    Returns:
        `{car_id: split}` with the split named as in the DatasetDict (`train`, `validation` or `heldout`).

    Raises:
        ValueError: If the file is malformed (`read_split_names`) or lacks one of `car_ids`, naming the file.
    """
    assignment = read_split_names(path)
    if assignment is None:
        return None
    missing = sorted(car_ids - set(assignment))
    if missing:
        raise ValueError(f"{path}: {len(missing)} car(s) have no split: {first_few(missing)}")
    return {car: SPLIT_SIDES[split] for car, split in assignment.items()}


def assigned_splits(rows: list[dict[str, Any]], assignment: dict[str, str]) -> dict[str, datasets.Dataset]:
    """Turn rows into the splits named by an explicit car assignment (e.g. held-out meshes of synthetic data).

    `train` and `validation` are always there; `heldout` only when some car is assigned to it.
    """
    features = dataset_features(True)
    splits = {}
    for name in ("train", "validation", "heldout"):
        selected = [row for row in rows if assignment[row["car_id"]] == name]
        if selected or name != "heldout":
            splits[name] = _to_dataset(selected, features)
    return splits
