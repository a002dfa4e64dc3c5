"""Zoom's decision order, once for every door: which second pass runs after the first (`carseg_hf.zoom`).

The Python API (`Segmenter`), the pipeline, `carseg evaluate` and `carseg predict` each run the network their own way
(numpy probabilities, logits on the device, batched tensors). They hand `run_second_pass` the first pass's mask and
three callables; it decides, in `carseg_hf.zoom`'s order, which pass to run, runs it through those callables and
says which one it kept. Each door then applies the kept pass to its own result: a whole-image pass replaces the
first, a crop's pass is pasted into its box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from .zoom import (
    CropBox,
    close_up_pass_is_kept,
    close_up_size,
    crop_pass_is_plausible,
    largest_region,
    zoom_box,
    zoom_out_size,
)

#: What a door's network pass returns: numpy probabilities, device logits, ...
PassOutput = TypeVar("PassOutput")


@dataclass(frozen=True)
class KeptPass(Generic[PassOutput]):
    """The second pass that zoom kept; exactly one of the three fields after `output` is set.

    Attributes:
        output: The pass's output at the image's size (a whole-image pass) or at `zoom_box.size` (a crop's pass).
        close_up_size: `(height, width)` of the small input of a close-up's whole-image pass.
        zoom_out_size: `(height, width)` of the smaller input of a tall frame's whole-image pass.
        zoom_box: The crop whose pass goes into the first pass's result, inside the box.
    """

    output: PassOutput
    close_up_size: tuple[int, int] | None = None
    zoom_out_size: tuple[int, int] | None = None
    zoom_box: CropBox | None = None


def run_second_pass(
    first: np.ndarray,
    input_size: tuple[int, int],
    processor_size: tuple[int, int] | None,
    keep_aspect_ratio: bool,
    threshold: float,
    *,
    segment_whole: Callable[[tuple[int, int]], PassOutput],
    segment_crop: Callable[[CropBox], PassOutput],
    probabilities_of: Callable[[PassOutput], np.ndarray],
) -> KeptPass[PassOutput] | None:
    """Zoom's second pass, if any: a close-up's check, then a tall frame's zoom out, then a small car's crop.

    Args:
        first: `(height, width)` bool first-pass mask at the image's own size.
        input_size: `(height, width)` of the first pass's network input.
        processor_size: `(height, width)` of the processor's size (or the size a run overrides it with); None at
            native resolution, where the input is the image itself and there is nothing smaller to segment it at.
        keep_aspect_ratio: Whether the processor keeps each image's aspect ratio.
        threshold: The car probability threshold of the masks zoom compares.
        segment_whole: Segments the whole image at exactly this `(height, width)` input; returns the pass at the
            image's size.
        segment_crop: Segments the image's crop in this box at the door's input size for it; returns the pass at the
            box's size.
        probabilities_of: `(height, width)` float car probabilities, on the host, of a pass's output.

    Returns:
        The kept pass, or None when the first pass stands.
    """
    region = largest_region(first)  # labelled once for the three decisions below
    if processor_size is not None:
        check_size = close_up_size(first, processor_size, keep_aspect_ratio, region=region)
        if check_size is not None:
            close_up = segment_whole(check_size)
            if close_up_pass_is_kept(first, probabilities_of(close_up), threshold):
                return KeptPass(close_up, close_up_size=check_size)
        out_size = zoom_out_size(first, input_size, processor_size[0], region=region)
        if out_size is not None:
            return KeptPass(segment_whole(out_size), zoom_out_size=out_size)
    box = zoom_box(first, input_size, region=region)
    if box is None:
        return None
    crop = segment_crop(box)
    if not crop_pass_is_plausible(first[box.slices], probabilities_of(crop) > threshold, box, first.shape):
        return None
    return KeptPass(crop, zoom_box=box)
