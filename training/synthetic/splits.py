"""Split by mesh: validation and test cars use meshes that the training cars never use."""

from __future__ import annotations

import numpy as np

#: Default held-out meshes (one road car and two race cars each); every other mesh is for training.
DEFAULT_SPLIT = {
    "val": ("acura-nsx-sz", "car4-trb1", "car1-stock2"),
    "test": ("155-DTM", "car7-trb1", "buggy"),
}
SPLITS = ("train", "val", "test")
#: Share of cars per split (rounded, with at least one car per split that has meshes when there are 3+ cars).
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def parse_split_args(values: list[str] | None) -> dict[str, tuple[str, ...]]:
    """Parse `--split-by-mesh val=a,b test=c,d` into `{"val": ("a", "b"), "test": ("c", "d")}`.

    Raises:
        ValueError: If an item is not `val=...` or `test=...`, a split is given twice (the first list would be
            dropped, moving its meshes into training) or a split names a mesh twice.
    """
    if not values:
        return dict(DEFAULT_SPLIT)
    split: dict[str, tuple[str, ...]] = {"val": (), "test": ()}
    given: set[str] = set()
    for value in values:
        name, sep, meshes = value.partition("=")
        if not sep or name not in ("val", "test"):
            raise ValueError(f"--split-by-mesh item {value!r} must look like val=mesh1,mesh2 or test=mesh3")
        if name in given:
            raise ValueError(f"--split-by-mesh names {name} twice; list all its meshes in one item, e.g. {name}=a,b")
        given.add(name)
        split[name] = tuple(m.strip() for m in meshes.split(",") if m.strip())
        if repeated := sorted({m for m in split[name] if split[name].count(m) > 1}):
            raise ValueError(f"--split-by-mesh names {', '.join(repeated)} twice in {name}; name each mesh once")
    return split


def mesh_splits(available: list[str], held_out: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Assign every available mesh to exactly one split.

    Args:
        available: Mesh names present on disk.
        held_out: `{"val": (...), "test": (...)}`.

    Returns:
        `{"train": [...], "val": [...], "test": [...]}`, sorted; train gets every mesh not held out.

    Raises:
        ValueError: If a held-out mesh is unknown or listed in both val and test.
    """
    val, test = set(held_out.get("val", ())), set(held_out.get("test", ()))
    unknown = (val | test) - set(available)
    if unknown:
        raise ValueError(f"--split-by-mesh names unknown meshes {sorted(unknown)}; available: {sorted(available)}")
    if val & test:
        raise ValueError(f"meshes {sorted(val & test)} are in both val and test; each mesh must be in one split")
    train = [m for m in available if m not in val | test]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def assign_cars(num_cars: int, meshes: dict[str, list[str]], seed: int) -> list[tuple[str, str]]:
    """Give each car index a split and a mesh; meshes cycle within a split in a seeded order.

    Args:
        num_cars: How many cars.
        meshes: From `mesh_splits`.
        seed: The dataset seed.

    Returns:
        `[(split, mesh), ...]` of length `num_cars`; splits interleave so a small run still gets val and test cars.
    """
    rng = np.random.default_rng([int(seed), 7919])
    counts = {s: 0 for s in SPLITS}
    active = [s for s in SPLITS if meshes.get(s)]
    if not active:
        raise ValueError("no meshes to render")
    for s in active:
        counts[s] = int(round(num_cars * SPLIT_FRACTIONS[s]))
        if num_cars >= len(active):
            counts[s] = max(counts[s], 1)
    # Fix the total by adjusting the training share (or the largest one).
    largest = "train" if "train" in active else max(active, key=lambda s: counts[s])
    counts[largest] += num_cars - sum(counts.values())
    while counts[largest] < 0:
        donor = max((s for s in active if s != largest), key=lambda s: counts[s])
        counts[donor] -= 1
        counts[largest] += 1
    orders = {s: [meshes[s][i] for i in rng.permutation(len(meshes[s]))] for s in active}
    labels = [s for s in active for _ in range(counts[s])]
    labels = [labels[i] for i in rng.permutation(len(labels))]
    used = {s: 0 for s in active}
    cars = []
    for split in labels:
        cars.append((split, orders[split][used[split] % len(orders[split])]))
        used[split] += 1
    return cars
