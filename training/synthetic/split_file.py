"""The `splits.json` of a data folder that the generators add cars to (`composite`, `reframe`).

A folder's `splits.json` must name the split of every car in it (`carseg_hf.data.splits.read_split_file`). When a
generator adds its cars to a folder that has none yet but already holds cars (your own photos, say), writing only
the new cars would leave the others without a split, and training would refuse the folder. So the file is written
for every car: the folder's own cars get the split that training gives them by default (`split_by_car` at its
default validation fraction and seed, which are training's).

No car may fall on two sides: every id made from one car (`<car><tag><k>`, with a tag of `DERIVED_TAGS`, made again
from such ids as often as you like), and the car itself, must share one split. `plan_splits` checks this, and the
old file, before a generator writes anything; the generator then writes the file (`write_splits`) before its images,
so that an interrupted run leaves fewer images, never images without a split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from carseg_hf.atomic_files import write_atomic
from carseg_hf.data.carvana import carvana_images
from carseg_hf.data.splits import SPLIT_SIDES, read_split_names, split_by_car

SPLITS_NAME = "splits.json"
#: The tags that the generators append, with a number, to the id of the car that an image shows: composites `c`,
#: `v` and `h` (`composite.SPLITS`), reframed photos `r` and close-ups `z` (`reframe`).
DERIVED_TAGS = "cvhrz"
_DERIVED_SUFFIX = re.compile(rf"(?:[{DERIVED_TAGS}]\d+)+")


def derived_from(car_id: str, source: str) -> bool:
    """Whether `car_id` is `source` or an id made from it (`source` followed by tags, e.g. `abch0z1` of `abc`)."""
    return car_id == source or (
        car_id.startswith(source) and _DERIVED_SUFFIX.fullmatch(car_id, len(source)) is not None
    )


def _cars_in(folder: Path) -> set[str]:
    """The car ids of the `<car_id>_<NN>.jpg` images of `folder/train`, as the Carvana loader reads them."""
    train = folder / "train"
    return {car for _, car, _ in carvana_images(train)} if train.is_dir() else set()


def read_splits(folder: Path) -> dict[str, str] | None:
    """The `{car_id: "train" | "val" | "test"}` of `folder/splits.json` as written, or None when there is none.

    Raises:
        ValueError: If the file is not such an object, naming it (`read_split_names`).
    """
    path = folder / SPLITS_NAME
    if path.exists() and not path.is_file():
        raise ValueError(f"{path}: not a file; expected a JSON object {{car_id: 'train' | 'val' | 'test'}}")
    return read_split_names(path)


def _roots(source: str, known: set[str]) -> list[str]:
    """`source` and the known cars it was made from, the nearest first."""
    cut = [i for i in range(1, len(source)) if derived_from(source, source[:i])]
    return [source] + [source[:i] for i in sorted(cut, reverse=True) if source[:i] in known]


def _check_families(path: Path, merged: dict[str, str], sources: dict[str, str], defaulted: bool) -> None:
    """Raise `ValueError` if the ids made from one car of `sources`, or the car itself, are on several sides.

    `defaulted` says that `path` does not exist yet, so that the folder's own cars have training's default split.
    """
    new_ids = set(sources)
    for source in sorted(set(sources.values())):
        root = _roots(source, set(merged))[-1]
        family = sorted(car for car in merged if derived_from(car, root))
        if len({SPLIT_SIDES[merged[car]] for car in family}) > 1:
            listed = ", ".join(f"{car} {merged[car]!r}{' (new)' if car in new_ids else ''}" for car in family)
            default = (
                f" ({path.parent} has no {SPLITS_NAME} yet: its own cars take the split that training gives them "
                "by default)"
                if defaulted
                else ""
            )
            raise ValueError(
                f"{path}: the images of car {root} would fall on several sides: {listed}{default}. Every image of a "
                "car, and every image made from it, must share one split, or the car is both trained on and scored; "
                "write these images into another folder, or make them for the split that the car has here"
            )


def plan_splits(
    out: Path, sources: dict[str, str], split: str | None = None, cars_dir: Path | None = None
) -> dict[str, str]:
    """The `splits.json` of `out` with new cars added, checked before anything is written.

    Args:
        out: The data folder the new cars go to.
        sources: `{new car id: the car id it is made from}`.
        split: The split of every new car ("train", "val" or "test"), or None: each new car takes the split of the
            car it is made from in `out`, else in `cars_dir/splits.json`; else that of the nearest car that one was
            made from, likewise; else "train".
        cars_dir: The folder the new cars are made from, for `split=None`.

    Returns:
        `{car_id: split}` for every car of `out`, the new ones included.

    Raises:
        ValueError: If `out/splits.json` (or `cars_dir/splits.json`) is malformed, or if a car's images would fall
            on several sides (see `_check_families`), naming the file, the cars and their splits.
    """
    existing = read_splits(out)
    defaulted = existing is None
    if existing is None:
        own = sorted(_cars_in(out) - set(sources))
        train, validation = split_by_car(own) if own else ([], [])
        existing = {**{car: "train" for car in train}, **{car: "val" for car in validation}}
    merged = dict(existing)
    if split is not None:
        merged.update(dict.fromkeys(sources, split))
    else:
        upstream = read_splits(cars_dir) if cars_dir is not None and cars_dir.resolve() != out.resolve() else None
        for car, source in sources.items():
            merged[car] = _inherited(source, existing, upstream or {})
    _check_families(out / SPLITS_NAME, merged, sources, defaulted)
    return merged


def _inherited(source: str, existing: dict[str, str], upstream: dict[str, str]) -> str:
    """The split of `source`, else of the nearest car it was made from: in `existing`, else `upstream`; or train."""
    for root in _roots(source, set(existing) | set(upstream)):
        for splits in (existing, upstream):
            if root in splits:
                return splits[root]
    return "train"


def write_splits(out: Path, splits: dict[str, str]) -> None:
    """Write `out/splits.json` atomically (whole or not at all)."""
    text = json.dumps(splits, indent=1, sort_keys=True)
    write_atomic(out / SPLITS_NAME, lambda tmp: tmp.write_text(text))
