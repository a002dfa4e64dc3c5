"""Streaming batch inference: folders of images to mask files and/or a Kaggle submission, resumable.

Three stages overlap: a thread pool decodes the next batches, the calling thread runs the model, and a writer thread
saves masks and submission rows. On the device one batch stays in flight: the calling thread queues batch N + 1 before
it waits for batch N's run boundaries and masks, which come back through asynchronous copies, so a GPU does not idle
while the host builds RLE strings. Queues between the stages are bounded, so memory does not grow with the number of
inputs. Every mask file is written to a temporary name and renamed into place, and submission rows go to a journal
(`<submission>.partial`, a plain CSV flushed after every batch) that becomes the submission only at the end, so an
interrupted run leaves no half-written file and a rerun continues where it stopped. Each output records the settings
that produced it (`carseg_hf.predict_record`), and a rerun with other settings stops instead of mixing results.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .batchnorm_folding import fold_batchnorm
from .gpu_preprocess import JPEG_MAGIC, decode_jpegs, parse_resolution, preprocess_tensors
from .image_io import IMAGE_EXTENSIONS, PAIR_MASK_SUFFIX, ImageDecodeError
from .image_processing_carseg import CarSegImageProcessor
from .inference import predict_logits
from .modeling_carseg import CarSegForSemanticSegmentation
from .predict_record import (
    PROCESSOR_SETTINGS,
    RECORD_VERSION,
    FolderJournal,
    ModelSource,
    OutputCheck,
    check_outputs,
    read_record,
    state_dict_sha256,
    submission_record_path,
    write_record,
)
from .rle import PendingRLE, allow_long_csv_fields, check_submission_target, prepare_submission_target

#: File extensions picked up when a folder is given as input.
MASK_FORMATS = ("png", "gif")
COMPILE_MODES = ("none", "default", "max-autotune")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_TMP_PREFIX = ".carseg-tmp-"
_SUBMISSION_HEADER = "img,rle_mask\n"
_DONE = object()


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted list of distinct image files.

    A folder contributes its files with an image extension (`IMAGE_EXTENSIONS`, not recursive), except the masks of
    an image/mask pair folder: `car_03_mask.png` is left out when the folder also holds an image `car_03.*`. A glob
    (`*`, `?`, `[`, `**`) contributes every file it matches; a file is taken as is, whatever its extension.

    Args:
        inputs: Files, folders and glob patterns.

    Returns:
        The files, sorted by path, each once.

    Raises:
        FileNotFoundError: If no input is given, or an input matches no file (it names the input).
    """
    if not inputs:
        raise FileNotFoundError("no input given; pass image files, folders or glob patterns such as 'test/*.jpg'")
    found: dict[str, Path] = {}
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            matches = _images_in_folder(path)
            if not matches:
                raise FileNotFoundError(
                    f"folder {text!r} holds no image files (looked for {', '.join(IMAGE_EXTENSIONS)})"
                )
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = [Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True) if os.path.isfile(p)]
            if not matches:
                raise FileNotFoundError(f"the pattern {text!r} matches no file")
        else:
            raise FileNotFoundError(f"input {text!r} does not exist (expected an image file, a folder or a glob)")
        for match in matches:
            found.setdefault(os.path.realpath(match), match)
    return sorted(found.values(), key=lambda p: os.fspath(p))


def _images_in_folder(folder: Path) -> list[Path]:
    """A folder's image files, without the masks of image/mask pairs (`x_mask.png` beside `x.jpg`)."""
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    stems = {p.stem for p in images}
    return [p for p in images if not (p.stem.endswith(PAIR_MASK_SUFFIX) and p.stem[: -len(PAIR_MASK_SUFFIX)] in stems)]


def mask_path_for(image: Path, out_dir: Path, mask_format: str) -> Path:
    """The mask file written for `image`: `<out_dir>/<image stem>.<png|gif>`."""
    return out_dir / f"{image.stem}.{mask_format}"


def overlay_path_for(image: Path, overlay_dir: Path) -> Path:
    """The overlay written for `image`: `<overlay_dir>/<image stem>_overlay.jpg`."""
    return overlay_dir / f"{image.stem}_overlay.jpg"


def submission_name(image: Path) -> str:
    """The `img` value of an image's submission row: its file name (`.jpg` added when it has no extension)."""
    return image.name if image.suffix else f"{image.name}.jpg"


def _write_atomic(path: Path, save: Callable[[Path], object]) -> None:
    """Call `save(tmp)` on a temporary name beside `path`, then rename it into place (a file that exists is whole)."""
    tmp = path.with_name(f"{_TMP_PREFIX}{os.getpid()}-{path.name}")  # keeps the extension for the encoder
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_mask_atomic(mask: np.ndarray, path: Path, mask_format: str) -> None:
    """Write a mask to `path` atomically, as a 0/255 PNG or a 0/1 palette GIF."""
    from .overlay import save_mask_gif, save_mask_png

    _write_atomic(path, lambda tmp: save_mask_png(mask, tmp) if mask_format == "png" else save_mask_gif(mask, tmp))


def _write_overlay_atomic(image_path: Path, mask: np.ndarray, path: Path) -> None:
    """Write the photo with its predicted car tinted (`overlay.prediction_overlay`) to `path` as a JPEG, atomically."""
    from .image_io import load_rgb
    from .overlay import prediction_overlay

    overlay = Image.fromarray(prediction_overlay(load_rgb(image_path), mask))  # decoded as for the prediction
    _write_atomic(path, lambda tmp: overlay.save(tmp, format="JPEG", quality=90))


def _remove_stale_tmp_files(out_dir: Path) -> None:
    """Remove temporary mask files left by a killed run (their process is gone)."""
    for tmp in out_dir.glob(f"{_TMP_PREFIX}*"):
        pid = tmp.name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except PermissionError:
                pass


class SubmissionJournal:
    """An append-only CSV of finished submission rows, flushed to disk after every batch.

    The journal lives at `<submission>.partial` and is an uncompressed `img,rle_mask` CSV. An incomplete last line
    (the process died while writing it) is cut off when the journal is reopened. `finalize` streams the rows into the
    submission (through `carseg_hf.rle.SubmissionWriter`, which renames atomically) and deletes the journal. The
    settings that produced the rows are recorded in `<submission>.carseg.json` (see `carseg_hf.predict_record`),
    which stays beside the finished submission.

    Args:
        submission: The final submission path (`.csv` or `.csv.gz`).
        settings: The settings of this run (`BatchPredictor.settings_record`).
        overwrite: Start a new journal instead of continuing an existing one.

    Raises:
        SettingsChangedError: If the journal or the submission holds rows made with other (or unrecorded) settings
            and `overwrite` is not set.
        ValueError: If the submission cannot be written (read-only, under a file, a folder).
    """

    def __init__(self, submission: str | os.PathLike, settings: dict, overwrite: bool = False) -> None:
        self.submission = Path(submission)
        self.path = self.submission.with_name(self.submission.name + ".partial")
        self.done: set[str] = set()
        prepare_submission_target(self.submission)  # a read-only or impossible target stops the run before it starts
        if not overwrite:
            check_outputs([self.output_check(self.submission, settings)])
        write_record(submission_record_path(self.submission), settings)
        if overwrite:
            self.path.unlink(missing_ok=True)
        elif not self.path.exists() and self.submission.is_file():
            self._seed_from_submission()
        if self.path.exists():
            self._recover()
        else:
            with open(self.path, "wb") as handle:
                handle.write(_SUBMISSION_HEADER.encode())
        self._handle = open(self.path, "ab")

    @staticmethod
    def output_check(submission: str | os.PathLike, settings: dict) -> OutputCheck:
        """The submission as `check_outputs` compares it: its record, and whether it or its journal exists."""
        submission = Path(submission)
        journal = submission.with_name(submission.name + ".partial")
        recorded = read_record(submission_record_path(submission))
        return OutputCheck(f"the submission {submission}", recorded, journal.exists() or submission.exists(), settings)

    def _seed_from_submission(self) -> None:
        """Continue from a finished submission: its rows count as done (e.g. after fixing a failed image)."""
        from .rle import read_rle_csv

        rows = read_rle_csv(self.submission)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(_SUBMISSION_HEADER.encode())
            handle.write(b"".join(_csv_row(name, rle) for name, rle in rows.items()))
        os.replace(tmp, self.path)

    def _recover(self) -> None:
        """Read the names already done and cut an incomplete last line."""
        allow_long_csv_fields()
        with open(self.path, "rb") as handle:
            header = handle.readline()
            if header != _SUBMISSION_HEADER.encode():
                raise ValueError(
                    f"{self.path} is not a carseg submission journal (header {header[:40]!r}); delete it or pass "
                    "--overwrite"
                )
            valid = len(header)
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                name = next(csv.reader([line.decode("utf-8")]))[0]
                self.done.add(name)
                valid += len(line)
        if valid != self.path.stat().st_size:
            with open(self.path, "r+b") as handle:
                handle.truncate(valid)

    def append(self, rows: Sequence[tuple[str, str]]) -> None:
        """Append rows and make them durable before returning."""
        self._handle.write(b"".join(_csv_row(name, rle) for name, rle in rows))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.update(name for name, _ in rows)

    def close(self) -> None:
        """Close the journal file, keeping it on disk."""
        if not self._handle.closed:
            self._handle.close()

    def finalize(self, names: set[str]) -> tuple[int, int]:
        """Write the submission from every journal row, then delete the journal.

        Rows of images that are not among this run's inputs (a rerun on a subset) are kept: they were made with the
        same settings, which the record guarantees.

        Args:
            names: The `img` values of this run's inputs.

        Returns:
            The number of rows written, and how many of them are of images outside `names`.
        """
        from .rle import SubmissionWriter

        self.close()
        allow_long_csv_fields()
        kept = 0
        with open(self.path, encoding="utf-8", newline="") as handle, SubmissionWriter(self.submission) as writer:
            next(handle)  # the header
            for name, rle in csv.reader(handle):  # streamed: the journal may be larger than memory
                writer.write(name, rle)
                kept += name not in names
            count = writer.count
        self.path.unlink()
        return count, kept


def _csv_row(name: str, rle: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([name, rle])
    return buffer.getvalue().encode("utf-8")


@dataclass
class PredictOptions:
    """Settings of a `BatchPredictor` run (the `carseg predict` options).

    Attributes:
        out_dir: Folder for mask files, or None for no mask files.
        mask_format: `"png"` (0/255 greyscale) or `"gif"` (0/1 palette, like Carvana's `train_masks`).
        overlay_dir: Folder for overlays to look at, `<image stem>_overlay.jpg`: the photo at its size with the
            predicted car tinted (`overlay.prediction_overlay`), or None for none.
        submission: Kaggle submission to write (`.csv` or `.csv.gz`), or None.
        batch_size: Images per forward pass.
        tta: Horizontal-flip test-time augmentation.
        threshold: Probability threshold; None takes the processor's.
        resolution: `"processor"`, `"native"` or `"HxW"` (the network's input size).
        compile: `"none"`, `"default"` or `"max-autotune"` (`torch.compile` with static shapes).
        dtype: `"fp32"`, `"bf16"` or `"fp16"` autocast for the forward pass.
        channels_last: Run convolutions in the channels-last memory format.
        fold_batchnorm: Run a copy of the model with each BatchNorm folded into its convolution (exact in eval mode
            up to float rounding, and one pass over each activation fewer).
        workers: Decoding threads.
        decode: `"processor"` (PIL through `CarSegImageProcessor`, on the CPU), `"tensor"` (torchvision JPEG
            decoding on the model's device, nvjpeg on CUDA) or `"auto"` (tensor on CUDA, processor on CPU).
        overwrite: Recompute everything instead of skipping finished outputs.
        progress: Show a tqdm progress bar.
        profile: Synchronise the device between stages so that `stage_seconds` splits GPU time exactly; this also
            finishes each batch before the next is queued, so it costs throughput on a GPU.
        prefetch: Decoded batches kept ready ahead of the model.
    """

    out_dir: str | os.PathLike | None = None
    mask_format: str = "png"
    overlay_dir: str | os.PathLike | None = None
    submission: str | os.PathLike | None = None
    batch_size: int = 4
    tta: bool = False
    threshold: float | None = None
    resolution: str = "processor"
    compile: str = "none"
    dtype: str = "fp32"
    channels_last: bool = True
    fold_batchnorm: bool = True
    workers: int = 2
    decode: str = "auto"
    overwrite: bool = False
    progress: bool = True
    profile: bool = False
    prefetch: int = 2

    def validate_outputs(self) -> None:
        """Raise `ValueError` when the run would write nothing."""
        if self.out_dir is None and self.submission is None and self.overlay_dir is None:
            raise ValueError(
                "nothing to write: pass --out DIR for mask files, --overlay DIR for overlays and/or "
                "--submission FILE.csv[.gz]"
            )

    def validate(self) -> None:
        """Raise `ValueError` naming the first invalid option (outputs are checked by `validate_outputs`)."""
        if self.mask_format not in MASK_FORMATS:
            raise ValueError(f"--format must be one of {MASK_FORMATS}, got {self.mask_format!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"--compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")
        if self.decode not in ("auto", "processor", "tensor"):
            raise ValueError(f"decode must be 'auto', 'processor' or 'tensor', got {self.decode!r}")
        if self.batch_size < 1 or self.workers < 1 or self.prefetch < 1:
            raise ValueError(
                f"--batch-size, --workers and prefetch must be >= 1, got {self.batch_size}, {self.workers}, "
                f"{self.prefetch}"
            )
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"--threshold must lie strictly between 0 and 1, got {self.threshold}")
        if self.submission is not None and not str(self.submission).lower().endswith((".csv", ".csv.gz")):
            raise ValueError(f"--submission must end in .csv or .csv.gz, got {str(self.submission)!r}")


@dataclass
class PredictSummary:
    """What a run did.

    Attributes:
        total: Inputs after expansion.
        processed: Images segmented in this run.
        skipped: Images whose outputs already existed.
        failed: `(path, reason)` of every image that could not be read.
        seconds: Wall time of the run.
        stage_seconds: Time per stage: `decode` (summed over decoding threads), `model`, `rle`, `write`. On a GPU
            without `profile`, work is queued asynchronously: `model` is then the time to queue it, and `rle`
            includes the wait for it.
        submission_rows: Rows in the finished submission, or None without `--submission`.
        submission_rows_kept: Rows of the submission whose image is not among this run's inputs: kept from earlier
            runs with the same settings (a rerun on a subset keeps the rest of the submission).
    """

    total: int = 0
    processed: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict(decode=0.0, model=0.0, rle=0.0, write=0.0))
    submission_rows: int | None = None
    submission_rows_kept: int = 0

    @property
    def images_per_second(self) -> float:
        """Processed images per wall-clock second."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Item:
    """One image moving through the pipeline."""

    path: Path
    need_mask: bool
    need_row: bool
    original_size: tuple[int, int] | None = None  # (height, width)
    pixel_values: torch.Tensor | None = None  # (3, height, width) float32, processor path
    image: torch.Tensor | None = None  # (3, height, width) uint8, tensor path
    jpeg: torch.Tensor | None = None  # (num_bytes,) uint8, tensor path before decoding
    error: str | None = None
    mask: np.ndarray | None = None  # (height, width) bool
    rle: str | None = None


@dataclass
class _GroupInFlight:
    """Items of one input and original size whose masks are queued on the device (see `BatchPredictor._launch`)."""

    items: list[_Item]
    row_indices: list[int] = field(default_factory=list)  # items that need a submission row
    rle: PendingRLE | None = None
    mask_indices: list[int] = field(default_factory=list)  # items that need a mask file
    masks: torch.Tensor | None = None  # (len(mask_indices), height, width) bool on the host, pinned on CUDA
    masks_copied: torch.cuda.Event | None = None


@dataclass
class _BatchInFlight:
    """A batch handed to the device, waiting for `_finish` and the writer."""

    index: int
    items: list[_Item]
    groups: list[_GroupInFlight]


@dataclass
class _Outputs:
    """The journals of a run's outputs; None for an output not asked for."""

    masks: FolderJournal | None = None
    overlays: FolderJournal | None = None
    submission: SubmissionJournal | None = None


def _done(journal: FolderJournal | None, path: Path) -> bool:
    """Whether an output file was written with this run's settings: listed in its folder's journal and present."""
    return journal is not None and path.name in journal.done and path.is_file()


def _select(masks: torch.Tensor, indices: list[int]) -> torch.Tensor:
    """`masks[indices]`, without a copy when every mask is selected.

    Stacking views needs no index tensor on the device, whose host-to-device copy could wait for queued work.
    """
    if len(indices) == masks.shape[0]:
        return masks
    return torch.stack([masks[index] for index in indices])  # (len(indices), height, width)


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
        self.source = source or ModelSource(getattr(model, "name_or_path", "") or "an in-memory model")
        self.weights_sha256 = state_dict_sha256(model)  # the weights as run, before any folding
        self.model = model.to(self.device).eval()
        if self.options.fold_batchnorm:
            self.model, _ = fold_batchnorm(self.model)  # an inference-only copy; the caller's model is untouched
        self.memory_format = torch.channels_last if self.options.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.size = parse_resolution(self.options.resolution, processor)
        threshold = processor.threshold if self.options.threshold is None else self.options.threshold
        self.threshold = float(threshold)
        self.logit_threshold = math.log(threshold / (1.0 - threshold))  # sigmoid(x) > t  <=>  x > logit(t)
        decode = self.options.decode
        self.tensor_decode = decode == "tensor" or (decode == "auto" and self.device.type == "cuda")
        self.runner: Callable = self.model
        if self.options.compile != "none":
            mode = None if self.options.compile == "default" else self.options.compile
            if self.device.type == "cpu":
                # Freezing turns the weights into graph constants, so inductor prepacks them for oneDNN and fuses the
                # ReLUs into the convolutions. The compiled model is this predictor's private copy; its weights never
                # change after this point.
                from torch._inductor import list_mode_options

                compile_options = {"freezing": True}
                if mode is not None:
                    compile_options.update(list_mode_options(mode))
                self.runner = torch.compile(self.model, options=compile_options, dynamic=False)
            else:
                self.runner = torch.compile(self.model, mode=mode, dynamic=False)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    # ----- decoding (worker threads) -----

    def _decode(self, item: _Item) -> tuple[_Item, float]:
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

    def _read_for_tensor_path(self, item: _Item) -> None:
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

    def _decode_on_cpu(self, item: _Item) -> None:
        array = self.processor.load_image(item.path)  # (height, width, 3) uint8, names the file on errors
        item.original_size = array.shape[:2]
        item.image = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1)  # (3, height, width)

    def _decode_jpegs_on_device(self, items: list[_Item]) -> None:
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

    # ----- compute (calling thread) -----

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = DTYPES[self.options.dtype]
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _sync(self) -> None:
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

    def _launch(self, items: list[_Item], summary: PredictSummary) -> list[_GroupInFlight]:
        """Queue the masks and RLE of decoded items on the device, grouped by input and original size.

        Nothing here waits for a CUDA device unless `profile` is set: the RLE boundaries and the masks to save are
        copied to pinned host memory asynchronously, and `_finish` collects them.
        """
        from .rle import copy_to_host_async, rle_encode_torch_async

        groups: dict[tuple, list[_Item]] = {}
        for item in items:
            if self.tensor_decode:
                shape = self.size or tuple(item.image.shape[-2:])
            else:
                shape = tuple(item.pixel_values.shape[-2:])
            groups.setdefault((tuple(shape), tuple(item.original_size)), []).append(item)
        on_cuda = self.device.type == "cuda"
        launched = []
        for (_, (height, width)), group in groups.items():
            start = time.perf_counter()
            if self.tensor_decode:
                images = [item.image.to(self.device, non_blocking=True) for item in group]
                pixel_values = preprocess_tensors(images, self.processor, self.size)  # (batch, 3, h, w)
            else:
                pixel_values = torch.stack([item.pixel_values for item in group])  # (batch, 3, h, w)
                if on_cuda:
                    pixel_values = pixel_values.pin_memory()
                pixel_values = pixel_values.to(self.device, non_blocking=True)
            with torch.inference_mode():
                logits = self.forward(pixel_values)  # (batch, 1, h, w)
                logits = CarSegImageProcessor.resize_logits(logits, (height, width))  # (batch, 1, height, width)
                masks = logits[:, 0] > self.logit_threshold  # (batch, height, width) bool
                self._sync()
                summary.stage_seconds["model"] += time.perf_counter() - start
                start = time.perf_counter()
                in_flight = _GroupInFlight(items=group)
                in_flight.row_indices = [index for index, item in enumerate(group) if item.need_row]
                if in_flight.row_indices:
                    in_flight.rle = rle_encode_torch_async(_select(masks, in_flight.row_indices))
                in_flight.mask_indices = [index for index, item in enumerate(group) if item.need_mask]
                if in_flight.mask_indices:
                    selected = _select(masks, in_flight.mask_indices)  # (count, height, width) bool
                    (in_flight.masks,), in_flight.masks_copied = copy_to_host_async(selected)
                self._sync()
                summary.stage_seconds["rle"] += time.perf_counter() - start
            for item in group:
                item.pixel_values = item.image = None
            launched.append(in_flight)
        return launched

    def _finish(self, launched: list[_GroupInFlight], summary: PredictSummary) -> None:
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
        }

    def _open_outputs(self) -> _Outputs:
        """Check every output against this run's settings, then create the folders and open the journals.

        Raises:
            SettingsChangedError: If an output holds results made with other settings and `overwrite` is not set;
                it lists every such output, and nothing was changed.
        """
        folders = [
            (Path(folder), kind, self.settings_record(output_format))
            for folder, kind, output_format in (
                (self.options.out_dir, "masks", self.options.mask_format),
                (self.options.overlay_dir, "overlays", "jpeg"),
            )
            if folder is not None
        ]
        submission_settings = self.settings_record("rle")
        if self.options.submission is not None:
            check_submission_target(self.options.submission)  # before any folder is made
        if not self.options.overwrite:
            checks = [FolderJournal.output_check(*folder) for folder in folders]
            if self.options.submission is not None:
                checks.append(SubmissionJournal.output_check(self.options.submission, submission_settings))
            check_outputs(checks)
        outputs = _Outputs()
        for folder, kind, settings in folders:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_stale_tmp_files(folder)
            setattr(outputs, kind, FolderJournal(folder, kind, settings, self.options.overwrite))
        if self.options.submission is not None:
            outputs.submission = SubmissionJournal(
                self.options.submission, submission_settings, overwrite=self.options.overwrite
            )
        return outputs

    def _pending(self, paths: Sequence[Path], outputs: _Outputs) -> list[_Item]:
        items = []
        out_dir = None if self.options.out_dir is None else Path(self.options.out_dir)
        overlay_dir = None if self.options.overlay_dir is None else Path(self.options.overlay_dir)
        for path in paths:
            need_mask = out_dir is not None and not _done(
                outputs.masks, mask_path_for(path, out_dir, self.options.mask_format)
            )
            need_mask |= overlay_dir is not None and not _done(outputs.overlays, overlay_path_for(path, overlay_dir))
            need_row = outputs.submission is not None and submission_name(path) not in outputs.submission.done
            if need_mask or need_row:
                items.append(_Item(path=path, need_mask=need_mask, need_row=need_row))
        return items

    def _check_name_clashes(self, paths: Sequence[Path]) -> None:
        seen: dict[str, Path] = {}
        for path in paths:
            by_stem = self.options.out_dir is not None or self.options.overlay_dir is not None
            key = path.stem if by_stem else submission_name(path)
            if key in seen:
                raise ValueError(
                    f"inputs {str(seen[key])!r} and {str(path)!r} would write the same output name {key!r}; "
                    "predict them in separate runs"
                )
            seen[key] = path

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
            ValueError: If two inputs would write the same output name.
        """
        self.options.validate_outputs()
        start = time.perf_counter()
        paths = expand_inputs(inputs)
        self._check_name_clashes(paths)
        summary = PredictSummary(total=len(paths))
        outputs = self._open_outputs()
        journal = outputs.submission
        try:
            pending = self._pending(paths, outputs)
            summary.skipped = len(paths) - len(pending)
            self._stream(pending, outputs, summary, on_batch)
        finally:
            if journal is not None:
                journal.close()
        if journal is not None:
            names = {submission_name(path) for path in paths}
            summary.submission_rows, summary.submission_rows_kept = journal.finalize(names)
        summary.seconds = time.perf_counter() - start
        return summary

    def _write_batch(self, batch: list[_Item], outputs: _Outputs) -> None:
        """Write a computed batch's mask files, overlays and submission rows, then record them in the journals."""
        masks, overlays, rows = [], [], []
        for item in batch:
            if item.mask is not None and outputs.masks is not None:
                path = mask_path_for(item.path, Path(self.options.out_dir), self.options.mask_format)
                _write_mask_atomic(item.mask, path, self.options.mask_format)
                masks.append(path.name)
            if item.mask is not None and outputs.overlays is not None:
                path = overlay_path_for(item.path, Path(self.options.overlay_dir))
                _write_overlay_atomic(item.path, item.mask, path)
                overlays.append(path.name)
            if item.rle is not None:
                rows.append((submission_name(item.path), item.rle))
        for journal, names in ((outputs.masks, masks), (outputs.overlays, overlays)):
            if journal is not None:
                journal.append(names)
        if rows:
            outputs.submission.append(rows)

    def _stream(
        self,
        items: list[_Item],
        outputs: _Outputs,
        summary: PredictSummary,
        on_batch: Callable[[int, int], None] | None,
    ) -> None:
        from tqdm.auto import tqdm

        batch_size = self.options.batch_size
        stop = threading.Event()
        decoded: queue.Queue = queue.Queue(maxsize=self.options.prefetch)
        to_write: queue.Queue = queue.Queue(maxsize=self.options.prefetch)
        writer_error: list[BaseException] = []
        progress = tqdm(total=len(items), unit="img", disable=not self.options.progress, dynamic_ncols=True)

        def put(target: queue.Queue, value: object) -> bool:
            while not stop.is_set():
                try:
                    target.put(value, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce(pool: ThreadPoolExecutor) -> None:
            for offset in range(0, len(items), batch_size):
                futures = [pool.submit(self._decode, item) for item in items[offset : offset + batch_size]]
                if not put(decoded, futures):
                    for future in futures:
                        future.cancel()
                    return
            put(decoded, _DONE)

        def write() -> None:
            while True:
                batch = to_write.get()
                if batch is _DONE:
                    return
                try:
                    started = time.perf_counter()
                    self._write_batch(batch, outputs)
                    summary.stage_seconds["write"] += time.perf_counter() - started
                    progress.update(len(batch))
                except BaseException as error:  # handed to the main thread, which re-raises it
                    writer_error.append(error)
                    stop.set()
                    return

        def hand_off(done: _BatchInFlight) -> bool:
            self._finish(done.groups, summary)
            summary.processed += len(done.items)
            if done.items and not put(to_write, done.items):
                return False  # the writer stopped
            if on_batch is not None:
                on_batch(done.index, len(done.items))
            return True

        writer = threading.Thread(target=write, name="carseg-writer", daemon=True)
        writer.start()
        pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="carseg-decode")
        producer = threading.Thread(target=produce, args=(pool,), name="carseg-reader", daemon=True)
        producer.start()

        try:
            # One batch in flight: batch N's host copies are collected (and its RLE strings built) only after batch
            # N + 1 is queued, so the device has work while the host waits for and formats batch N. `profile` turns
            # this off, as its synchronisation would serialise the two anyway.
            previous: _BatchInFlight | None = None
            for index, futures in enumerate(self._batches(decoded, stop)):
                try:
                    batch = self._collect(futures, summary, progress)
                    current = _BatchInFlight(index, batch, self._launch(batch, summary) if batch else [])
                except BaseException:
                    # A failure here (out of memory, an interruption) leaves the batch in flight finished: it is
                    # written before the error goes on, so a rerun has one batch fewer to compute.
                    if previous is not None:
                        with contextlib.suppress(Exception):
                            hand_off(previous)
                    raise
                if previous is not None and not hand_off(previous):
                    break
                if self.options.profile:  # no batch in flight
                    previous = None
                    if not hand_off(current):
                        break
                else:
                    previous = current
            else:
                if previous is not None:
                    hand_off(previous)
        finally:
            stop_writer_cleanly = not writer_error
            if stop_writer_cleanly:
                # Finish writing what was computed, so that no finished work is lost.
                while writer.is_alive():
                    try:
                        to_write.put(_DONE, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                writer.join()
            stop.set()
            producer.join()
            pool.shutdown(wait=True, cancel_futures=True)
            progress.close()
        if writer_error:
            raise writer_error[0]

    @staticmethod
    def _batches(decoded: queue.Queue, stop: threading.Event) -> Iterator[list[Future]]:
        while True:
            try:
                futures = decoded.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if futures is _DONE:
                return
            yield futures

    def _collect(self, futures: list[Future], summary: PredictSummary, progress) -> list[_Item]:
        """Wait for a batch's decoding, report and drop the images that failed."""
        items = []
        for future in futures:
            item, seconds = future.result()
            summary.stage_seconds["decode"] += seconds
            items.append(item)
        if self.tensor_decode:
            start = time.perf_counter()
            self._decode_jpegs_on_device(items)
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
