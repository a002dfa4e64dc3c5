"""Zoom's second pass: segment a car once more where the first pass saw it at a scale the network did not learn.

Three kinds of pass are tried in this order, and the first that applies is the one second pass: a close-up's whole
image at a small input, a tall frame's whole image at a smaller input, a crop around a small car. The paragraphs
below describe them in the opposite order.

The network sees a photo at its processor's size (640x960 for the bundled model), so in a 1918x1280 photo a car a
fifth of the frame wide is about 190 input pixels across, and its outline is drawn from half the photo's detail.
With zoom on, the first pass's mask picks the car (its largest connected region), and a crop around that region,
with the photo's aspect ratio, is segmented again at up to the photo's own resolution. Inside the crop the second
pass's result replaces the first; outside it the first pass stands.

The crop's pass is kept only if it is plausible (`crop_pass_is_plausible`): the crop has a margin around the region,
so a car found in it stays off the crop's edges. When the first pass's largest region is a false positive (part of
a boat, say), the crop's pass may instead label much of the crop car, out to its edges; then the first pass stands.

The crop is never smaller than the network's input, so the second pass never sees the photo enlarged (enlarged
crops look like nothing the network was trained on, and it fails on them). When the crop would span
`ZOOM_SKIP_FRACTION` or more of the frame's height or width, there is little to gain and no second pass runs: so
Carvana-style photos, where the car fills the frame, and photos no larger than the network's input, cost nothing.

Zoom also works the other way (`zoom_out_size`). A portrait frame keeps its aspect ratio and about as many input
pixels as the landscape input, so its input is taller (1056x576 for a 9:16 photo and a 640x960 processor). A car
that runs off both side edges of such a frame then appears up to 1.6 times larger than the network learnt cars, and
its outline suffers. When the first pass's largest region touches the left and the right edge of a frame whose
input is taller than `ZOOM_OUT_HEIGHT_RATIO` times the processor's height, the whole image is segmented again at
that height, with its aspect ratio, and that pass replaces the first. A whole car inside a portrait frame (a street
photo) never touches both sides, so it keeps the larger input, which it needs.

Close-ups come first (`close_up_size`, `close_up_pass_is_kept`). When the car is much larger than the frame (the
front of a car, a door, a bonnet), the network at its usual input sees large smooth panels at a scale it never
learnt, and it can miss most of the car. So when the first pass's largest region touches an edge of the image, or
the first pass finds no car, the whole image is checked again at a small input, `CLOSE_UP_SCALE` of the processor's
height and width (256x384 for a 640x960 processor, with the image's aspect ratio: a sixth of the pixels), where such
a car looks like the cars the network learnt. A car found inside the frame is whole and is never checked: at the
small input, background next to it (a blurred road, a guard rail) can join it and run to the edges. The check's
pass replaces the first when it labels at least `CLOSE_UP_MIN_GAIN` more of the image car, its largest region
touches at least `CLOSE_UP_MIN_EDGES` edges, as a close-up's car does, and its mean probability over the pixels it
labels car is at least `CLOSE_UP_MIN_CONFIDENCE` (a car seen at the scale the network learnt is segmented with
near certainty; cups, clocks and textures that it half-takes for car at that scale are not); then no other second
pass runs. Otherwise the first pass stands and zoom goes on as above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .sizes import aspect_preserving_size, nearest_multiple

#: Margin of the crop around the car's box, as a fraction of the box's longer side.
ZOOM_MARGIN = 0.15
#: No second pass when the crop would span this fraction of the frame's height or width, or more.
ZOOM_SKIP_FRACTION = 0.8
#: The crop's pass is dropped when it labels car on more of the crop's edge pixels than the first pass, by this much.
ZOOM_MAX_EXTRA_EDGE_SHARE = 0.05
#: Zoom out: the most input rows, as a multiple of the processor's height, for a frame whose car runs off both sides.
ZOOM_OUT_HEIGHT_RATIO = 1.2
#: Close-ups: the check's input is this fraction of the processor's height and width (its pixel count, kept aspect).
CLOSE_UP_SCALE = 0.4
#: Close-ups: the check's pass replaces the first when it labels at least this much more of the image car ...
CLOSE_UP_MIN_GAIN = 0.1
#: ... and its largest region touches at least this many of the image's four edges ...
CLOSE_UP_MIN_EDGES = 2
#: ... and its mean car probability over the pixels it labels car is at least this.
CLOSE_UP_MIN_CONFIDENCE = 0.97


@dataclass(frozen=True)
class CropBox:
    """A crop of an image, in pixels: rows `top:bottom`, columns `left:right`."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """`(rows, columns)` slices that cut the crop out of a `(height, width, ...)` array."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def size(self) -> tuple[int, int]:
        """`(height, width)` of the crop."""
        return self.bottom - self.top, self.right - self.left


def largest_region(mask: np.ndarray) -> np.ndarray | None:
    """The largest 4-connected region of a mask, or None when the mask is empty.

    Args:
        mask: `(height, width)` bool or 0/1 array.

    Returns:
        `(height, width)` bool array of the largest region.
    """
    labels, count = ndimage.label(mask)  # (height, width) int32, 0 = background
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]  # (count,) pixels per region
    return labels == 1 + int(np.argmax(sizes))


def zoom_box(
    mask: np.ndarray,
    input_size: tuple[int, int],
    margin: float = ZOOM_MARGIN,
    skip_fraction: float = ZOOM_SKIP_FRACTION,
    *,
    region: np.ndarray | None = None,
) -> CropBox | None:
    """Where to segment again: a crop around the largest region of the first pass's mask, or None for nowhere.

    Args:
        mask: `(height, width)` first-pass mask at the image's own size.
        input_size: `(height, width)` of the network input the first pass used; the crop is at least this large.
        margin: Margin around the region's box, as a fraction of the box's longer side.
        skip_fraction: Return None when the crop would span this fraction of the image's height or width, or more.
        region: `largest_region(mask)`, when the caller has it already (labelling a full-size mask is not free);
            None computes it.

    Returns:
        The crop, with the image's aspect ratio (up to rounding) and inside the image; None when the mask is empty
        or the crop would be too large to be worth a second pass.
    """
    region = largest_region(mask) if region is None else region
    if region is None:
        return None
    height, width = region.shape
    rows, columns = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    pad = margin * max(bottom - top, right - left)
    crop_height, crop_width = bottom - top + 2 * pad, right - left + 2 * pad
    if crop_width / crop_height < width / height:  # widen or heighten to the image's aspect ratio
        crop_width = crop_height * width / height
    else:
        crop_height = crop_width * height / width
    crop_height, crop_width = max(crop_height, input_size[0]), max(crop_width, input_size[1])
    if crop_height >= skip_fraction * height or crop_width >= skip_fraction * width:
        return None
    crop_height, crop_width = round(crop_height), round(crop_width)
    center_row, center_column = (top + bottom) / 2, (left + right) / 2
    crop_top = round(min(max(center_row - crop_height / 2, 0), height - crop_height))
    crop_left = round(min(max(center_column - crop_width / 2, 0), width - crop_width))
    return CropBox(crop_top, crop_top + crop_height, crop_left, crop_left + crop_width)


def edge_share(mask: np.ndarray, box: CropBox, image_size: tuple[int, int]) -> float:
    """The share of a crop's edge pixels labelled car, over the crop's edges that are not the image's own edges.

    Args:
        mask: `(crop_height, crop_width)` mask of the crop.
        box: Where the crop lies in the image.
        image_size: `(height, width)` of the image.

    Returns:
        A share in [0, 1]; 0 when every edge of the crop is an edge of the image.
    """
    edges = []
    if box.top > 0:
        edges.append(mask[0, :])
    if box.bottom < image_size[0]:
        edges.append(mask[-1, :])
    if box.left > 0:
        edges.append(mask[:, 0])
    if box.right < image_size[1]:
        edges.append(mask[:, -1])
    return float(np.concatenate(edges).astype(bool).mean()) if edges else 0.0


def crop_pass_is_plausible(
    first: np.ndarray,
    second: np.ndarray,
    box: CropBox,
    image_size: tuple[int, int],
    max_extra_edge_share: float = ZOOM_MAX_EXTRA_EDGE_SHARE,
) -> bool:
    """Whether the crop's pass may replace the first pass inside the crop.

    Args:
        first: `(crop_height, crop_width)` first-pass mask inside the crop.
        second: `(crop_height, crop_width)` mask of the crop's own pass.
        box: Where the crop lies in the image.
        image_size: `(height, width)` of the image.
        max_extra_edge_share: How much more of the crop's edges the second pass may label car than the first.

    Returns:
        False when the second pass labels car on more of the crop's edges than the first pass did, by more than
        `max_extra_edge_share`.
    """
    return edge_share(second, box, image_size) <= edge_share(first, box, image_size) + max_extra_edge_share


def zoom_out_size(
    mask: np.ndarray,
    input_size: tuple[int, int],
    processor_height: int,
    height_ratio: float = ZOOM_OUT_HEIGHT_RATIO,
    multiple: int = 32,
    *,
    region: np.ndarray | None = None,
) -> tuple[int, int] | None:
    """The smaller input for a second pass of the whole image, or None when the first pass stands.

    Args:
        mask: `(height, width)` first-pass mask at the image's own size.
        input_size: `(height, width)` of the network input the first pass used.
        processor_height: The height of the processor's `size` (640 for the bundled model).
        height_ratio: The second pass's input height is this times `processor_height`, rounded to `multiple`.
        multiple: Each side of the result is a multiple of this (the network's stride).
        region: `largest_region(mask)`, when the caller has it already; None computes it.

    Returns:
        `(height, width)` with about the first input's aspect ratio, when the first input is taller than that height
        and the largest region of `mask` touches both the left and the right edge of the image; else None.
    """
    max_height = nearest_multiple(height_ratio * processor_height, multiple)
    height, width = input_size
    if height <= max_height:
        return None
    region = largest_region(mask) if region is None else region
    if region is None or not (region[:, 0].any() and region[:, -1].any()):
        return None
    return max_height, nearest_multiple(width * max_height / height, multiple)


def edges_touched(region: np.ndarray) -> int:
    """How many of an image's four edges a `(height, width)` bool region touches."""
    return sum(bool(edge.any()) for edge in (region[0], region[-1], region[:, 0], region[:, -1]))


def close_up_size(
    mask: np.ndarray,
    processor_size: tuple[int, int],
    keep_aspect_ratio: bool = True,
    scale: float = CLOSE_UP_SCALE,
    multiple: int = 32,
    *,
    region: np.ndarray | None = None,
) -> tuple[int, int] | None:
    """The small input of the close-up check's pass of the whole image, or None when the first pass needs no check.

    Args:
        mask: `(height, width)` first-pass mask at the image's own size.
        processor_size: `(height, width)` of the processor's `size` (or the input size a run overrides it with).
        keep_aspect_ratio: Whether the processor keeps each image's aspect ratio (then so does the check's input).
        scale: The check's input is this fraction of `processor_size`'s height and width.
        multiple: Each side of the result is a multiple of this (the network's stride).
        region: `largest_region(mask)`, when the caller has it already; None computes it.

    Returns:
        `(height, width)`, e.g. `(256, 384)` for a 3:2 photo and a 640x960 processor, `(416, 224)` for 9:16, when the
        first pass finds no car or its largest region touches an edge of the image; else None (a car found inside the
        frame is whole: no close-up).
    """
    region = largest_region(mask) if region is None else region
    if region is not None and edges_touched(region) == 0:
        return None
    target = tuple(nearest_multiple(scale * side, multiple) for side in processor_size)
    if not keep_aspect_ratio:
        return target
    return aspect_preserving_size(*mask.shape, target, multiple)


def close_up_pass_is_kept(
    first: np.ndarray,
    probabilities: np.ndarray,
    threshold: float = 0.5,
    min_gain: float = CLOSE_UP_MIN_GAIN,
    min_edges: int = CLOSE_UP_MIN_EDGES,
    min_confidence: float = CLOSE_UP_MIN_CONFIDENCE,
) -> bool:
    """Whether the close-up check's pass replaces the first pass.

    Args:
        first: `(height, width)` first-pass mask.
        probabilities: `(height, width)` car probabilities of the check's pass at the small input, at the image's own
            size.
        threshold: The probability threshold of the check's mask.
        min_gain: The share of the image that the check's mask must label car beyond the first's.
        min_edges: How many image edges the check's largest region must touch.
        min_confidence: The least mean probability over the check's car pixels.

    Returns:
        True when the check finds a car larger than the first pass's by `min_gain` of the image, running out of the
        frame on `min_edges` sides or more, and is sure of it.
    """
    second = probabilities > threshold  # (height, width) bool
    region = largest_region(second)
    if region is None:
        return False
    gain = float(second.mean()) - float(first.astype(bool).mean())
    sure = float(probabilities[second].mean()) >= min_confidence
    return gain >= min_gain and edges_touched(region) >= min_edges and sure
