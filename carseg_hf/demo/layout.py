"""The demo page's Gradio layout: the input and output columns as small builders, and the events between them.

The builders only create components (inside the caller's `gr.Blocks`) and return them grouped; what the events do
is the handlers' business (`carseg_hf.demo.app.make_segment_fn` and `make_preview_fn`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .outputs import DEMO_ZOOM_DEFAULT, METRICS_HEADERS, WELCOME_TEXT, cleared_outputs, error_legend_html


@dataclass
class InputComponents:
    """The components of the input column, in the order the page shows them."""

    image_file: gr.File
    photo: gr.Image
    mask_file: gr.File
    threshold: gr.Slider
    tta: gr.Checkbox
    resolution: gr.Radio
    zoom: gr.Checkbox
    run_button: gr.Button
    examples: gr.Examples | None

    def segment_inputs(self) -> list[Any]:
        """The inputs of `segment`, in the order of its arguments."""
        return [self.image_file, self.mask_file, self.threshold, self.tta, self.resolution, self.zoom]


@dataclass
class OutputComponents:
    """The components of the output column."""

    info: gr.Markdown
    slider: gr.ImageSlider
    errors: gr.Image
    metrics: gr.Dataframe
    mask_download: gr.File
    rle: gr.Textbox

    def segment_outputs(self) -> list[Any]:
        """The outputs of `segment`, in the order of its return value."""
        return [self.slider, self.mask_download, self.rle, self.info, self.metrics, self.errors]


def processor_choice_label(size: dict[str, int], keep_aspect_ratio: bool) -> str:
    """The resolution radio's name for the processor's resize, e.g. `processor 960×640, aspect kept`."""
    label = f"processor {size['width']}×{size['height']}"
    return f"{label}, aspect kept" if keep_aspect_ratio else label


def settings_row(size: dict[str, int], keep_aspect_ratio: bool = False) -> tuple[gr.Checkbox, gr.Radio, gr.Checkbox]:
    """The TTA and zoom checkboxes and the input-resolution radio, side by side.

    Args:
        size: The processor's height and width.
        keep_aspect_ratio: Whether the processor keeps each photo's aspect ratio at that many pixels.
    """
    with gr.Row():
        tta = gr.Checkbox(label="hflip TTA", value=False, min_width=90, scale=1)
        zoom = gr.Checkbox(label="zoom", value=DEMO_ZOOM_DEFAULT, min_width=90, scale=1)
        resolution = gr.Radio(
            [(processor_choice_label(size, keep_aspect_ratio), "processor"), ("native", "native")],
            value="processor",
            label="Input resolution",
            min_width=200,
            scale=3,
        )
    return tta, resolution, zoom


def input_column(
    threshold: float, size: dict[str, int], examples: list[list[str | None]], keep_aspect_ratio: bool = False
) -> InputComponents:
    """The left column: the photo and mask uploads, the settings, the Segment button and the examples.

    Args:
        threshold: The slider's starting value (the processor's threshold).
        size: The processor's input `height` and `width`, named on the resolution radio.
        examples: `[image_path, mask_path_or_None]` rows (see `find_examples`); none gives no examples block.
        keep_aspect_ratio: Whether the processor keeps each photo's aspect ratio (named on the radio).
    """
    with gr.Column(scale=2, min_width=300):
        # gr.File, not gr.Image, so that carseg validates and decodes the upload (specific error messages,
        # pixel limit from the header); the photo itself is shown in `photo` below.
        image_file = gr.File(label="Car photo", type="filepath", height=90, elem_id="carseg-image")
        photo = gr.Image(
            label="Chosen photo", type="filepath", interactive=False, height=200, buttons=[], elem_id="carseg-photo"
        )
        mask_file = gr.File(
            label="Ground-truth mask (optional; GIF/PNG, 0/1, 0/255 or palette)", height=130, elem_id="carseg-mask"
        )
        threshold_slider = gr.Slider(0.01, 0.99, value=threshold, step=0.01, label="Threshold")
        tta, resolution, zoom = settings_row(size, keep_aspect_ratio)
        run_button = gr.Button("Segment", variant="primary")
        example_list = (
            gr.Examples(
                [[image, image, mask] for image, mask in examples],  # the first column shows thumbnails
                inputs=[photo, image_file, mask_file],
                label="Examples (synthetic render + its mask)",
            )
            if examples
            else None
        )
    return InputComponents(
        image_file, photo, mask_file, threshold_slider, tta, resolution, zoom, run_button, example_list
    )


def output_column() -> OutputComponents:
    """The right column: the status line, the before/after and error-map tabs, the metrics and the downloads."""
    with gr.Column(scale=3, min_width=400):
        info = gr.Markdown(WELCOME_TEXT, label="Timing and settings", elem_id="carseg-info")
        with gr.Tabs():
            with gr.Tab("Before / after"):
                slider = gr.ImageSlider(
                    label="Photo / predicted car", type="filepath", max_height=360, elem_id="carseg-slider"
                )
            with gr.Tab("Error map (needs ground truth)"):
                errors = gr.Image(label="Error map", type="filepath", height=330)
                gr.HTML(error_legend_html())
        metrics = gr.Dataframe(
            headers=METRICS_HEADERS,
            datatype=["number"] * len(METRICS_HEADERS),
            label="Metrics against the ground truth (TP/FP/FN: true positive, false positive, false negative)",
            interactive=False,
            row_count=1,
        )
        with gr.Row(equal_height=True):
            mask_download = gr.File(label="Mask PNG (0/255)", height=70, scale=2, min_width=160)
            rle = gr.Textbox(label="Kaggle RLE", lines=2, max_lines=2, buttons=["copy"], interactive=False, scale=3)
    return OutputComponents(info, slider, errors, metrics, mask_download, rle)


def wire_events(
    inputs: InputComponents, outputs: OutputComponents, segment: Callable[..., Any], preview: Callable[..., Any]
) -> None:
    """Connect the events: the button is the public `/segment` endpoint; uploads and examples run it privately."""
    segment_inputs, segment_outputs = inputs.segment_inputs(), outputs.segment_outputs()
    run = {"concurrency_id": "segment"}
    clear = {"fn": cleared_outputs, "inputs": None, "outputs": segment_outputs, "queue": False}
    # each request first empties the outputs, so that one that fails leaves no result of an earlier photo behind
    inputs.run_button.click(**clear, api_visibility="private").then(
        segment, segment_inputs, segment_outputs, api_name="segment", **run
    )
    inputs.image_file.upload(**clear, api_visibility="private").then(
        segment, segment_inputs, segment_outputs, api_visibility="private", **run
    )
    inputs.image_file.change(
        preview, inputs.image_file, inputs.photo, api_visibility="private", show_progress="hidden"
    )
    inputs.image_file.clear(**clear, api_visibility="private")  # no photo, no result
    if inputs.examples is not None:
        inputs.examples.load_input_event.then(**clear, api_visibility="private").then(
            segment, segment_inputs, segment_outputs, api_visibility="private", **run
        )
