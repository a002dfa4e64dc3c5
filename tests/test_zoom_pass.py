"""Zoom's decision order (`run_second_pass`): which pass runs, in which order, and which one is kept.

The doors' network passes are the callables the function takes; here they return set probabilities, and each call
is recorded, so that a test sees which passes ran. The doors themselves are compared with one another in
tests/test_zoom*.py and tests/test_bundled_model.py.
"""

from __future__ import annotations

import numpy as np

from carseg_hf.zoom import CropBox, zoom_box
from carseg_hf.zoom_pass import KeptPass, run_second_pass

#: A 1280x1918 photo whose first pass ran at the bundled model's 640x960 input.
PHOTO = (1280, 1918)
INPUT = (640, 960)


def _box(shape: tuple[int, int], top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:bottom, left:right] = True
    return mask


class _Passes:
    """Set outputs for the whole image and for crops, and a log of every pass asked for."""

    def __init__(self, whole: np.ndarray | None = None, crop_value: float | None = None) -> None:
        self.whole = whole
        self.crop_value = crop_value
        self.calls: list[tuple[str, object]] = []

    def segment_whole(self, size: tuple[int, int]) -> np.ndarray:
        self.calls.append(("whole", size))
        return self.whole

    def segment_crop(self, box: CropBox) -> np.ndarray:
        """A car centred in the crop, off its edges (plausible), or the crop filled with `crop_value`."""
        self.calls.append(("crop", box))
        height, width = box.size
        if self.crop_value is not None:
            return np.full((height, width), self.crop_value, np.float32)
        return _box((height, width), height // 3, 2 * height // 3, width // 3, 2 * width // 3).astype(np.float32)

    def run(
        self,
        first: np.ndarray,
        processor_size: tuple[int, int] | None = INPUT,
        input_size: tuple[int, int] = INPUT,
    ) -> KeptPass | None:
        return run_second_pass(
            first,
            input_size if processor_size else first.shape,  # at native resolution the input is the image
            processor_size,
            True,
            0.5,
            segment_whole=self.segment_whole,
            segment_crop=self.segment_crop,
            probabilities_of=lambda output: output,
        )


def test_a_small_car_inside_the_frame_gets_only_a_crop_pass():
    first = _box(PHOTO, 600, 800, 800, 1100)
    passes = _Passes()
    kept = passes.run(first)
    assert passes.calls == [("crop", zoom_box(first, INPUT))]  # no close-up check: the car does not touch an edge
    assert kept is not None and kept.zoom_box == zoom_box(first, INPUT)
    assert kept.close_up_size is None and kept.zoom_out_size is None
    assert kept.output.shape == kept.zoom_box.size


def test_a_crop_pass_that_runs_to_the_crop_edges_is_dropped():
    passes = _Passes(crop_value=0.9)  # the whole crop labelled car: a false positive grown, not a car found
    assert passes.run(_box(PHOTO, 600, 800, 800, 1100)) is None
    assert [kind for kind, _ in passes.calls] == ["crop"]


def test_a_sure_close_up_replaces_the_first_pass_and_ends_the_order():
    first = _box(PHOTO, 900, 1280, 0, 300)  # a patch in the corner: the first pass missed most of a close-up
    whole = np.where(_box(PHOTO, 200, 1280, 0, 1918), 0.99, 0.01).astype(np.float32)
    passes = _Passes(whole=whole)
    kept = passes.run(first)
    assert passes.calls == [("whole", (256, 384))]  # 0.4 of 640x960, aspect kept; no crop pass after it
    assert kept is not None and kept.close_up_size == (256, 384) and kept.output is whole
    assert kept.zoom_box is None and kept.zoom_out_size is None


def test_an_unsure_close_up_is_dropped_and_the_order_goes_on():
    first = _box(PHOTO, 900, 1280, 0, 300)
    whole = np.where(_box(PHOTO, 200, 1280, 0, 1918), 0.9, 0.01).astype(np.float32)  # mean 0.9 < 0.97
    passes = _Passes(whole=whole)
    kept = passes.run(first)
    assert [kind for kind, _ in passes.calls] == ["whole", "crop"]
    assert kept is not None and kept.zoom_box is not None


def test_a_car_cut_by_both_sides_of_a_portrait_frame_is_zoomed_out():
    portrait = (1920, 1080)
    first = _box(portrait, 700, 1300, 0, 1080)  # touches the left and right edges
    passes = _Passes(whole=np.zeros(portrait, np.float32))  # the close-up check finds nothing: not kept
    kept = passes.run(first, input_size=(1280, 704))  # the portrait's first input, taller than 1.2 x 640
    assert passes.calls == [("whole", (416, 224)), ("whole", (768, 416))]
    assert kept is not None and kept.zoom_out_size == (768, 416) and kept.close_up_size is None


def test_at_native_resolution_no_whole_image_pass_runs():
    passes = _Passes(whole=np.ones(PHOTO, np.float32))
    assert passes.run(_box(PHOTO, 900, 1280, 0, 300), processor_size=None) is None  # the crop would be the image
    assert passes.calls == []
