"""Kaggle Carvana run-length encoding: a numpy encoder and decoder, and a torch encoder for masks on any device.

The format: pixels are flattened row by row (row-major), numbered from 1, and each run of car pixels is written as
`start length`, so a mask is a string like `"1 3 10 5"`. An empty mask is the empty string. `rle_runs` (raising)
and `rle_problem` (returning what is wrong) check a string's form without a mask size: an even count of numbers,
starts and lengths of at least 1, runs sorted and not overlapping (adjacent runs are allowed).

Submission files (`img,rle_mask` CSVs) are written and read by `carseg_hf.submission`; the encoder that queues its
work on a GPU without waiting for it is `carseg_hf.predict.async_copy.rle_encode_torch_async`, built on
`run_boundaries` and `strings_from_boundaries` here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

_RLE_TOKENS = re.compile(r"[0-9 \t]*")  # used with fullmatch: a trailing newline is not let through
#: The largest number an RLE string may hold; it keeps `start + length` within int64 (masks are far smaller).
_MAX_RLE_NUMBER = 2**62
_NAN_MESSAGE = "{caller}: the mask holds NaN values, which are neither car nor background; threshold it first"


def _runs_to_string(starts: np.ndarray, lengths: np.ndarray) -> str:
    """Interleave 1-indexed starts and lengths into the Kaggle string."""
    pairs = np.empty(2 * len(starts), dtype=np.int64)
    pairs[0::2] = starts
    pairs[1::2] = lengths
    return " ".join(map(str, pairs.tolist()))


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask in Kaggle's run-length format.

    Args:
        mask: A `(height, width)` array; any nonzero value is car.

    Returns:
        `"start length start length ..."` with 1-indexed, row-major starts; `""` for an empty mask.

    Raises:
        ValueError: If the mask is not 2-D, or holds NaN (neither car nor background).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D (height, width) mask, got shape {mask.shape}")
    if mask.dtype.kind in "fc" and np.isnan(mask).any():
        raise ValueError(_NAN_MESSAGE.format(caller="rle_encode"))
    flat = np.zeros(mask.size + 2, dtype=np.int8)
    flat[1:-1] = mask.reshape(-1) != 0  # (height * width + 2,) padded with background
    boundaries = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 1-indexed positions where a run starts or ends
    starts = boundaries[0::2]
    lengths = boundaries[1::2] - starts
    return _runs_to_string(starts, lengths)


def is_rle_string(value: object) -> bool:
    """Whether `value` is a string of digits and spaces only (what an RLE string may hold; empty is allowed)."""
    return isinstance(value, str) and _RLE_TOKENS.fullmatch(value) is not None


def as_mask_batch(masks: torch.Tensor, caller: str) -> torch.Tensor:
    """`(batch, height, width)` view of a 2-D or 3-D mask tensor.

    Args:
        masks: A `(batch, height, width)` or `(height, width)` tensor.
        caller: The function to name in the error message.

    Raises:
        ValueError: If the tensor is neither 2-D nor 3-D.
    """
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)  # (1, height, width)
    if masks.dim() != 3:
        raise ValueError(f"{caller} expects (batch, height, width) or (height, width), got {tuple(masks.shape)}")
    return masks


def run_boundaries(masks: torch.Tensor) -> torch.Tensor:
    """Where each mask changes value, as `(batch, height * width + 1)` bool; entry `i` is 1-indexed pixel `i + 1`."""
    flat = (masks != 0).flatten(start_dim=1)  # (batch, height * width) bool; an empty batch stays (0, height * width)
    padded = torch.nn.functional.pad(flat.to(torch.uint8), (1, 1))  # (batch, height * width + 2)
    return padded[:, 1:] != padded[:, :-1]  # (batch, height * width + 1)


def strings_from_boundaries(counts: Sequence[int], positions: np.ndarray) -> list[str]:
    """Split the concatenated 1-indexed boundaries of a batch (`counts[i]` for image i) into RLE strings.

    Args:
        counts: Boundaries per image, in batch order.
        positions: The 1-indexed positions of every image's boundaries, concatenated in batch order; entries past
            `sum(counts)` are ignored.

    Returns:
        One Kaggle RLE string per image.
    """
    encoded, offset = [], 0
    for count in counts:
        boundaries = positions[offset : offset + count]
        offset += count
        starts = boundaries[0::2]
        encoded.append(_runs_to_string(starts, boundaries[1::2] - starts))
    return encoded


def rle_encode_torch(masks: torch.Tensor) -> list[str]:
    """Encode masks on their own device; only the run boundaries are copied to the host.

    This waits for the device twice (for the boundary counts and their positions).
    `carseg_hf.predict.async_copy.rle_encode_torch_async` does the same work without waiting.

    Args:
        masks: A `(batch, height, width)` or `(height, width)` tensor (bool or integer, any device); nonzero is car.

    Returns:
        One Kaggle RLE string per mask; an empty list for an empty batch.

    Raises:
        ValueError: If the tensor is not 2-D or 3-D, or holds NaN (neither car nor background).
    """
    masks = as_mask_batch(masks, "rle_encode_torch")
    if masks.is_floating_point() and bool(torch.isnan(masks).any()):
        raise ValueError(_NAN_MESSAGE.format(caller="rle_encode_torch"))
    changes = run_boundaries(masks)  # (batch, height * width + 1) bool
    counts = changes.sum(dim=1).cpu().tolist()  # boundaries per image
    positions = changes.nonzero()[:, 1].add_(1).cpu().numpy()  # (total boundaries,) 1-indexed, row-major per image
    return strings_from_boundaries(counts, positions)


def _rle_numbers(rle: str) -> np.ndarray:
    """The numbers of an RLE string of digits and spaces, as int64; a ValueError names one that is too large."""
    tokens = rle.split()
    try:
        numbers = np.array(tokens, dtype=np.int64)
    except (OverflowError, ValueError):  # a number past int64, or with more digits than Python converts
        numbers = None
    if numbers is None or (numbers.size and numbers.max() > _MAX_RLE_NUMBER):
        big = next(t for t in tokens if len(t) > 19 or int(t) > _MAX_RLE_NUMBER)
        shown = big if len(big) <= 30 else f"{big[:30]}... ({len(big)} digits)"
        raise ValueError(f"malformed RLE string: the number {shown} is too large for a pixel position or run length")
    return numbers


def rle_runs(rle: str) -> tuple[np.ndarray, np.ndarray]:
    """The runs of a Kaggle RLE string, checked for everything that does not depend on the mask's size.

    Args:
        rle: `"start length ..."` with 1-indexed row-major starts; an empty (or blank) string has no runs.

    Returns:
        `(starts, lengths)`, two int64 arrays of the same length.

    Raises:
        ValueError: If `rle` is not a string, or holds something other than integers, a number too large to be a
            pixel position, an odd count of numbers, a start below 1, a length below 1, or runs that overlap or are
            not sorted.
    """
    if not isinstance(rle, str):
        raise ValueError(f"an RLE mask must be a string, got {type(rle).__name__}")
    if _RLE_TOKENS.fullmatch(rle) is None:
        bad = re.sub(r"[0-9 \t]", "", rle)[:10]
        raise ValueError(f"malformed RLE string: only digits and spaces are allowed, found {bad!r} in {rle[:60]!r}")
    numbers = _rle_numbers(rle)
    if numbers.size % 2:
        raise ValueError(f"malformed RLE string: {numbers.size} numbers, expected an even count of start/length pairs")
    starts, lengths = numbers[0::2], numbers[1::2]
    if numbers.size == 0:
        return starts, lengths
    if starts.min() < 1:
        raise ValueError(f"malformed RLE string: run start {int(starts.min())} is below 1 (starts are 1-indexed)")
    if lengths.min() < 1:
        raise ValueError(f"malformed RLE string: run length {int(lengths.min())} is below 1")
    bad = np.flatnonzero(starts[1:] <= starts[:-1] + lengths[:-1] - 1)  # a start at or before the last run's end
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"RLE runs overlap or are not sorted: run {int(starts[i])} {int(lengths[i])} is followed by "
            f"{int(starts[i + 1])} {int(lengths[i + 1])}"
        )
    return starts, lengths


def rle_problem(rle: object) -> str | None:
    """What is wrong with `rle` as a Kaggle RLE string, whatever the mask's size (see `rle_runs`), or None."""
    try:
        rle_runs(rle)
    except ValueError as error:
        return str(error)
    return None


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode a Kaggle RLE string into a mask.

    Args:
        rle: `"start length ..."` with 1-indexed row-major starts; an empty (or blank) string is an empty mask.
        shape: `(height, width)` of the mask.

    Returns:
        A `(height, width)` uint8 array of 0 and 1.

    Raises:
        ValueError: If `shape` is not two positive integers, or the string is malformed (see `rle_runs`) or has a
            run past the last pixel.
    """
    height, width = _decode_shape(shape)
    total = height * width
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        rle = ""
    starts, lengths = rle_runs(rle)
    if starts.size == 0:
        return np.zeros((height, width), dtype=np.uint8)
    ends = starts + lengths - 1  # 1-indexed last pixel of each run
    if ends.max() > total:
        index = int(np.argmax(ends > total))
        raise ValueError(
            f"RLE run {int(starts[index])} {int(lengths[index])} ends at pixel {int(ends[index])}, past the last "
            f"pixel {total} of a {height}x{width} mask; is the shape right?"
        )
    delta = np.zeros(total + 1, dtype=np.int8)
    delta[starts - 1] = 1
    delta[ends] -= 1
    return np.cumsum(delta[:-1], dtype=np.int8).astype(np.uint8).reshape(height, width)


def _decode_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """`(height, width)` of `rle_decode`'s `shape`, checked."""
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"rle_decode needs shape=(height, width), two integers; got {shape!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"rle_decode needs a positive (height, width), got {shape}")
    return height, width
