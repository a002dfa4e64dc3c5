"""Evaluation of a model on a segmentation data set: per-image scores, summary, worst-image overlays, HTML report.

Outputs written to `out_dir` by [`evaluate_model`]:

- `per_image.csv`: `image,car_id,angle,dice,iou,precision,recall,fp,fn` (one row per image, data-set order);
- `summary.json`: mean dice, its 5/50/95th percentiles, mean IoU, count, model, data and settings;
- `worst/<name>_overlay.png`: full-size error overlays of the k images with the lowest dice;
- `thumbs/<name>.jpg` and `report.html` (`carseg_hf.evaluation_report`): an error-overlay thumbnail of every image,
  sorted by dice ascending.

Overlay colours: red = false positive, green = true positive, blue = false negative (see `carseg_hf.overlay`).
"""

from __future__ import annotations

import csv
import heapq
import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .data import read_image, read_mask
from .evaluation_prediction import PredictionSettings, predict_batch
from .evaluation_report import write_report
from .image_io import ImageDecodeError
from .image_processing_carseg import CarSegImageProcessor
from .metrics import confusion_counts, scores_from_counts
from .modeling_carseg import CarSegForSemanticSegmentation
from .overlay import error_overlay
from .rle import rle_decode, rle_encode

CSV_COLUMNS = ("image", "car_id", "angle", "dice", "iou", "precision", "recall", "fp", "fn")
RESOLUTIONS = ("processor", "native")


def _thumbnail(overlay: np.ndarray, max_side: int) -> Image.Image:
    image = Image.fromarray(overlay)
    image.thumbnail((max_side, max_side), Image.BILINEAR)
    return image


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


def _safe_stem(name: str) -> str:
    stem = Path(name).stem or "image"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


class _Example(NamedTuple):
    """A decoded data-set row: its index, name, `(height, width, 3)` uint8 image and `(height, width)` 0/1 mask."""

    index: int
    name: str
    image: np.ndarray
    target: np.ndarray
    car_id: str
    angle: int


def _decode_batch(batch: dict[str, list], begin: int) -> tuple[list[_Example], list[dict[str, str]]]:
    """Decode a slice of an undecoded data set; rows that cannot be scored come back as `{"image", "error"}`.

    Args:
        batch: `dataset[begin : begin + n]` with undecoded `image` and `mask` columns.
        begin: Index of the slice's first row.

    Returns:
        `(examples, failed)`: the decoded rows, and the name and reason (naming the file) of each failed row.
    """
    examples, failed = [], []
    for offset, (image_entry, mask_entry) in enumerate(zip(batch["image"], batch["mask"])):
        index = begin + offset
        name = (batch.get("name") or [None] * len(batch["image"]))[offset]
        name = name or os.path.basename((image_entry or {}).get("path") or "") or f"image_{index:06d}.png"
        try:
            image = read_image(image_entry)  # (height, width, 3) uint8
            if mask_entry is None:
                raise ImageDecodeError(f"{name}: no mask could be read for this image")
            target = read_mask(mask_entry)  # (height, width) 0/1
            if image.shape[:2] != target.shape:
                source = (image_entry or {}).get("path") or f"row {index}"
                raise ImageDecodeError(
                    f"{source}: the image is {image.shape[1]}x{image.shape[0]} but its mask is "
                    f"{target.shape[1]}x{target.shape[0]}"
                )
        except ImageDecodeError as error:
            failed.append({"image": name, "error": str(error)})
            continue
        car_id = (batch.get("car_id") or [""] * len(batch["image"]))[offset]
        angle = (batch.get("angle") or [0] * len(batch["image"]))[offset]
        examples.append(_Example(index, name, image, target, car_id, angle))
    return examples, failed


def _score_example(example: _Example, pred: np.ndarray, stem: str, out: Path, thumbnail_size: int) -> dict[str, Any]:
    """Score one prediction, write its report thumbnail, and return its row (scores, fp/fn pixels, thumb, stem)."""
    counts = confusion_counts(pred, example.target)
    thumb = f"thumbs/{stem}.jpg"
    overlay = error_overlay(example.image, pred, example.target)  # (height, width, 3) uint8
    _thumbnail(overlay, thumbnail_size).save(out / thumb, quality=85)
    return {
        "image": example.name,
        "car_id": example.car_id,
        "angle": example.angle,
        **scores_from_counts(counts),
        "fp": counts["fp"],
        "fn": counts["fn"],
        "thumb": thumb,
        "stem": stem,
    }


def _write_per_image_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [row["image"], row["car_id"], row["angle"]]
                + [f"{row[k]:.6f}" for k in ("dice", "iou", "precision", "recall")]
                + [row["fp"], row["fn"]]
            )


def _write_worst_overlays(
    dataset: datasets.Dataset, rows: list[dict[str, Any]], worst_heap: list[tuple[float, int, int, str]], out: Path
) -> list[str]:
    """Write the full-size error overlays of the worst images (lowest dice first); returns their relative paths."""
    worst_dir = out / "worst"
    worst_dir.mkdir(exist_ok=True)
    _remove_earlier_files(worst_dir, "*_overlay.png")
    worst_files = []
    for _, negative_index, position, rle in sorted(worst_heap, reverse=True):  # lowest dice first
        example = dataset[-negative_index]
        image, target = read_image(example["image"]), read_mask(example["mask"])
        pred = rle_decode(rle, target.shape)
        path = worst_dir / f"{rows[position]['stem']}_overlay.png"
        Image.fromarray(error_overlay(image, pred, target)).save(path, compress_level=1)
        worst_files.append(str(path.relative_to(out)))
    return worst_files


def _remove_earlier_files(folder: Path, pattern: str) -> None:
    """Delete the files an earlier evaluation wrote into `folder`, so that the report lists only this run's."""
    for path in folder.glob(pattern):
        if path.is_file():
            path.unlink()


def _scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The score part of `summary.json`: mean dice, its 5/50/95th percentiles, mean IoU and count."""
    dice = np.array([row["dice"] for row in rows], dtype=np.float64)
    return {
        "mean_dice": float(dice.mean()),
        "dice_percentiles": {"5": _percentile(dice, 5), "50": _percentile(dice, 50), "95": _percentile(dice, 95)},
        "mean_iou": float(np.mean([row["iou"] for row in rows])),
        "count": len(rows),
    }


def _check_arguments(dataset: datasets.Dataset, resolution: str, batch_size: int, worst: int) -> None:
    """Refuse an unknown resolution, out-of-range counts, and a data set that is empty or lacks `image` or `mask`."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    if batch_size < 1 or worst < 0:
        raise ValueError(f"batch_size must be >= 1 and worst >= 0, got {batch_size} and {worst}")
    absent = [c for c in ("image", "mask") if c not in dataset.column_names]
    if absent:
        raise ValueError(f"the data set lacks column(s) {absent}; it has {dataset.column_names}")
    if len(dataset) == 0:
        raise ValueError("the data set to evaluate is empty (is the validation split empty? try --split all)")


class _Scoring:
    """What scoring collects as it goes: the rows, the skipped images, and the predictions with the lowest dice.

    Args:
        out: The output folder; its `thumbs/` folder is created here.
        worst: How many of the lowest-dice predictions to keep (as RLE) for the full-size overlays.
        thumbnail_size: Longest side of report thumbnails.
    """

    def __init__(self, out: Path, worst: int, thumbnail_size: int) -> None:
        self.out, self.worst, self.thumbnail_size = out, worst, thumbnail_size
        (out / "thumbs").mkdir(parents=True, exist_ok=True)
        _remove_earlier_files(out / "thumbs", "*.jpg")
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.worst_heap: list[tuple[float, int, int, str]] = []  # (-dice, -index, row, predicted RLE): k lowest dice
        self._used_stems: set[str] = set()

    def _unique_stem(self, example: _Example) -> str:
        """The file-name stem of the image's thumbnail and overlay; the row index is added when it is taken."""
        stem = _safe_stem(example.name)
        stem = f"{stem}_{example.index}" if stem in self._used_stems else stem
        self._used_stems.add(stem)
        return stem

    def add(self, example: _Example, pred: np.ndarray) -> None:
        """Score one prediction, write its thumbnail, and keep its RLE while it is among the `worst` lowest dice."""
        self.rows.append(_score_example(example, pred, self._unique_stem(example), self.out, self.thumbnail_size))
        item = (-self.rows[-1]["dice"], -example.index, len(self.rows) - 1, rle_encode(pred))
        if len(self.worst_heap) < self.worst:
            heapq.heappush(self.worst_heap, item)
        elif self.worst and item > self.worst_heap[0]:
            heapq.heapreplace(self.worst_heap, item)


def _score_dataset(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    dataset: datasets.Dataset,
    scoring: _Scoring,
    batch_size: int,
    settings: PredictionSettings,
    progress: bool,
) -> float:
    """Decode, predict and score an undecoded data set batch by batch into `scoring`; return the seconds it took.

    Args:
        model: The model, switched to eval mode here.
        processor: Its image processor.
        dataset: The data set, with undecoded `image` and `mask` columns.
        scoring: Collects the rows, skipped images and worst predictions.
        batch_size: Images per forward pass.
        settings: How each mask is predicted.
        progress: Show a tqdm progress bar.

    Raises:
        ValueError: If no image at all could be scored (the first reasons are given).
    """
    model.eval()
    start = time.perf_counter()
    bar = tqdm(total=len(dataset), disable=not progress, unit="img", desc="evaluate")
    for begin in range(0, len(dataset), batch_size):
        examples, failed = _decode_batch(dataset[begin : begin + batch_size], begin)
        scoring.skipped += failed
        images = [example.image for example in examples]
        predictions = predict_batch(model, processor, images, settings) if examples else []
        for example, pred in zip(examples, predictions):
            scoring.add(example, pred)
        bar.update(len(examples) + len(failed))
    bar.close()
    if not scoring.rows:
        reasons = "; ".join(entry["error"] for entry in scoring.skipped[:3])
        raise ValueError(f"none of the {len(scoring.skipped)} image(s) could be scored: {reasons}")
    return time.perf_counter() - start


def _write_outputs(
    dataset: datasets.Dataset, scoring: _Scoring, run: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """Write `per_image.csv`, the worst overlays, `summary.json` and `report.html`; return the summary.

    Args:
        dataset: The undecoded data set (the worst images are decoded again for their full-size overlays).
        scoring: The scored rows, skipped images and worst predictions.
        run: What the summary says about the run: model, data, split, resolution, threshold, tta, zoom and device.
        seconds: How long scoring took.
    """
    out, rows = scoring.out, scoring.rows
    _write_per_image_csv(rows, out / "per_image.csv")
    worst_files = _write_worst_overlays(dataset, rows, scoring.worst_heap, out)
    summary = {
        **_scores(rows),
        **run,
        "seconds": round(seconds, 3),
        "images_per_second": round(len(rows) / seconds, 3) if seconds > 0 else None,
        "worst": worst_files,
        "skipped": scoring.skipped,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_report(rows, summary, out / "report.html")
    return summary


def evaluate_model(
    model: CarSegForSemanticSegmentation,
    processor: CarSegImageProcessor,
    dataset: datasets.Dataset,
    out_dir: str | os.PathLike,
    batch_size: int = 4,
    threshold: float | None = None,
    resolution: str = "processor",
    worst: int = 8,
    tta: bool = False,
    zoom: bool = False,
    progress: bool = True,
    model_name: str | None = None,
    data_name: str | None = None,
    split: str | None = None,
    thumbnail_size: int = 256,
) -> dict[str, Any]:
    """Score a model image by image and write the evaluation outputs (see the module docstring).

    Images and masks are decoded through `carseg_hf.image_io`. Predictions are made at the
    processor's size and resized back to each image's size by `post_process_semantic_segmentation`, or at the
    native size with `resolution="native"`; dice is always computed at the original resolution.

    An image that cannot be scored (unreadable image or mask, or a mask of another size) is skipped, and listed
    with the reason (which names the file) under `skipped` in the summary; the others are scored.

    Args:
        model: The model (its device is used).
        processor: Its image processor.
        dataset: A `datasets.Dataset` with `image` and `mask` columns (and optionally `name`, `car_id`, `angle`).
        out_dir: Output folder (created).
        batch_size: Images per forward pass.
        threshold: Probability threshold; defaults to the processor's.
        resolution: `"processor"` or `"native"`.
        worst: Number of full-size overlays of the worst images.
        tta: Horizontal-flip test-time augmentation.
        zoom: Segment a close-up's car once more at a small input, a car that runs off both sides of a tall frame once
            more at a smaller input, and a car that fills little of the frame once more from a crop around it
            (`carseg_hf.zoom`); not at native resolution.
        progress: Show a tqdm progress bar.
        model_name: How to name the model in the summary.
        data_name: How to name the data in the summary.
        split: How to name the split in the summary.
        thumbnail_size: Longest side of report thumbnails.

    Returns:
        The summary dict that is also written to `summary.json`.

    Raises:
        ValueError: If the data set is empty or lacks columns, an argument is out of range, or no image at all
            could be scored (the first reasons are given).
    """
    _check_arguments(dataset, resolution, batch_size, worst)
    scoring = _Scoring(Path(out_dir), worst, thumbnail_size)
    dataset = dataset.cast_column("image", datasets.Image(decode=False)).cast_column(
        "mask", datasets.Image(decode=False)
    )
    settings = PredictionSettings(resolution, threshold, tta, zoom)
    seconds = _score_dataset(model, processor, dataset, scoring, batch_size, settings, progress)
    run = {"model": model_name, "data": data_name, "split": split, "resolution": resolution}
    run.update(threshold=processor.threshold if threshold is None else threshold, tta=tta, zoom=zoom)
    run["device"] = str(next(model.parameters()).device)
    return _write_outputs(dataset, scoring, run, seconds)
