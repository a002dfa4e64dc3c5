"""The photos of a Carvana-layout folder (`train/<car>_<NN>.jpg` with `train_masks/<car>_<NN>_mask.gif`).

The benchmarks that score real photos (`bench_real`, `bench_aspect`, `bench_small_photos`, `bench_error_bands`) list
them here with the rule `carseg train` and `evaluate` use (`carseg_hf.data.carvana`): photos `<car>_<NN>.jpg`,
`.jpeg` or `.png` in any case (`carvana_images`), each with its mask `<car>_<NN>_mask.gif` or `_mask.png`
(`carvana_mask_file`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from carseg_hf.data.carvana import carvana_images, carvana_mask_file


@dataclass
class Sample:
    """One photo of the benchmark and its ground-truth mask."""

    name: str
    image: Path
    mask: Path


def photos_by_car(data: Path) -> dict[str, list[Path]]:
    """The photos of `data/train`, sorted, per car id (`carvana_images`, the loader's rule).

    Raises:
        FileNotFoundError: If `data/train` does not exist.
    """
    photos: dict[str, list[Path]] = {}
    for path, car, _ in carvana_images(data / "train"):
        photos.setdefault(car, []).append(path)
    return photos


def list_samples(data: Path, cars: Sequence[str], limit: int | None = None) -> list[Sample]:
    """The photos of `cars` in `data/train`, in car then name order, each with its mask from `data/train_masks`.

    Raises:
        FileNotFoundError: If a car has no photo, or a photo has no mask.
    """
    samples = []
    photos = photos_by_car(data)
    masks = data / "train_masks"
    for car in cars:
        images = photos.get(car, [])
        if not images:
            raise FileNotFoundError(f"car {car!r} has no photo {data / 'train' / (car + '_NN.jpg')}")
        for image in images:
            mask = carvana_mask_file(masks, image.stem)
            if mask is None:
                raise FileNotFoundError(f"{image} has no mask {image.stem}_mask.gif (or _mask.png) in {masks}")
            samples.append(Sample(image.name, image, mask))
    return samples[:limit] if limit else samples


def list_photos(data: Path, cars: Sequence[str], every: int) -> list[Sample]:
    """The photos of `cars` (every car in `data/train` when empty) with their masks, every `every`th one.

    Raises:
        FileNotFoundError: If there is no photo, a car has no photo, or a photo has no mask (`list_samples`).
    """
    if not cars:
        cars = sorted(photos_by_car(data))
        if not cars:
            raise FileNotFoundError(f"no photo <car>_<NN>.jpg in {data / 'train'}")
    return list_samples(data, cars)[::every]
