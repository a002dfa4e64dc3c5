"""Kaggle Carvana run-length encoding: a numpy encoder and decoder, and a torch encoder for masks on any device.

The format: pixels are flattened row by row (row-major), numbered from 1, and each run of car pixels is written as
`start length`, so a mask is a string like `"1 3 10 5"`. An empty mask is the empty string.

Submission files (`img,rle_mask` CSVs) are written and read by `carseg_hf.submission`; the encoder that queues its
work on a GPU without waiting for it is `carseg_hf.predict.async_copy.rle_encode_torch_async`, built on
`run_boundaries` and `strings_from_boundaries` here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

_RLE_TOKENS = re.compile(r"^[0-9 \t]*$")


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
        ValueError: If the mask is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D (height, width) mask, got shape {mask.shape}")
    flat = np.zeros(mask.size + 2, dtype=np.int8)
    flat[1:-1] = mask.reshape(-1) != 0  # (height * width + 2,) padded with background
    boundaries = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 1-indexed positions where a run starts or ends
    starts = boundaries[0::2]
    lengths = boundaries[1::2] - starts
    return _runs_to_string(starts, lengths)


def is_rle_string(value: object) -> bool:
    """Whether `value` is a string of digits and spaces only (what an RLE string may hold; empty is allowed)."""
    return isinstance(value, str) and _RLE_TOKENS.match(value) is not None


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
    flat = (masks != 0).reshape(masks.shape[0], -1)  # (batch, height * width) bool
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
        One Kaggle RLE string per mask.

    Raises:
        ValueError: If the tensor is not 2-D or 3-D.
    """
    changes = run_boundaries(as_mask_batch(masks, "rle_encode_torch"))  # (batch, height * width + 1) bool
    counts = changes.sum(dim=1).cpu().tolist()  # boundaries per image
    positions = changes.nonzero()[:, 1].add_(1).cpu().numpy()  # (total boundaries,) 1-indexed, row-major per image
    return strings_from_boundaries(counts, positions)


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode a Kaggle RLE string into a mask.

    Args:
        rle: `"start length ..."` with 1-indexed row-major starts; an empty (or blank) string is an empty mask.
        shape: `(height, width)` of the mask.

    Returns:
        A `(height, width)` uint8 array of 0 and 1.

    Raises:
        ValueError: If the string holds something other than integers, an odd count of numbers, a start below 1,
            a length below 1, a run past the last pixel, or runs that overlap or are not sorted.
    """
    height, width = (int(v) for v in shape)
    if height < 1 or width < 1:
        raise ValueError(f"rle_decode needs a positive (height, width), got {shape}")
    total = height * width
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        rle = ""
    if not isinstance(rle, str):
        raise ValueError(f"an RLE mask must be a string, got {type(rle).__name__}")
    if not _RLE_TOKENS.match(rle):
        bad = re.sub(r"[0-9 \t]", "", rle)[:10]
        raise ValueError(f"malformed RLE string: only digits and spaces are allowed, found {bad!r} in {rle[:60]!r}")
    numbers = np.array(rle.split(), dtype=np.int64)
    if numbers.size % 2:
        raise ValueError(f"malformed RLE string: {numbers.size} numbers, expected an even count of start/length pairs")
    starts, lengths = numbers[0::2], numbers[1::2]
    if numbers.size == 0:
        return np.zeros((height, width), dtype=np.uint8)
    if starts.min() < 1:
        raise ValueError(f"malformed RLE string: run start {int(starts.min())} is below 1 (starts are 1-indexed)")
    if lengths.min() < 1:
        raise ValueError(f"malformed RLE string: run length {int(lengths.min())} is below 1")
    ends = starts + lengths - 1  # 1-indexed last pixel of each run
    if ends.max() > total:
        index = int(np.argmax(ends > total))
        raise ValueError(
            f"RLE run {int(starts[index])} {int(lengths[index])} ends at pixel {int(ends[index])}, past the last "
            f"pixel {total} of a {height}x{width} mask; is the shape right?"
        )
    if starts.size > 1:
        bad = np.flatnonzero(starts[1:] <= ends[:-1])
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"RLE runs overlap or are not sorted: run {int(starts[i])} {int(lengths[i])} is followed by "
                f"{int(starts[i + 1])} {int(lengths[i + 1])}"
            )
    delta = np.zeros(total + 1, dtype=np.int8)
    delta[starts - 1] = 1
    delta[ends] -= 1
    return np.cumsum(delta[:-1], dtype=np.int8).astype(np.uint8).reshape(height, width)
