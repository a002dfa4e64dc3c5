"""Batched JPEG decoding and preprocessing on torch tensors (GPU path of `carseg predict`).

`decode_jpegs` decodes a batch of JPEG files on the device (nvjpeg on CUDA), so that it never goes back through the
host; `preprocess_tensors` hands such a batch to the torch image processor (`CarSegImageProcessor.preprocess_tensors`),
the one place where images are resized and normalised on a device.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import torch

from .image_processing_base_carseg import CarSegImageProcessorBase
from .image_processing_carseg import CarSegImageProcessor

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


def preprocess_tensors(
    images: Sequence[torch.Tensor],
    processor: CarSegImageProcessorBase,
    size: tuple[int, int] | None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Resize, rescale and normalise uint8 image tensors with the processor's parameters, on their device.

    The torch image processor does the work (`CarSegImageProcessor.preprocess_tensors`); this function stays for
    the callers that pass the processor as an argument. A `CarSegImageProcessorPil` is first turned into the torch
    processor with the same parameters.

    Args:
        images: `(3, height, width)` uint8 tensors, all on one device; at native size they must share one size.
        processor: The processor whose `rescale_factor`, `image_mean`, `image_std`, `do_rescale` and
            `do_normalize` are applied.
        size: `(height, width)` to resize to, or None to keep each image's size.
        memory_format: Memory format of the returned batch (e.g. `torch.channels_last`).

    Returns:
        A float32 tensor of shape `(batch, 3, height, width)`.

    Raises:
        ValueError: If an image is not a 3-channel uint8 tensor, or native-size images differ in size.
    """
    if not isinstance(processor, CarSegImageProcessor):
        processor = CarSegImageProcessor.from_dict(processor.to_dict())
    return processor.preprocess_tensors(images, size, memory_format)
