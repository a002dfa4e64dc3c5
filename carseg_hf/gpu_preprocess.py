"""Batched JPEG decoding on torch tensors (GPU path of `carseg predict`).

`decode_jpegs` decodes a batch of JPEG files on the device (nvjpeg on CUDA), so that it never goes back through the
host; the torch image processor (`CarSegImageProcessor.preprocess_tensors`) then resizes and normalises the batch
there.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import torch

#: The JPEG start-of-image marker.
JPEG_MAGIC = b"\xff\xd8\xff"


def decode_jpegs(data: Sequence[torch.Tensor], device: str | torch.device) -> list[torch.Tensor]:
    """Decode a batch of JPEG files in one call (nvjpeg on a CUDA device).

    On CUDA, torchvision decodes on a stream of its own and writes into memory it allocates from the *current*
    stream's pool without waiting for that stream. When the host runs ahead of the GPU (as `BatchPredictor` does,
    with a batch in flight), that memory may still be in use by queued kernels. So the decoder is called with a
    side stream as the current one, which has its own pool; the calling stream then waits for it, and each image
    is marked as used there (`record_stream`), so that its memory is not handed to a later decode too early.

    Args:
        data: One 1-D uint8 CPU tensor of file bytes per image.
        device: Where the decoded images go; on CUDA the decoding itself runs there.

    Returns:
        One `(3, height, width)` uint8 tensor per image, on `device`.

    Raises:
        RuntimeError: If any image of the batch cannot be decoded (torchvision returns no partial results); decode
            the images one by one to find which.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    device = torch.device(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 deprecates its decoders in favour of torchcodec
        if device.type != "cuda":
            return list(decode_jpeg(list(data), mode=ImageReadMode.RGB, device=device))
        caller = torch.cuda.current_stream(device)
        side = _decode_stream(caller.device)
        with torch.cuda.stream(side):
            images = list(decode_jpeg(list(data), mode=ImageReadMode.RGB, device=device))
    caller.wait_stream(side)
    for image in images:
        image.record_stream(caller)
    return images


@functools.lru_cache(maxsize=8)
def _decode_stream(device: torch.device) -> torch.cuda.Stream:
    """The side stream `decode_jpegs` makes current while nvjpeg decodes for `device` (one per device)."""
    return torch.cuda.Stream(device=device)
