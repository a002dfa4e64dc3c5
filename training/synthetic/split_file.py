"""The `splits.json` of a data folder that the generators add cars to (`composite`, `reframe`).

A folder's `splits.json` must name the split of every car in it (`carseg_hf.data.splits.read_split_file`). When a
generator adds its cars to a folder that has none yet but already holds cars (your own photos, say), writing only
the new cars would leave the others without a split, and training would refuse the folder. So the file is written
for every car: the folder's own cars get the split that training gives them by default (`split_by_car` at its
default validation fraction and seed), and each new car the split of the car it was made from, so that no car's
photos end up on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path

from carseg_hf.data.carvana import carvana_car_id
from carseg_hf.data.splits import split_by_car

SPLITS_NAME = "splits.json"


def _cars_in(folder: Path) -> set[str]:
    """The car ids of the `<car_id>_<NN>.jpg` images of `folder/train`, as the Carvana loader reads them."""
    train = folder / "train"
    ids = (carvana_car_id(path.name) for path in train.iterdir() if path.is_file()) if train.is_dir() else ()
    return {car for car in ids if car is not None}


def merge_splits(out: Path, assignment: dict[str, str], sources: dict[str, str]) -> None:
    """Add the new cars' splits to `out/splits.json`, writing it for every car of `out` when it is new.

    Args:
        out: The data folder the new cars were written to.
        assignment: `{new car id: "train" | "val" | "test"}`, each new car's split when its source car is not in
            `out`.
        sources: `{new car id: the car id it was made from}`.
    """
    path = out / SPLITS_NAME
    if path.is_file():
        existing = json.loads(path.read_text())
    else:
        own = sorted(_cars_in(out) - set(assignment))
        train, validation = split_by_car(own, validation_fraction=0.2, seed=42) if own else ([], [])
        existing = {**{car: "train" for car in train}, **{car: "val" for car in validation}}
    merged = dict(existing)
    for car, split in assignment.items():
        merged[car] = existing.get(sources.get(car, ""), split)  # a new car takes its source car's split
    path.write_text(json.dumps(merged, indent=1, sort_keys=True))
