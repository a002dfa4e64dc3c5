"""`BatchPredictor`: the model's stage of batch prediction, and the run that ties the stages together.

See the package docstring (`carseg_hf.predict`) for how the stages overlap.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any

import torch

from ..batchnorm_folding import fold_batchnorm
from ..image_processing_carseg import CarSegImageProcessor
from ..inference import predict_logits
from ..modeling_carseg import CarSegForSemanticSegmentation
from ..predict_record import PROCESSOR_SETTINGS, RECORD_VERSION, ModelSource, state_dict_sha256
from .async_copy import copy_to_host_async, rle_encode_torch_async
from .compiling import compile_for_inference
from .decoding import ImageDecoder
from .in_flight import BatchInFlight, GroupInFlight, select_masks
from .inputs import check_name_clashes, check_outputs_apart_from_inputs, expand_inputs, submission_name
from .items import PipelineItem
from .options import PredictOptions, PredictSummary
from .outputs import RunOutputs, check_sources, open_outputs, pending_items, write_batch
from .stream import BatchReader, BatchWriter
from .zooming import zoom_in_place

#: The autocast dtypes of `PredictOptions.dtype`.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _network_input_size(resolution: str | tuple[int, int], processor: CarSegImageProcessor) -> tuple[int, int] | None:
    """`(height, width)` of the network's input for `PredictOptions.resolution`, or None for each image's own size."""
    if resolution == "processor":
        return processor.size["height"], processor.size["width"]
    if resolution == "native":
        return None
    height, width = resolution
    return int(height), int(width)


class BatchPredictor:
    """Segments many images in batches with overlapped decoding, compute and writing.

    Args:
        model: The network; it is moved to `device`, put in eval mode (and channels-last if asked).
        processor: Its image processor, the source of every preprocessing parameter.
        device: Where the model runs.
        options: The run's settings.
        source: Where the model came from, for the outputs' records (`carseg_hf.predict_record`); without it the
            records name the model by its `name_or_path`. The weights themselves are always identified by a hash
            of the model's state dict.
    """

    def __init__(
        self,
        model: CarSegForSemanticSegmentation,
        processor: CarSegImageProcessor,
        device: str | torch.device = "cpu",
        options: PredictOptions | None = None,
        source: ModelSource | None = None,
    ) -> None:
        self.options = options or PredictOptions()
        self.options.validate()
        self.device = torch.device(device)
        self.processor = processor
        self.tensor_processor = CarSegImageProcessor.from_processor(processor)  # resizes batches on the device
        self.source = source or ModelSource(getattr(model, "name_or_path", "") or "an in-memory model")
        self.weights_sha256 = state_dict_sha256(model)  # the weights as run, before any folding
        self.model = model.to(self.device).eval()
        if self.options.fold_batchnorm:
            self.model, _ = fold_batchnorm(self.model)  # an inference-only copy; the caller's model is untouched
        self.memory_format = torch.channels_last if self.options.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.size = _network_input_size(self.options.resolution, processor)
        threshold = processor.threshold if self.options.threshold is None else self.options.threshold
        self.threshold = float(threshold)
        self.logit_threshold = math.log(threshold / (1.0 - threshold))  # sigmoid(x) > t  <=>  x > logit(t)
        decode = self.options.decode
        # Zoom's second pass crops or resizes the full-size image, which only tensor decoding keeps.
        self.tensor_decode = decode == "tensor" or (
            decode == "auto" and (self.device.type == "cuda" or self.options.zoom)
        )
        self.decoder = ImageDecoder(processor, self.device, self.size, self.tensor_decode)
        self.runner: Callable = self.model
        if self.options.compile != "none":
            self.runner = compile_for_inference(self.model, self.options.compile, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _decode(self, item: PipelineItem) -> tuple[PipelineItem, float]:
        """Decode one image in a worker thread (`ImageDecoder.decode`)."""
        return self.decoder.decode(item)

    # ----- compute (calling thread) -----

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the run's dtype, or nothing for fp32."""
        dtype = DTYPES[self.options.dtype]
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def input_size(self, original_size: tuple[int, int]) -> tuple[int, int] | None:
        """`(height, width)` of the network's input for an image of `original_size`, or None for its own size.

        The run's resolution through the processor's `resized_size`, so that `keep_aspect_ratio` applies here as in
        `preprocess` (the CPU decoder resizes through `preprocess` itself).
        """
        if self.size is None:
            return None
        size = self.processor.resized_size(*original_size, {"height": self.size[0], "width": self.size[1]})
        return size["height"], size["width"]

    def _sync(self) -> None:
        """Wait for the device when profiling, so that each stage's time is its own."""
        if self.options.profile and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits of a batch on the model's device, with the run's dtype, layout, compile and TTA settings.

        Args:
            pixel_values: `(batch, 3, height, width)` float32 on the model's device.

        Returns:
            `(batch, 1, height, width)` float32 logits.
        """
        batch = pixel_values.shape[0]
        if self.options.compile != "none" and batch < self.options.batch_size:
            # Static shapes: pad the last batch instead of compiling a second graph.
            filler = pixel_values[-1:].expand(self.options.batch_size - batch, -1, -1, -1)
            pixel_values = torch.cat([pixel_values, filler])  # (batch_size, 3, height, width)
        pixel_values = pixel_values.contiguous(memory_format=self.memory_format)
        if self.options.compile != "none" and self.device.type == "cuda":
            # max-autotune replays CUDA graphs, and a replay may reuse the memory of the last one's outputs. One
            # iteration per batch keeps the first pass's logits alive while the hflip TTA pass runs.
            torch.compiler.cudagraph_mark_step_begin()
        with torch.inference_mode(), self._autocast():
            logits = predict_logits(self.runner, pixel_values, tta=self.options.tta)  # (batch_size, 1, h, w)
        return logits[:batch]

    def _launch(self, items: list[PipelineItem], summary: PredictSummary) -> list[GroupInFlight]:
        """Queue the masks and RLE of decoded items on the device, grouped by input and original size.

        Nothing here waits for a CUDA device unless `profile` is set: the RLE boundaries and the masks to save are
        copied to pinned host memory asynchronously, and `_finish` collects them.
        """
        groups: dict[tuple, list[PipelineItem]] = {}
        for item in items:
            if self.tensor_decode:
                shape = self.input_size(item.original_size) or tuple(item.image.shape[-2:])
            else:
                shape = tuple(item.pixel_values.shape[-2:])
            groups.setdefault((tuple(shape), tuple(item.original_size)), []).append(item)
        on_cuda = self.device.type == "cuda"
        launched = []
        for (shape, (height, width)), group in groups.items():
            start = time.perf_counter()
            if self.tensor_decode:
                images = [item.image.to(self.device, non_blocking=True) for item in group]
                pixel_values = self.tensor_processor.preprocess_tensors(images, shape)  # (batch, 3, *shape)
            else:
                pixel_values = torch.stack([item.pixel_values for item in group])  # (batch, 3, h, w)
                if on_cuda:
                    pixel_values = pixel_values.pin_memory()
                pixel_values = pixel_values.to(self.device, non_blocking=True)
            with torch.inference_mode():
                logits = self.forward(pixel_values)  # (batch, 1, h, w)
                logits = CarSegImageProcessor.resize_logits(logits, (height, width))  # (batch, 1, height, width)
                masks = logits[:, 0] > self.logit_threshold  # (batch, height, width) bool
                if self.options.zoom:
                    zoom_in_place(self, images, masks, shape)
                self._sync()
                summary.stage_seconds["model"] += time.perf_counter() - start
                start = time.perf_counter()
                in_flight = GroupInFlight(items=group)
                in_flight.row_indices = [index for index, item in enumerate(group) if item.need_row]
                if in_flight.row_indices:
                    in_flight.rle = rle_encode_torch_async(select_masks(masks, in_flight.row_indices))
                in_flight.mask_indices = [index for index, item in enumerate(group) if item.need_mask]
                if in_flight.mask_indices:
                    selected = select_masks(masks, in_flight.mask_indices)  # (count, height, width) bool
                    (in_flight.masks,), in_flight.masks_copied = copy_to_host_async(selected)
                self._sync()
                summary.stage_seconds["rle"] += time.perf_counter() - start
            for item in group:
                item.pixel_values = item.image = None
            launched.append(in_flight)
        return launched

    def _finish(self, launched: list[GroupInFlight], summary: PredictSummary) -> None:
        """Wait for the host copies of `_launch`, then give each item its RLE string and/or mask array."""
        start = time.perf_counter()
        for in_flight in launched:
            if in_flight.rle is not None:
                for index, rle in zip(in_flight.row_indices, in_flight.rle.result()):
                    in_flight.items[index].rle = rle
            if in_flight.masks is not None:
                if in_flight.masks_copied is not None:
                    in_flight.masks_copied.synchronize()
                for index, mask in zip(in_flight.mask_indices, in_flight.masks.numpy()):
                    in_flight.items[index].mask = mask  # (height, width) bool
        summary.stage_seconds["rle"] += time.perf_counter() - start

    # ----- the pipeline -----

    def settings_record(self, output_format: str) -> dict:
        """What produces this predictor's results, as recorded beside each output (`carseg_hf.predict_record`).

        Args:
            output_format: The output's format: `"png"` or `"gif"` masks, `"jpeg"` overlays, `"rle"` submission rows.

        Returns:
            A JSON-serialisable dict; the keys of `predict_record.RESULT_SETTINGS` are compared on a rerun.
        """
        processor = self.processor.to_dict()
        return {
            "record_version": RECORD_VERSION,
            "model": self.source.name_or_path,
            "revision": self.source.revision,
            "weights_file_sha256": self.source.weights_file_sha256,
            "weights_sha256": self.weights_sha256,
            "processor": {key: processor.get(key) for key in PROCESSOR_SETTINGS},
            "threshold": self.threshold,
            "tta": "hflip" if self.options.tta else "none",
            "resolution": "native" if self.size is None else f"{self.size[0]}x{self.size[1]}",
            "format": output_format,
            # absent when off, as in records made before --zoom; named after the passes zoom may run, so that outputs
            # of an earlier zoom ("on": in only; "in+out") are not resumed as if they were the same
            **({"zoom": "in+out+close-up"} if self.options.zoom else {}),
        }

    def run(
        self, inputs: Sequence[str | os.PathLike], on_batch: Callable[[int, int], None] | None = None
    ) -> PredictSummary:
        """Segment every input image and write the outputs.

        Args:
            inputs: Files, folders and globs (see `expand_inputs`).
            on_batch: Called as `on_batch(batch_index, images_in_batch)` after each batch is computed and handed
                to the writer; an exception raised there stops the run like any interruption.

        Returns:
            The run's summary. Images that could not be read are listed in `failed`; the run goes on without them.

        Raises:
            FileNotFoundError: If an input matches nothing.
            ValueError: If two inputs would write the same output name, or an output would land on an input photo
                or in an input folder.
        """
        self.options.validate_outputs()
        start = time.perf_counter()
        paths = expand_inputs(inputs)
        check_name_clashes(paths, by_stem=self.options.out_dir is not None or self.options.overlay_dir is not None)
        options = self.options
        check_outputs_apart_from_inputs(inputs, paths, options.out_dir, options.overlay_dir, options.mask_format)
        summary = PredictSummary(total=len(paths))
        outputs = open_outputs(self.options, self.settings_record)
        submission = outputs.submission
        try:
            check_sources(paths, outputs, self.options)
            pending = pending_items(paths, outputs, self.options)
            summary.skipped = len(paths) - len(pending)
            self._stream(pending, outputs, summary, on_batch)
        finally:
            if submission is not None:
                submission.close()
        if submission is not None:
            names = {submission_name(path) for path in paths}
            summary.submission_rows, summary.submission_rows_kept = submission.finalize(names)
        summary.seconds = time.perf_counter() - start
        return summary

    def _stream(
        self,
        items: list[PipelineItem],
        outputs: RunOutputs,
        summary: PredictSummary,
        on_batch: Callable[[int, int], None] | None,
    ) -> None:
        """Run the pipeline: the reader decodes ahead, this thread computes, the writer saves behind."""
        from tqdm.auto import tqdm

        stop = threading.Event()
        progress = tqdm(total=len(items), unit="img", disable=not self.options.progress, dynamic_ncols=True)
        writer = BatchWriter(partial(self._write, outputs, summary, progress), self.options.prefetch, stop)
        writer.start()
        reader = BatchReader(
            items, self.options.batch_size, self._decode, self.options.workers, self.options.prefetch, stop
        )
        reader.start()
        try:
            self._compute(reader.batches(), writer, summary, progress, on_batch)
        finally:
            writer.close()  # first, so that what was computed is written
            reader.close()
            progress.close()
        writer.raise_error()

    def _compute(
        self,
        batches: Iterable[list[Future]],
        writer: BatchWriter,
        summary: PredictSummary,
        progress: Any,
        on_batch: Callable[[int, int], None] | None,
    ) -> None:
        """Compute the decoded batches in order and hand each to the writer, keeping one batch in flight.

        Batch N's host copies are collected (and its RLE strings built) only after batch N + 1 is queued, so the
        device has work while the host waits for and formats batch N. `profile` turns this off, as its
        synchronisation would serialise the two anyway.
        """
        previous: BatchInFlight | None = None
        for index, futures in enumerate(batches):
            try:
                batch = self._collect(futures, summary, progress)
                current = BatchInFlight(index, batch, self._launch(batch, summary) if batch else [])
            except BaseException:
                # A failure here (out of memory, an interruption) leaves the batch in flight finished: it is
                # written before the error goes on, so a rerun has one batch fewer to compute.
                if previous is not None:
                    with contextlib.suppress(Exception):
                        self._hand_off(previous, writer, summary, on_batch)
                raise
            if previous is not None and not self._hand_off(previous, writer, summary, on_batch):
                return
            if self.options.profile:  # no batch in flight
                previous = None
                if not self._hand_off(current, writer, summary, on_batch):
                    return
            else:
                previous = current
        if previous is not None:
            self._hand_off(previous, writer, summary, on_batch)

    def _hand_off(
        self,
        done: BatchInFlight,
        writer: BatchWriter,
        summary: PredictSummary,
        on_batch: Callable[[int, int], None] | None,
    ) -> bool:
        """Collect a batch's results and queue it for the writer; False if the writer has stopped."""
        self._finish(done.groups, summary)
        summary.processed += len(done.items)
        if done.items and not writer.put(done.items):
            return False  # the writer stopped
        if on_batch is not None:
            on_batch(done.index, len(done.items))
        return True

    def _write(self, outputs: RunOutputs, summary: PredictSummary, progress: Any, batch: list[PipelineItem]) -> None:
        """Write a batch's outputs (in the writer thread), timing it and advancing the progress bar."""
        started = time.perf_counter()
        write_batch(batch, outputs, self.options)
        summary.stage_seconds["write"] += time.perf_counter() - started
        progress.update(len(batch))

    def _collect(self, futures: list[Future], summary: PredictSummary, progress: Any) -> list[PipelineItem]:
        """Wait for a batch's decoding, report and drop the images that failed."""
        items = []
        for future in futures:
            item, seconds = future.result()
            summary.stage_seconds["decode"] += seconds
            items.append(item)
        if self.tensor_decode:
            start = time.perf_counter()
            self.decoder.decode_jpegs_on_device(items)
            self._sync()
            summary.stage_seconds["decode"] += time.perf_counter() - start
        good = []
        for item in items:
            if item.error is None:
                good.append(item)
            else:
                summary.failed.append((str(item.path), item.error))
                named = item.error if str(item.path) in item.error else f"{item.path}: {item.error}"
                progress.write(f"skipped {named}")
                progress.update(1)
        return good
