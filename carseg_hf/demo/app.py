"""The Gradio demo: a thin layer of components and events over the demo's UI-free helpers and `Segmenter`.

`build_demo()` loads the model once and returns a `gr.Blocks` whose one public endpoint, `/segment`, is what the
page's button, the upload event and `gradio_client` all call.
"""

from __future__ import annotations

import atexit
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import DEMO_EXTRA_INSTALL, DemoDependencyError

try:
    import gradio as gr
except ImportError as error:  # gradio is the optional `demo` extra
    raise DemoDependencyError(
        f"the carseg demo needs gradio, which could not be imported ({error}); install the demo extra: "
        f"{DEMO_EXTRA_INSTALL}"
    ) from error

from ..image_io import ImageDecodeError
from ..inference import SegmentationResult, Segmenter
from ..processor_parameters import check_threshold
from .examples import find_examples
from .layout import input_column, output_column, wire_events
from .outputs import DEMO_ZOOM_DEFAULT, error_map, metrics_rows, rle_string, slider_pair, timing_text
from .scratch_files import TempCleaner, request_dir, write_mask_png, write_preview
from .uploads import (
    DEMO_MAX_NATIVE_PIXELS,
    DEMO_MAX_PIXELS,
    DemoInputError,
    check_native_size,
    display_name,
    photo_preview,
    read_ground_truth,
    read_upload,
)

#: Folder of the bundled example renders (`<id>_<NN>.jpg` + `<id>_<NN>_mask.png`); it may be empty or absent.
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
#: Largest upload the server accepts; `build_demo(...).launch()` applies it (413 beyond) unless told otherwise.
MAX_UPLOAD_SIZE = "50mb"
#: Values of the resolution radio.
RESOLUTIONS = ("processor", "native")
#: `(every_s, max_age_s)`: how often temporary files are pruned and how old they may get (Gradio's `delete_cache`).
DELETE_CACHE = (300, 600)


class DemoBlocks(gr.Blocks):
    """The demo's `gr.Blocks`, whose `launch()` applies the demo's limits however it is started.

    `gr.Blocks.launch()` sets no upload limit unless given `max_file_size`, so `launch()` defaults it to
    `max_upload_size`. It also starts `cleaner` (the timer that prunes temporary files), and in a blocking launch
    from the main thread turns SIGTERM into the same clean shutdown as Ctrl-C, so that `close()` and the exit
    handlers delete the temporary files.
    """

    max_upload_size: str | int | None = MAX_UPLOAD_SIZE
    cleaner: TempCleaner | None = None

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        """`gr.Blocks.launch`, with `max_file_size` defaulting to `self.max_upload_size`."""
        kwargs.setdefault("max_file_size", self.max_upload_size)
        if self.cleaner is not None:
            self.cleaner.start()
        blocking = not kwargs.get("prevent_thread_lock", False)
        if blocking and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # leave a host application's own handler alone
                signal.signal(signal.SIGTERM, signal.default_int_handler)  # KeyboardInterrupt: Gradio closes cleanly
        return super().launch(*args, **kwargs)

    def close(self, verbose: bool = True) -> None:
        """`gr.Blocks.close`, then delete the demo's temporary files."""
        super().close(verbose)
        if self.cleaner is not None:
            self.cleaner.stop()


def load_segmenter(model: str | None, device: str) -> Segmenter:
    """Load the model once for the app, with a startup error that says how to pick another model.

    Args:
        model: A folder, a Hub id, or None for `$CARSEG_MODEL` or the bundled default.
        device: `auto`, `cpu`, `cuda` or `cuda:N`.

    Raises:
        FileNotFoundError: If the model folder is missing or incomplete.
    """
    try:
        return Segmenter.from_pretrained(model, device=device)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"cannot start the demo: {error}. Pass --model FOLDER_OR_HUB_ID or set CARSEG_MODEL"
        ) from error


def read_request(
    image_path: str | None,
    mask_path: str | None,
    threshold: float,
    resolution: str,
    max_pixels: int = DEMO_MAX_PIXELS,
    max_native_pixels: int = DEMO_MAX_NATIVE_PIXELS,
) -> tuple[np.ndarray, np.ndarray | None, float, bool]:
    """Check one request's settings and read its uploads.

    Args:
        image_path: The car photo.
        mask_path: Optional ground-truth mask, same size as the photo.
        threshold: Probability threshold, strictly between 0 and 1.
        resolution: One of `RESOLUTIONS`.
        max_pixels: Largest upload decoded.
        max_native_pixels: Largest image run through the network at native size.

    Returns:
        `(image, target, threshold, native)`: the `(height, width, 3)` uint8 photo, the `(height, width)` 0/1 mask
        or None, the threshold as a float, and whether to run at native size.

    Raises:
        DemoInputError: Saying which setting or upload is wrong and why.
    """
    if resolution not in RESOLUTIONS:
        raise DemoInputError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    try:
        threshold = check_threshold(float(threshold))  # a number, or a numeric string from an API client
    except (TypeError, ValueError) as error:
        raise DemoInputError(f"The threshold must lie strictly between 0 and 1, got {threshold!r}.") from error
    image = read_upload(image_path, max_pixels)  # (height, width, 3) uint8
    target = read_ground_truth(mask_path, image.shape, max_pixels)  # (height, width) 0/1 or None
    native = resolution == "native"
    if native:
        check_native_size(image.shape, max_native_pixels)
    return image, target, threshold, native


def page_outputs(
    image: np.ndarray,
    target: np.ndarray | None,
    result: SegmentationResult,
    image_path: str,
    tta: bool,
    threshold: float,
    scratch_dir: str | os.PathLike,
    zoom: bool = False,
) -> tuple[Any, ...]:
    """Write one request's files into a fresh folder of `scratch_dir` and return the six outputs of the page.

    Returns:
        (before/after pair, mask PNG path, Kaggle RLE, timing and device text, metrics rows, error map), the error
        map and metrics empty without a ground truth.
    """
    folder = request_dir(scratch_dir)
    before, after = slider_pair(image, result.mask)
    errors = error_map(image, result.mask, target) if target is not None else None
    return (
        (write_preview(before, folder, "photo"), write_preview(after, folder, "prediction")),
        str(write_mask_png(result.mask, folder, display_name(image_path))),
        rle_string(result.mask),
        timing_text(result, tta, threshold, zoom),
        metrics_rows(result.mask, target) if target is not None else [],
        write_preview(errors, folder, "errors") if errors is not None else None,
    )


def make_segment_fn(
    segmenter: Segmenter,
    scratch_dir: str | os.PathLike,
    max_pixels: int = DEMO_MAX_PIXELS,
    max_native_pixels: int = DEMO_MAX_NATIVE_PIXELS,
):
    """Build the event handler: it keeps no per-request state beyond files in `scratch_dir` that are pruned.

    Args:
        segmenter: The loaded model (thread-safe).
        scratch_dir: Where mask PNGs are written before Gradio copies them into its cache.
        max_pixels: Largest upload decoded.
        max_native_pixels: Largest image run through the network at native size.

    Returns:
        `segment(image_path, mask_path, threshold, tta, resolution, zoom)` returning the six outputs of the page.
    """

    def segment(
        image_path: str | None,
        mask_path: str | None,
        threshold: float,
        tta: bool,
        resolution: str,
        zoom: bool = DEMO_ZOOM_DEFAULT,
    ) -> tuple[Any, ...]:
        """Segment the car in a photo and, given its ground-truth mask, score the prediction.

        Args:
            image_path: The car photo (JPEG, PNG, GIF, WebP...).
            mask_path: Optional ground-truth mask (GIF or PNG; 0/1, 0/255 or palette), same size as the photo.
            threshold: Probability threshold in (0, 1).
            tta: Average with the horizontally flipped prediction.
            resolution: "processor" (the model's input size) or "native" (the photo's own size).
            zoom: Zoom's second pass (`carseg_hf.zoom`): a close-up's car again at a small input, a car that runs
                off both sides of a tall frame again at a smaller input, a small car again from a crop around it.

        Returns:
            (before/after pair, mask PNG path, Kaggle RLE, timing and device text, metrics rows, error map).
        """
        try:
            image, target, threshold, native = read_request(
                image_path, mask_path, threshold, resolution, max_pixels, max_native_pixels
            )
            result = segmenter.segment(image, threshold=threshold, tta=bool(tta), native_size=native, zoom=bool(zoom))
        except (DemoInputError, ImageDecodeError) as error:
            raise gr.Error(str(error), print_exception=False) from error
        except torch.OutOfMemoryError as error:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise gr.Error(
                "Out of memory for this image; choose the processor resolution or a smaller image."
            ) from error
        return page_outputs(image, target, result, image_path, bool(tta), threshold, scratch_dir, bool(zoom))

    return segment


def make_preview_fn(scratch_dir: str | os.PathLike, max_pixels: int = DEMO_MAX_PIXELS):
    """Build the handler that shows the chosen photo: `preview(image_path)` returns a JPEG path, or None.

    Args:
        scratch_dir: Where the preview JPEG is written (pruned with the other output files).
        max_pixels: Largest upload decoded.
    """

    def preview(image_path: str | None) -> str | None:
        image = photo_preview(image_path, max_pixels)  # None for no file or an unusable one (segment reports it)
        return None if image is None else write_preview(image, request_dir(scratch_dir), "preview")

    return preview


def build_demo(
    model: str | None = None,
    device: str = "auto",
    max_pixels: int = DEMO_MAX_PIXELS,
    max_native_pixels: int = DEMO_MAX_NATIVE_PIXELS,
    concurrency_limit: int = 2,
    max_queue_size: int = 64,
    examples_dir: str | os.PathLike | None = None,
    max_upload_size: str | int | None = MAX_UPLOAD_SIZE,
    delete_cache: tuple[int, int] = DELETE_CACHE,
) -> DemoBlocks:
    """Build the car-segmentation demo, loading the model once.

    Args:
        model: A model folder or Hub id; None reads `$CARSEG_MODEL`, else the bundled default model.
        device: `auto`, `cpu`, `cuda` or `cuda:N`.
        max_pixels: Largest upload decoded; larger files are refused from their header.
        max_native_pixels: Largest image run at native resolution.
        concurrency_limit: Requests processed at once (the forward pass itself is serialised by `Segmenter`).
        max_queue_size: Requests waiting beyond which new ones are refused with "queue full".
        examples_dir: Folder of `<id>_<NN>.jpg` + `<id>_<NN>_mask.png` examples; defaults to the bundled ones.
        max_upload_size: Largest upload `.launch()` accepts (e.g. `"50mb"` or bytes; None for no limit); larger
            ones are refused with HTTP 413 before they reach the app. `launch(max_file_size=...)` overrides it.
        delete_cache: `(every_s, max_age_s)`: every `every_s` seconds once launched, output files older than
            `max_age_s` are deleted (Gradio's cache, the demo's own output folders, Gradio's empty upload
            leftovers); all of them at `close()`, at exit, and on SIGTERM in a blocking launch.

    Returns:
        The queued `gr.Blocks`, ready for `.launch()`.

    Raises:
        FileNotFoundError: If the model folder is missing or incomplete.
    """
    segmenter = load_segmenter(model, device)
    scratch_dir = tempfile.mkdtemp(prefix="carseg-demo-")
    segment = make_segment_fn(segmenter, scratch_dir, max_pixels, max_native_pixels)
    preview = make_preview_fn(scratch_dir, max_pixels)
    examples = find_examples(EXAMPLES_DIR if examples_dir is None else examples_dir)

    with DemoBlocks(title="carseg: car segmentation", delete_cache=delete_cache) as demo:
        gr.Markdown(
            "### carseg: car segmentation (Carvana) — upload a car photo; add its ground-truth mask for dice, IoU "
            "and an error map"
        )
        with gr.Row(equal_height=False):
            processor = segmenter.processor
            inputs = input_column(processor.threshold, processor.size, examples, processor.keep_aspect_ratio)
            outputs = output_column()
        wire_events(inputs, outputs, segment, preview)

    demo.max_upload_size = max_upload_size
    demo.cleaner = TempCleaner(scratch_dir, demo.GRADIO_CACHE, *delete_cache)
    atexit.register(demo.cleaner.stop)
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue_size)
    return demo
