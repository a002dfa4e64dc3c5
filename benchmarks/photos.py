"""The photos of a Carvana-layout folder (`train/<car>_<NN>.jpg` with `train_masks/<car>_<NN>_mask.gif`).

The benchmarks that score real photos (`bench_real`, `bench_aspect`, `bench_small_photos`, `bench_error_bands`) list
them here, by the car ids of `carseg_hf.data.carvana.carvana_car_id`, the rule `carseg train` and `evaluate` use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from carseg_hf.data.carvana import carvana_car_id


@dataclass
class Sample:
    """One photo of the benchmark and its ground-truth mask."""

    name: str
    image: Path
    mask: Path


def photos_by_car(data: Path) -> dict[str, list[Path]]:
    """The photos `train/<car>_<NN>.jpg` of `data`, sorted, per car id (`carvana_car_id`, the loader's rule)."""
    photos: dict[str, list[Path]] = {}
    for path in sorted((data / "train").glob("*.jpg")):
        car = carvana_car_id(path.name)
        if car is not None:
            photos.setdefault(car, []).append(path)
    return photos


def list_samples(data: Path, cars: Sequence[str], limit: int | None = None) -> list[Sample]:
    """The photos `train/<car>_<NN>.jpg` of `cars`, in car then angle order, each with its GIF mask.

    Raises:
        FileNotFoundError: If a car has no photo, or a photo has no mask.
    """
    samples = []
    photos = photos_by_car(data)
    for car in cars:
        images = photos.get(car, [])
        if not images:
            raise FileNotFoundError(f"car {car!r} has no photo {data / 'train' / (car + '_NN.jpg')}")
        for image in images:
            mask = data / "train_masks" / f"{image.stem}_mask.gif"
            if not mask.is_file():
                raise FileNotFoundError(f"{image} has no mask {mask}")
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
