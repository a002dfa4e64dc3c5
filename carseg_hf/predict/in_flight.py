"""What a batch prediction run keeps while the device works: the groups and batches in flight."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .async_copy import PendingRLE
from .items import PipelineItem


@dataclass
class GroupInFlight:
    """Items of one input and original size whose masks are queued on the device (see `BatchPredictor._launch`)."""

    items: list[PipelineItem]
    row_indices: list[int] = field(default_factory=list)  # items that need a submission row
    rle: PendingRLE | None = None
    mask_indices: list[int] = field(default_factory=list)  # items that need a mask file
    masks: torch.Tensor | None = None  # (len(mask_indices), height, width) bool on the host, pinned on CUDA
    masks_copied: torch.cuda.Event | None = None


@dataclass
class BatchInFlight:
    """A batch handed to the device, waiting for `_finish` and the writer."""

    index: int
    items: list[PipelineItem]
    groups: list[GroupInFlight]


def select_masks(masks: torch.Tensor, indices: list[int]) -> torch.Tensor:
    """`masks[indices]`, without a copy when every mask is selected.

    Stacking views needs no index tensor on the device, whose host-to-device copy could wait for queued work.
    """
    if len(indices) == masks.shape[0]:
        return masks
    return torch.stack([masks[index] for index in indices])  # (len(indices), height, width)
