"""Typed, UI-free helpers behind the Gradio demo, in one namespace: uploads, outputs, scratch files and examples.

Nothing here imports gradio: every function takes and returns plain Python, numpy or PIL objects, so that the
logic is unit-tested directly and the app (`carseg_hf.demo.app`) stays a thin layer of components and events.
Each helper is defined in the module of its concern and importable from there too:

- `carseg_hf.demo.uploads`: reading and checking the photo and the ground-truth mask (`DemoInputError`).
- `carseg_hf.demo.outputs`: the before/after pair, error map and legend, metrics table, RLE and timing line.
- `carseg_hf.demo.scratch_files`: per-request output folders, the files written there, and `TempCleaner`.
- `carseg_hf.demo.examples`: discovering the bundled examples.
"""

from __future__ import annotations

from .examples import find_examples
from .outputs import (
    DEMO_ZOOM_DEFAULT,
    ERROR_ALPHA,
    LEGEND_BOX_STYLE,
    LEGEND_ENTRY_STYLE,
    METRICS_DECIMALS,
    METRICS_HEADERS,
    NO_RESULT_TEXT,
    OVERLAY_ALPHA,
    OVERLAY_COLOR,
    WELCOME_TEXT,
    cleared_outputs,
    error_legend_html,
    error_map,
    metrics_rows,
    rle_string,
    slider_pair,
    timing_text,
    zoom_text,
)
from .scratch_files import (
    EMPTY_LEFTOVER_AGE_S,
    TempCleaner,
    prune_scratch,
    prune_upload_leftovers,
    request_dir,
    write_mask_png,
    write_preview,
)
from .uploads import (
    DEMO_MAX_NATIVE_PIXELS,
    DEMO_MAX_PIXELS,
    PREVIEW_SIDE,
    DemoInputError,
    check_native_size,
    display_name,
    photo_preview,
    read_ground_truth,
    read_upload,
)

__all__ = [
    "DEMO_MAX_NATIVE_PIXELS",
    "DEMO_MAX_PIXELS",
    "DEMO_ZOOM_DEFAULT",
    "EMPTY_LEFTOVER_AGE_S",
    "ERROR_ALPHA",
    "LEGEND_BOX_STYLE",
    "LEGEND_ENTRY_STYLE",
    "METRICS_DECIMALS",
    "METRICS_HEADERS",
    "NO_RESULT_TEXT",
    "OVERLAY_ALPHA",
    "OVERLAY_COLOR",
    "PREVIEW_SIDE",
    "WELCOME_TEXT",
    "DemoInputError",
    "TempCleaner",
    "check_native_size",
    "cleared_outputs",
    "display_name",
    "error_legend_html",
    "error_map",
    "find_examples",
    "metrics_rows",
    "photo_preview",
    "prune_scratch",
    "prune_upload_leftovers",
    "read_ground_truth",
    "read_upload",
    "request_dir",
    "rle_string",
    "slider_pair",
    "timing_text",
    "zoom_text",
    "write_mask_png",
    "write_preview",
]
