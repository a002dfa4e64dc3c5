"""Single-image inference shared by the Space, the CLI and evaluation: load once, segment many times."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .batchnorm_folding import fold_batchnorm as fold_batchnorm_copy
from .image_processing_base_carseg import CarSegImageProcessorBase
from .loading import load_model, resolve_device
from .modeling_carseg import CarSegForSemanticSegmentation
from .zoom import CropBox
from .zoom_pass import run_second_pass


@dataclass
class SegmentationResult:
    """The outcome of segmenting one image.

    Attributes:
        mask: `(height, width)` uint8 array of 0 (background) and 1 (car) at the original image size.
        probabilities: `(height, width)` float32 car probabilities at the original image size.
        seconds: Wall time of preprocessing, the forward pass(es) and post-processing, without `waited_seconds`.
        device: The device the model ran on, e.g. `"cpu"` or `"cuda:0"`.
        input_size: `(height, width)` fed to the network (in the first pass, with zoom).
        zoom_box: The crop whose second pass replaced the first (`carseg_hf.zoom`), or None when the first pass stands
            (zoom off, no crop worth a second pass, or an implausible second pass).
        zoom_out_size: `(height, width)` of the smaller input whose pass of the whole image replaced the first, for a
            car that runs off both sides of a tall frame (`carseg_hf.zoom.zoom_out_size`), or None.
        close_up_size: `(height, width)` of the small input whose pass of the whole image replaced the first, for a
            car much larger than the frame (`carseg_hf.zoom.close_up_size`), or None.
        waited_seconds: Time spent waiting for the model while another thread's forward pass held it.
    """

    mask: np.ndarray
    probabilities: np.ndarray
    seconds: float
    device: str
    input_size: tuple[int, int]
    zoom_box: CropBox | None = None
    zoom_out_size: tuple[int, int] | None = None
    close_up_size: tuple[int, int] | None = None
    waited_seconds: float = 0.0


def predict_logits(
    model: CarSegForSemanticSegmentation, pixel_values: torch.Tensor, tta: bool = False
) -> torch.Tensor:
    """Run the model, optionally averaging with the horizontally flipped input (hflip TTA).

    Args:
        model: The model, in eval mode.
        pixel_values: `(batch, 3, height, width)` on the model's device.
        tta: Average the logits of the image and of its mirror image (flipped back).

    Returns:
        `(batch, 1, height, width)` float32 logits.
    """
    logits = model(pixel_values=pixel_values).logits.float()  # (batch, 1, height, width)
    if tta:
        flipped = model(pixel_values=torch.flip(pixel_values, dims=[-1])).logits.float()
        logits = 0.5 * (logits + torch.flip(flipped, dims=[-1]))  # (batch, 1, height, width)
    return logits


class Segmenter:
    """Holds a model and its processor, and segments images one at a time, safely from several threads.

    Args:
        model: A `CarSegForSemanticSegmentation`.
        processor: Its image processor, `CarSegImageProcessor` (torch: resizes on `device`) or
            `CarSegImageProcessorPil` (resizes with PIL on the CPU).
        device: Where the model runs.
        channels_last: Use the channels-last memory format, which is faster for convolutions on CPU and GPU.
        fold_batchnorm: Segment with a copy of the model whose BatchNorm layers are folded into the convolutions
            (see `fold_batchnorm`); `self.model` stays the model as given.
    """

    def __init__(
        self,
        model: CarSegForSemanticSegmentation,
        processor: CarSegImageProcessorBase,
        device: str | torch.device = "cpu",
        channels_last: bool = True,
        fold_batchnorm: bool = True,
    ) -> None:
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.model = model.to(self.device).eval()
        self._runner = fold_batchnorm_copy(self.model)[0] if fold_batchnorm else self.model
        if channels_last:
            self._runner = self._runner.to(memory_format=torch.channels_last)
        self.processor = processor
        self._lock = threading.Lock()
        self._waits = threading.local()  # per thread: seconds spent waiting for the lock in the current segment()

    @classmethod
    def from_pretrained(
        cls, model: str | os.PathLike | None = None, device: str = "auto", revision: str | None = None
    ) -> Segmenter:
        """Load a model by folder, Hub id, or the bundled default (`None` reads `$CARSEG_MODEL`)."""
        resolved = resolve_device(device)
        network, processor = load_model(model, device=resolved, revision=revision)
        return cls(network, processor, resolved)

    @property
    def device_name(self) -> str:
        """A readable name of the device, e.g. `cpu` or `cuda:0 (NVIDIA H100)`."""
        if self.device.type == "cuda":
            return f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"

    def segment(
        self,
        image: Any,
        threshold: float | None = None,
        tta: bool = False,
        native_size: bool = False,
        zoom: bool = False,
    ) -> SegmentationResult:
        """Segment one image.

        Args:
            image: Anything the image processor accepts (path, PIL image, array, tensor).
            threshold: Probability threshold; defaults to the processor's.
            tta: Horizontal-flip test-time augmentation.
            native_size: Feed the image at its own resolution instead of the processor's size.
            zoom: Segment a car that fills little of the frame once more, from a crop around it, a car that runs off
                both sides of a tall frame once more at a smaller input, and a close-up's car at a small input
                (`carseg_hf.zoom`); otherwise, and with `native_size`, no second pass runs.

        Returns:
            The mask and probabilities at the original image size.
        """
        start = time.perf_counter()
        self._waits.seconds = 0.0
        threshold = self.processor.threshold if threshold is None else self.processor.check_threshold(threshold)
        array = self.processor.load_image(image)  # (height, width, 3) uint8
        probabilities, input_size = self._probabilities(array, tta, native_size)  # (height, width)
        passes: dict[str, Any] = {}
        if zoom and not native_size:
            probabilities, passes = self._zoom(array, probabilities, input_size, threshold, tta)
        mask = (probabilities > threshold).astype(np.uint8)
        return SegmentationResult(
            mask=mask,
            probabilities=probabilities,
            seconds=time.perf_counter() - start - self._waits.seconds,
            device=self.device_name,
            input_size=input_size,
            waited_seconds=self._waits.seconds,
            **passes,
        )

    def _zoom(
        self, array: np.ndarray, probabilities: np.ndarray, input_size: tuple[int, int], threshold: float, tta: bool
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Zoom's second pass (`carseg_hf.zoom`), if any: the probabilities, and the result field naming the pass."""
        kept = run_second_pass(
            probabilities > threshold,  # (height, width) bool
            input_size,
            (self.processor.size["height"], self.processor.size["width"]),
            self.processor.keep_aspect_ratio,
            threshold,
            segment_whole=lambda size: self._probabilities(array, tta, native_size=False, size=size)[0],
            segment_crop=lambda box: self._probabilities(np.ascontiguousarray(array[box.slices]), tta, False)[0],
            probabilities_of=lambda output: output,
        )
        if kept is None:
            return probabilities, {}
        if kept.zoom_box is None:  # a whole-image pass replaces the first
            return kept.output, {"close_up_size": kept.close_up_size, "zoom_out_size": kept.zoom_out_size}
        probabilities[kept.zoom_box.slices] = kept.output  # the crop's pass, (crop_height, crop_width)
        return probabilities, {"zoom_box": kept.zoom_box}

    def _probabilities(
        self, array: np.ndarray, tta: bool, native_size: bool, size: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """One forward pass: `(height, width)` float32 car probabilities of an RGB array, and the input size used.

        `size` = `(height, width)` overrides the processor's input size (exactly, whatever the aspect ratio).
        """
        height, width = array.shape[:2]
        resize = self.processor.exact_size_kwargs(size)
        inputs = self.processor(array, do_resize=not native_size, device=self.device, **resize)  # on the device
        pixel_values = inputs["pixel_values"]  # (1, 3, h, w) on self.device
        if self.channels_last:
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        asked = time.perf_counter()
        with self._lock, torch.inference_mode():
            self._waits.seconds = getattr(self._waits, "seconds", 0.0) + time.perf_counter() - asked
            logits = predict_logits(self._runner, pixel_values, tta=tta)  # (1, 1, h, w)
            logits = self.processor.resize_logits(logits, (height, width))  # (1, 1, height, width)
            probabilities = torch.sigmoid(logits[0, 0]).cpu().numpy()  # (height, width)
        return probabilities.astype(np.float32), tuple(pixel_values.shape[-2:])
