"""Batched JPEG decoding and preprocessing on torch tensors (GPU path of `carseg predict`).

`CarSegImageProcessor` stays the single source of the preprocessing *parameters* (size, resampling, rescale factor,
mean and std). The functions here apply the same steps to uint8 tensors that are already on the device, so that a
batch decoded by nvjpeg never goes back through the host. `preprocess_tensors` matches the processor's output on the
CPU to within one grey level before normalisation (PIL and torch round bilinear filters slightly differently).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .image_processing_carseg import CarSegImageProcessor

#: The JPEG start-of-image marker.
JPEG_MAGIC = b"\xff\xd8\xff"


def parse_resolution(resolution: str, processor: CarSegImageProcessor) -> tuple[int, int] | None:
    """Turn a `--resolution` value into the network's input size.

    Args:
        resolution: `"processor"` (the processor's `size`), `"native"` (each image's own size) or `"HxW"`.
        processor: The model's image processor.

    Returns:
        `(height, width)`, or None for the native size.

    Raises:
        ValueError: If the value is none of these forms.
    """
    if resolution == "processor":
        return processor.size["height"], processor.size["width"]
    if resolution == "native":
        return None
    parts = resolution.lower().split("x")
    if len(parts) == 2 and all(part.strip().isdigit() for part in parts):
        height, width = int(parts[0]), int(parts[1])
        if height > 0 and width > 0:
            return height, width
    raise ValueError(
        f"--resolution must be 'processor', 'native' or HEIGHTxWIDTH such as 1024x1024, got {resolution!r}"
    )


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
    processor: CarSegImageProcessor,
    size: tuple[int, int] | None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Resize, rescale and normalise uint8 image tensors with the processor's parameters, on their device.

    Resizing uses bilinear interpolation with antialiasing, which is what PIL's `BILINEAR` filter (the processor's
    default) does, followed by rounding to whole grey levels as PIL's uint8 output does.

    Args:
        images: `(3, height, width)` uint8 tensors, all on one device; at native size they must share one size.
        processor: The processor whose `size`, `rescale_factor`, `image_mean`, `image_std`, `do_rescale` and
            `do_normalize` are applied.
        size: `(height, width)` to resize to, or None to keep each image's size.
        memory_format: Memory format of the returned batch (e.g. `torch.channels_last`).

    Returns:
        A float32 tensor of shape `(batch, 3, height, width)`.

    Raises:
        ValueError: If an image is not a 3-channel uint8 tensor, or native-size images differ in size.
    """
    if not images:
        raise ValueError("preprocess_tensors needs at least one image")
    for image in images:
        if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(
                f"expected (3, height, width) uint8 image tensors, got {tuple(image.shape)} {image.dtype}"
            )
    device = images[0].device
    resized = []
    for image in images:
        pixels = image.unsqueeze(0).float()  # (1, 3, height, width)
        if size is not None and tuple(image.shape[-2:]) != tuple(size):
            pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
            pixels = pixels.round_().clamp_(0.0, 255.0)  # (1, 3, size_height, size_width), whole grey levels
        resized.append(pixels)
    shapes = {tuple(p.shape) for p in resized}
    if len(shapes) > 1:
        raise ValueError(
            f"images of different sizes {sorted(s[-2:] for s in shapes)} cannot be batched at native size"
        )
    batch = torch.cat(resized).contiguous(memory_format=memory_format)  # (batch, 3, height, width)
    if processor.do_rescale:
        batch.mul_(processor.rescale_factor)
    if processor.do_normalize:
        mean, std = _normalisation_tensors(tuple(processor.image_mean), tuple(processor.image_std), device)
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
