"""The one rescale-and-normalise step of both carseg image processors, on any device.

`CarSegImageProcessor.preprocess`, `CarSegImageProcessorPil.preprocess` and `CarSegImageProcessor.preprocess_tensors`
(the batch predictor's and training's path) all end with `rescale_and_normalize`, so their `pixel_values` agree.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


def rescale_and_normalize(
    batch: torch.Tensor,
    rescale_factor: float,
    image_mean: Sequence[float],
    image_std: Sequence[float],
    do_rescale: bool = True,
    do_normalize: bool = True,
) -> torch.Tensor:
    """Rescale and normalise a float batch in place, on its device: the one normalisation of both processors.

    Args:
        batch: `(batch, 3, height, width)` float32 pixel values in whole grey levels (0 to 255).
        rescale_factor: Multiplier applied when `do_rescale` (1/255 brings the values to [0, 1]).
        image_mean: Per-channel mean subtracted when `do_normalize`.
        image_std: Per-channel standard deviation divided by when `do_normalize`.
        do_rescale: Apply the rescale factor.
        do_normalize: Apply mean and standard deviation.

    Returns:
        `batch` itself, rescaled and normalised.
    """
    if do_rescale:
        batch.mul_(rescale_factor)
    if do_normalize:
        mean, std = _normalisation_tensors(tuple(image_mean), tuple(image_std), batch.device)
        batch.sub_(mean).div_(std)
    return batch


@functools.lru_cache(maxsize=16)
def _normalisation_tensors(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(1, 3, 1, 1)` mean and std on `device`, made once per device.

    Building them for every batch would copy them from pageable host memory to a CUDA device each time, a copy that
    waits for all work queued before it (the previous batch's forward pass) and so would serialise the pipeline.
    """
    with torch.inference_mode(False):  # plain tensors, usable inside and outside inference mode
        return (
            torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1),
            torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1),
        )
