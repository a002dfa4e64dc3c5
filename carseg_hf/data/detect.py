"""Loading data from a Carvana folder, a pair folder or the Hub, detecting which it is."""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from ..image_io import PAIR_MASK_SUFFIX
from .carvana import load_carvana
from .hub_dataset import load_hub_dataset
from .pair_folder import load_pair_folder


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
