"""Typed, UI-free helpers behind the Gradio demo: reading uploads, building overlays, metrics, RLE and downloads.

Nothing here imports gradio: every function takes and returns plain Python, numpy or PIL objects, so that the
logic is unit-tested directly and the app (`carseg_hf.demo.app`) stays a thin layer of components and events.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..image_io import ImageDecodeError, load_mask, load_rgb
from ..inference import SegmentationResult
from ..metrics import confusion_counts, scores_from_counts
from ..overlay import (
    FN_COLOR,
    FP_COLOR,
    PREDICTION_ALPHA,
    PREDICTION_COLOR,
    TP_COLOR,
    error_overlay,
    legend_swatch_html,
    prediction_overlay,
    save_mask_png,
)
from ..rle import rle_encode

#: Tint of the predicted car in the before/after view (amber: distinct from the error map's red, green and blue).
OVERLAY_COLOR = PREDICTION_COLOR
#: Weight of the tint in the before/after view.
OVERLAY_ALPHA = PREDICTION_ALPHA
#: Weight of the colours in the error map.
ERROR_ALPHA = 0.6
#: Inline style of a legend entry of the error map, and of its coloured square (`{rgb}`: the colour).
LEGEND_ENTRY_STYLE = 'style="display:inline-flex;align-items:center;gap:4px;margin-right:14px"'
LEGEND_BOX_STYLE = 'style="width:14px;height:14px;border-radius:3px;background:{rgb};display:inline-block"'
#: Largest upload the demo decodes, in pixels (4096 x 4096, a 16 MP photo); larger files are refused from the header.
DEMO_MAX_PIXELS = 4096 * 4096
#: Largest image fed to the network at its native size, in pixels (2048 x 2048); a Carvana frame is 2.5 MP.
DEMO_MAX_NATIVE_PIXELS = 2048 * 2048
#: Headers of the one-row metrics table: scores, then true-positive, false-positive and false-negative pixel counts.
METRICS_HEADERS = ["dice", "IoU", "precision", "recall", "TP px", "FP px", "FN px"]
#: Decimals of the scores in the metrics table.
METRICS_DECIMALS = 6
#: Longest side of the preview of the chosen photo.
PREVIEW_SIDE = 640
#: What the page says before anything is segmented (uploading or picking an example runs the model at once).
WELCOME_TEXT = (
    "Upload a car photo or pick an example below: it is segmented at once. To run it again with other settings or "
    "with a ground-truth mask, press **Segment**."
)
#: Age after which an empty `tmp*` file in Gradio's cache folder is a leftover: `gr.File(type="filepath")` opens a
#: temporary file there for every upload and never writes or deletes it (gradio 6.31), while an upload in progress
#: fills its own temporary file at once and renames it within the request.
EMPTY_LEFTOVER_AGE_S = 60.0

_EXAMPLE_IMAGE = re.compile(r"^(?P<stem>[0-9A-Za-z]+_\d{2})\.(?:jpg|jpeg|png)$", re.IGNORECASE)


class DemoInputError(ValueError):
    """A problem with what the user uploaded; its message is meant to be shown as is (the app raises `gr.Error`)."""


def display_name(path: str | os.PathLike) -> str:
    """The base name of an uploaded file, as the user knows it (uploads live under long temporary folders)."""
    return Path(path).name


def _user_message(error: ImageDecodeError, path: str | os.PathLike, role: str) -> str:
    """Rewrite an `image_io` error to name the upload by its base name and role."""
    name = display_name(path)
    return f"{role} {str(error).replace(os.fspath(path), name)}"


def read_upload(path: str | os.PathLike | None, max_pixels: int = DEMO_MAX_PIXELS) -> np.ndarray:
    """Validate and decode an uploaded image with `image_io.load_rgb`, under the demo's pixel limit.

    Empty, truncated, non-image and oversized files are refused; an oversized file is refused from its header
    without being decoded. Grayscale, RGBA, palette, CMYK and 16-bit inputs become RGB; EXIF orientation is applied.

    Args:
        path: The uploaded file, or None when nothing was uploaded.
        max_pixels: Largest accepted width x height.

    Returns:
        `(height, width, 3)` uint8 RGB array.

    Raises:
        DemoInputError: With the file's name and what is wrong.
    """
    if path is None:
        raise DemoInputError("Upload a car photo first (JPEG, PNG, GIF, WebP, BMP or TIFF).")
    try:
        return load_rgb(os.fspath(path), max_pixels=max_pixels)  # (height, width, 3) uint8
    except ImageDecodeError as error:
        raise DemoInputError(_user_message(error, path, "Image")) from error


def photo_preview(
    path: str | os.PathLike | None, max_pixels: int = DEMO_MAX_PIXELS, max_side: int = PREVIEW_SIDE
) -> Image.Image | None:
    """A small RGB preview of the chosen photo, for the page to show next to the file input.

    The file is validated and decoded like `read_upload` (EXIF orientation applied). An unusable file gives None:
    the segmentation event reports it with its specific message, so the preview does not repeat it.

    Args:
        path: The uploaded file, or None.
        max_pixels: Largest accepted width x height.
        max_side: Longest side of the preview.

    Returns:
        The preview, at most `max_side` pixels wide and high, or None.
    """
    if path is None:
        return None
    try:
        image = Image.fromarray(read_upload(path, max_pixels))  # (height, width, 3) uint8
    except DemoInputError:
        return None
    image.thumbnail((max_side, max_side), Image.BILINEAR)
    return image


def read_ground_truth(
    path: str | os.PathLike | None, image_shape: tuple[int, ...], max_pixels: int = DEMO_MAX_PIXELS
) -> np.ndarray | None:
    """Read the optional ground-truth mask and check that it matches the image's size.

    Args:
        path: The uploaded mask (GIF or PNG; 0/1, 0/255 or a 0/1 palette), or None.
        image_shape: Shape of the decoded image, `(height, width[, 3])`.
        max_pixels: Largest accepted width x height.

    Returns:
        `(height, width)` uint8 array of 0 and 1, or None when no mask was given.

    Raises:
        DemoInputError: If the mask cannot be read, is not binary, or its size differs from the image's.
    """
    if path is None:
        return None
    try:
        mask = load_mask(os.fspath(path), max_pixels=max_pixels)  # (height, width) 0/1
    except ImageDecodeError as error:
        raise DemoInputError(_user_message(error, path, "Ground-truth mask")) from error
    height, width = image_shape[:2]
    if mask.shape != (height, width):
        raise DemoInputError(
            f"Ground-truth mask {display_name(path)!r} is {mask.shape[1]}x{mask.shape[0]} (width x height) but the "
            f"image is {width}x{height}; upload the mask that belongs to this image, at the same size."
        )
    return mask


def check_native_size(image_shape: tuple[int, ...], max_native_pixels: int = DEMO_MAX_NATIVE_PIXELS) -> None:
    """Refuse to run the network at native size on images larger than `max_native_pixels`.

    Raises:
        DemoInputError: Naming the size, the limit and the way out (the processor resolution).
    """
    height, width = image_shape[:2]
    if height * width > max_native_pixels:
        raise DemoInputError(
            f"The image is {width}x{height} = {width * height:,} pixels; native-size inference is limited to "
            f"{max_native_pixels:,} pixels on this server. Choose the processor resolution instead."
        )


def slider_pair(image: np.ndarray, mask: np.ndarray) -> tuple[Image.Image, Image.Image]:
    """The before/after pair for the image slider: the photo, and the photo with the predicted car tinted.

    Args:
        image: `(height, width, 3)` uint8.
        mask: `(height, width)` 0/1 predicted mask.

    Returns:
        `(original, overlay)` as RGB PIL images of the same size.
    """
    overlay = prediction_overlay(image, mask)  # (height, width, 3) uint8
    return Image.fromarray(image), Image.fromarray(overlay)


def error_map(image: np.ndarray, pred: np.ndarray, target: np.ndarray) -> Image.Image:
    """The error map: false positives red, true positives green, false negatives blue, over the photo.

    Args:
        image: `(height, width, 3)` uint8.
        pred: `(height, width)` predicted mask.
        target: `(height, width)` ground-truth mask.

    Returns:
        An RGB PIL image of the photo's size.
    """
    return Image.fromarray(error_overlay(image, pred, target, alpha=ERROR_ALPHA))


def _legend_entry(color: tuple[int, int, int], label: str) -> str:
    """A legend entry styled inline (the page has no legend classes of its own)."""
    return legend_swatch_html(color, label, entry_attributes=LEGEND_ENTRY_STYLE, box_attributes=LEGEND_BOX_STYLE)


def error_legend_html() -> str:
    """The legend of the error map, built from the colours `carseg_hf.overlay` paints with."""
    return (
        '<div class="carseg-legend">'
        + _legend_entry(FP_COLOR, "false positive")
        + _legend_entry(TP_COLOR, "true positive")
        + _legend_entry(FN_COLOR, "false negative")
        + "</div>"
    )


def metrics_rows(pred: np.ndarray, target: np.ndarray) -> list[list[float | int]]:
    """The metrics table: dice, IoU, precision, recall and pixel counts of one prediction against its ground truth.

    Scores are `carseg_hf.metrics`' own (dice and IoU are 1.0 when both masks are empty), rounded to
    `METRICS_DECIMALS` decimals so that the one-row table stays narrow.

    Args:
        pred: `(height, width)` predicted mask.
        target: `(height, width)` ground-truth mask.

    Returns:
        One row, in the order of `METRICS_HEADERS`.
    """
    counts = confusion_counts(pred, target)
    scores = scores_from_counts(counts)
    rounded = [round(scores[name], METRICS_DECIMALS) for name in ("dice", "iou", "precision", "recall")]
    return [rounded + [counts["tp"], counts["fp"], counts["fn"]]]


def rle_string(mask: np.ndarray) -> str:
    """The mask in Kaggle Carvana run-length encoding (row-major, 1-indexed); `""` for an empty mask."""
    return rle_encode(mask)


def request_dir(scratch_dir: str | os.PathLike) -> Path:
    """A fresh folder in the demo's scratch folder for one request's output files, so that requests never collide.

    The scratch folder itself is (re)created when missing, e.g. after a temp-folder cleaner removed it while the
    server was running.
    """
    Path(scratch_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="request-", dir=scratch_dir))


def write_mask_png(mask: np.ndarray, directory: str | os.PathLike, source_name: str | None = None) -> Path:
    """Write the predicted mask as a 0/255 PNG for download.

    Args:
        mask: `(height, width)` 0/1 mask.
        directory: The request's folder (see `request_dir`).
        source_name: The uploaded image's file name; the PNG is called `<stem>_mask.png` after it.

    Returns:
        The written file.
    """
    stem = Path(source_name).stem if source_name else "car"
    stem = re.sub(r"[^0-9A-Za-z._-]+", "_", stem).strip("_")[:80] or "car"
    return save_mask_png(mask, Path(directory) / f"{stem}_mask.png")


def write_preview(image: Image.Image, directory: str | os.PathLike, name: str) -> str:
    """Write a picture for display as a JPEG file and return its path.

    Files, unlike PIL images, are copied into Gradio's cache atomically (gradio 6.31 rewrites the cached file of a
    returned PIL image in place, so two concurrent requests with the same output can serve a half-written file).

    Args:
        image: An RGB image.
        directory: The request's folder (see `request_dir`).
        name: File name without extension.

    Returns:
        The path of the JPEG.
    """
    path = Path(directory) / f"{name}.jpg"
    image.save(path, format="JPEG", quality=90)
    return str(path)


def prune_scratch(directory: str | os.PathLike, max_age_s: float = 600.0) -> int:
    """Delete entries of the scratch folder older than `max_age_s`, so that disk use does not grow with requests.

    Gradio copies returned files into its own cache before serving them, so old originals are no longer needed.

    Returns:
        The number of entries removed (0 when the folder does not exist; `request_dir` recreates it).
    """
    if not Path(directory).is_dir():
        return 0
    now = time.time()
    removed = 0
    for entry in Path(directory).iterdir():
        try:
            if now - entry.stat().st_mtime < max_age_s:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        except FileNotFoundError:  # removed by a concurrent request
            continue
    return removed


def prune_upload_leftovers(cache_dir: str | os.PathLike, min_age_s: float = EMPTY_LEFTOVER_AGE_S) -> int:
    """Delete the empty `tmp*` files that Gradio leaves at the top of its cache folder (one per uploaded file).

    Gradio's own `delete_cache` never sees them (they are in no component's file set). Only empty regular files
    named `tmp*` and older than `min_age_s` are touched; folders and files with content are Gradio's to manage.

    Args:
        cache_dir: Gradio's cache folder (`gr.Blocks().GRADIO_CACHE`, from `$GRADIO_TEMP_DIR`).
        min_age_s: Files younger than this are kept.

    Returns:
        The number of files removed (0 when the folder does not exist).
    """
    if not Path(cache_dir).is_dir():
        return 0
    now = time.time()
    removed = 0
    for entry in Path(cache_dir).glob("tmp*"):
        try:
            info = entry.lstat()
            if entry.is_file() and not entry.is_symlink() and info.st_size == 0 and now - info.st_mtime >= min_age_s:
                entry.unlink()
                removed += 1
        except FileNotFoundError:  # removed meanwhile
            continue
    return removed


class TempCleaner:
    """Keeps the demo's temporary files bounded: prunes them every `every_s` seconds, and all of them at `stop()`.

    It cleans the demo's scratch folder (per-request output folders older than `max_age_s`; the whole folder at
    `stop()`) and Gradio's empty upload leftovers (see `prune_upload_leftovers`). The timer is a daemon thread.
    """

    def __init__(self, scratch_dir: str | os.PathLike, cache_dir: str | os.PathLike, every_s: float, max_age_s: float):
        """Set up a cleaner; nothing runs before `start()`.

        Args:
            scratch_dir: The demo's scratch folder (see `request_dir`).
            cache_dir: Gradio's cache folder.
            every_s: Seconds between two cleanings.
            max_age_s: Age beyond which a request's output folder is deleted.
        """
        if every_s <= 0 or max_age_s < 0:
            raise ValueError(f"every_s must be > 0 and max_age_s >= 0, got {every_s} and {max_age_s}")
        self.scratch_dir, self.cache_dir = Path(scratch_dir), Path(cache_dir)
        self.every_s, self.max_age_s = every_s, max_age_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def clean(self) -> int:
        """Prune once; returns the number of entries removed."""
        return prune_scratch(self.scratch_dir, self.max_age_s) + prune_upload_leftovers(self.cache_dir)

    def start(self) -> None:
        """Start the timer thread (no-op when it is running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carseg-demo-cleaner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.clean()

    def stop(self) -> None:
        """Stop the timer, delete the whole scratch folder and the upload leftovers (at shutdown)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        shutil.rmtree(self.scratch_dir, ignore_errors=True)
        prune_upload_leftovers(self.cache_dir)


def timing_text(result: SegmentationResult, tta: bool, threshold: float) -> str:
    """One line with the inference time, the device and the settings used.

    Args:
        result: What `Segmenter.segment` returned.
        tta: Whether hflip TTA was on.
        threshold: The probability threshold used.

    Returns:
        Markdown text.
    """
    height, width = result.mask.shape
    net_height, net_width = result.input_size
    return (
        f"**{result.seconds * 1000:.0f} ms** on `{result.device}` · image {width}×{height} · "
        f"network input {net_width}×{net_height} · hflip TTA {'on' if tta else 'off'} · threshold {threshold:.2f} · "
        f"car {100.0 * float(result.mask.mean()):.1f}% of pixels"
    )


def find_examples(directory: str | os.PathLike) -> list[list[str | None]]:
    """Discover bundled examples: `<id>_<NN>.jpg` images, each with its `<id>_<NN>_mask.png` (or `.gif`) if present.

    Args:
        directory: The examples folder; a missing folder gives an empty list.

    Returns:
        Sorted `[image_path, mask_path_or_None]` rows, ready for `gr.Examples`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    rows = []
    for path in sorted(directory.iterdir()):
        match = _EXAMPLE_IMAGE.match(path.name)
        if match is None or not path.is_file():
            continue
        masks = [directory / f"{match['stem']}_mask.{ext}" for ext in ("png", "gif")]
        mask = next((str(m) for m in masks if m.is_file()), None)
        rows.append([str(path), mask])
    return rows
