"""Device-to-host copies that do not wait for the device, and the RLE encoder built on them.

`BatchPredictor` keeps one batch in flight: it queues batch N + 1 on a CUDA device before it collects batch N's
results. For that, nothing it does while queuing may wait for the device: the masks to save and the run boundaries
of the submission's RLE strings are copied to pinned host memory with `non_blocking=True`, and an event recorded
after the copies says when they may be read. Off CUDA the copies are made at once.
"""

from __future__ import annotations

import torch

from ..rle import as_mask_batch, rle_encode_torch, run_boundaries, strings_from_boundaries


class PendingRLE:
    """The RLE strings of a batch whose boundaries are still being computed and copied; see `rle_encode_torch_async`.

    Args:
        masks: The `(batch, height, width)` masks, kept for the exact fallback.
        counts: `(batch,)` boundaries per image, on the host (pinned on CUDA), filled asynchronously.
        positions: `(capacity,)` int32 1-indexed boundaries of all images in order, then zeros, on the host.
        event: Recorded on the device after both copies, or None when the masks are on the CPU.
    """

    def __init__(
        self, masks: torch.Tensor, counts: torch.Tensor, positions: torch.Tensor, event: torch.cuda.Event | None
    ) -> None:
        self.masks = masks
        self.counts = counts
        self.positions = positions
        self.event = event
        self.overflowed: bool | None = None

    def result(self) -> list[str]:
        """Wait for the copies and build the strings (one per mask).

        When the batch has more boundaries than the buffer holds (very noisy masks), the exact synchronous encoder
        runs instead, so the result never depends on the capacity.
        """
        if self.event is not None:
            self.event.synchronize()
        counts = self.counts.tolist()
        self.overflowed = sum(counts) > self.positions.shape[0]
        if self.overflowed:
            return rle_encode_torch(self.masks)
        return strings_from_boundaries(counts, self.positions.numpy())


def rle_encode_torch_async(masks: torch.Tensor, boundaries_per_row: int = 32) -> PendingRLE:
    """Start encoding masks on their device without waiting for it.

    The boundaries are compacted into a buffer of static size (`torch.nonzero_static`), and the buffer and the
    per-image counts are copied to pinned host memory with `non_blocking=True`, so nothing here waits for the
    device: a CUDA caller can queue the next batch's work before it asks for `result()`. Only
    `batch * height * boundaries_per_row` int32 positions cross to the host whatever the mask holds.

    Args:
        masks: A `(batch, height, width)` or `(height, width)` tensor (bool or integer, any device); nonzero is car.
        boundaries_per_row: The buffer's size per mask row; a car's mask row has 2 to 8 boundaries. A batch with
            more than the buffer holds is encoded again exactly by `PendingRLE.result`.

    Returns:
        A `PendingRLE`; its `result()` gives the same strings as `rle_encode_torch(masks)`.

    Raises:
        ValueError: If the tensor is not 2-D or 3-D, or `boundaries_per_row` is below 1.
    """
    if boundaries_per_row < 1:
        raise ValueError(f"boundaries_per_row must be >= 1, got {boundaries_per_row}")
    masks = as_mask_batch(masks, "rle_encode_torch_async")
    batch, height = masks.shape[:2]
    changes = run_boundaries(masks)  # (batch, height * width + 1) bool
    counts = changes.sum(dim=1)  # (batch,) int64
    capacity = batch * height * boundaries_per_row
    # Row-major over (image, position), so each image's boundaries are contiguous; -1 fills the unused tail.
    found = torch.nonzero_static(changes, size=capacity, fill_value=-1)  # (capacity, 2) int64
    index_dtype = torch.int32 if changes.shape[1] < 2**31 else torch.int64
    positions = found[:, 1].to(index_dtype).add_(1)  # (capacity,) 1-indexed; the padding becomes 0
    (host_counts, host_positions), event = copy_to_host_async(counts, positions)
    return PendingRLE(masks, host_counts, host_positions, event)


def copy_to_host_async(*tensors: torch.Tensor) -> tuple[list[torch.Tensor], torch.cuda.Event | None]:
    """Start copying tensors of one device to host memory without waiting for the device.

    On CUDA the copies go to pinned memory with `non_blocking=True`, and an event is recorded after them on the
    current stream of the tensors' device; the host copies may be read once `event.synchronize()` returns. Elsewhere
    the copies are made at once and there is no event.

    Args:
        tensors: Tensors on one device.

    Returns:
        The host tensors, in order, and the event (None off CUDA).
    """
    device = tensors[0].device
    on_cuda = device.type == "cuda"
    copies = [
        torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=on_cuda).copy_(tensor, non_blocking=on_cuda)
        for tensor in tensors
    ]
    event = None
    if on_cuda:
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(device))  # the stream of the tensors' device, not the current device
    return copies, event
