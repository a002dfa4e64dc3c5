"""The fixed by-car split of the 12-car Carvana sample (Kaggle's layout).

The 16 angles of one car are near-duplicates, so the sample is split by car, never by image. The bundled model is
trained on `TRAIN_CARS` and chosen on `VALIDATION_CARS`; every figure on "held-out real cars" is measured on
`VALIDATION_CARS`. The images are Kaggle competition data (non-commercial terms) and are never committed.
"""

from __future__ import annotations

#: The nine cars the bundled model is trained on.
TRAIN_CARS: tuple[str, ...] = (
    "00087a6bd4dc",
    "02159e548029",
    "03a857ce842d",
    "04bd942b463b",
    "0789bed99cb8",
    "0d53224da2b7",
    "0de66245f268",
    "0ee135a3cccc",
    "125cadcb9feb",
)

#: The three held-out cars (a white coupe, a pickup and a black sedan) for validation and model selection.
VALIDATION_CARS: tuple[str, ...] = ("0495dcf27283", "0795e132d090", "0eeaf1ff136d")
