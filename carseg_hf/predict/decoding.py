"""Decoding the images of a batch prediction run: in worker threads, and for JPEGs in one batched call on the device.

With processor decoding, each worker thread reads, decodes and preprocesses an image through `CarSegImageProcessor`.
With tensor decoding, the workers read the bytes of plain RGB or greyscale JPEGs only, and the calling thread decodes
each batch of them in one call on the model's device (nvjpeg on CUDA, `gpu_preprocess.decode_jpegs`); any other
file is decoded on the CPU with PIL in the worker.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from PIL import Image

from ..gpu_preprocess import JPEG_MAGIC, decode_jpegs
from ..image_io import ImageDecodeError
from ..image_processing_carseg import CarSegImageProcessor
from .items import PipelineItem


class ImageDecoder:
    """Decodes the images of a run, into preprocessed pixel values or into uint8 tensors for the device.

    Args:
        processor: The model's image processor, the source of every preprocessing parameter and of the pixel limit.
        device: The model's device, where batched JPEG decoding runs.
        size: `(height, width)` the network's input is resized to, or None for each image's own size.
        tensor_decode: Decode into uint8 tensors (JPEGs batched on the device) instead of through the processor.
    """

    def __init__(
        self,
        processor: CarSegImageProcessor,
        device: torch.device,
        size: tuple[int, int] | None,
        tensor_decode: bool,
    ) -> None:
        self.processor = processor
        self.device = device
        self.size = size
        self.tensor_decode = tensor_decode

    def decode(self, item: PipelineItem) -> tuple[PipelineItem, float]:
        """Read an image in a worker thread; a file that cannot be read gets its `error` set instead.

        Returns:
            The item, and the seconds it took.
        """
        start = time.perf_counter()
        try:
            if self.tensor_decode:
                self._read_for_tensor_path(item)
            else:
                array = self.processor.load_image(item.path)  # (height, width, 3) uint8
                item.original_size = array.shape[:2]
                size = None if self.size is None else {"height": self.size[0], "width": self.size[1]}
                item.pixel_values = self.processor(array, do_resize=size is not None, size=size)["pixel_values"][0]
        except (ImageDecodeError, ValueError, OSError) as error:
            item.error = str(error)
        return item, time.perf_counter() - start

    def _read_for_tensor_path(self, item: PipelineItem) -> None:
        """Read the bytes of a plain RGB/greyscale JPEG for batched decoding; decode anything else on the CPU."""
        with open(item.path, "rb") as handle:
            data = handle.read()
        if data.startswith(JPEG_MAGIC):
            try:
                with Image.open(io.BytesIO(data)) as header:  # reads the header only
                    width, height = header.size
                    plain = header.mode in ("RGB", "L") and header.getexif().get(0x0112, 1) == 1
            except (OSError, SyntaxError, ValueError):
                plain = False  # let the CPU decoder name the problem
            if plain and (self.processor.max_pixels is None or width * height <= self.processor.max_pixels):
                item.original_size = (height, width)
                item.jpeg = torch.frombuffer(bytearray(data), dtype=torch.uint8)  # (num_bytes,)
                return
        self._decode_on_cpu(item)

    def _decode_on_cpu(self, item: PipelineItem) -> None:
        """Decode an image with PIL into `item.image`, `(3, height, width)` uint8 on the CPU."""
        array = self.processor.load_image(item.path)  # (height, width, 3) uint8, names the file on errors
        item.original_size = array.shape[:2]
        item.image = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1)  # (3, height, width)

    def decode_jpegs_on_device(self, items: list[PipelineItem]) -> None:
        """Decode the batch's JPEG bytes in one call; on failure, one by one, to find and report the bad files."""
        pending = [item for item in items if item.jpeg is not None]
        if not pending:
            return
        try:
            images = decode_jpegs([item.jpeg for item in pending], self.device)
        except RuntimeError:
            images = []
            for item in pending:
                try:
                    images.append(decode_jpegs([item.jpeg], self.device)[0])
                except RuntimeError:
                    images.append(None)
        for item, image in zip(pending, images):
            item.jpeg = None
            if image is not None:
                item.image = image
                continue
            try:
                self._decode_on_cpu(item)  # PIL either decodes it or raises an ImageDecodeError naming the file
            except (ImageDecodeError, ValueError, OSError) as error:
                item.error = str(error)
