"""The settings of a batch prediction run (`PredictOptions`) and what it did (`PredictSummary`).

This module imports no heavy library, so that `carseg predict --help` can show the defaults written here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..image_io import DEFAULT_MAX_PIXELS
from ..output_folders import output_folder_problem
from ..sizes import MIN_INPUT_SIDE, is_input_side

#: Mask file formats: 0/255 greyscale PNG, or 0/1 palette GIF like Carvana's `train_masks`.
MASK_FORMATS = ("png", "gif")
#: `torch.compile` modes; `"none"` runs the model eagerly.
COMPILE_MODES = ("none", "default", "max-autotune")
#: Autocast dtypes of the forward pass, by name.
DTYPE_NAMES = ("fp32", "bf16", "fp16")
#: Ways of decoding the images; see `PredictOptions.decode`.
DECODE_MODES = ("auto", "processor", "tensor")
#: Network input sizes by name, besides an explicit `(height, width)`; see `PredictOptions.resolution`.
RESOLUTION_NAMES = ("processor", "native")
#: The settings tuned for a device type, where they differ from the field defaults (`PredictOptions.for_device`).
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"batch_size": 16, "workers": 4, "dtype": "bf16"},
    "cpu": {"batch_size": 1, "workers": 1, "dtype": "fp32"},
}


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
        zoom: Segment a close-up's car once more at a small input, a car that runs off both sides of a tall frame once
            more at a smaller input, and a car that fills little of the frame once more from a crop around it
            (`carseg_hf.zoom`).
            It needs the full-size image, so it decodes with torchvision (`decode="tensor"`; `"auto"` picks it).
        threshold: Probability threshold; None takes the processor's.
        resolution: The network's input size: `"processor"` (the processor's `size`), `"native"` (each image's own
            size) or `(height, width)`. `carseg predict` parses its `--resolution` text into one of these.
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
    zoom: bool = False
    threshold: float | None = None
    resolution: str | tuple[int, int] = "processor"
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

    @classmethod
    def for_device(cls, device_type: str, **settings: Any) -> PredictOptions:
        """Options with the batch size, decoding threads and dtype tuned for a device, as `carseg predict` uses them.

        Args:
            device_type: `"cuda"` for `DEVICE_DEFAULTS["cuda"]`; any other device type gets `DEVICE_DEFAULTS["cpu"]`.
            settings: Fields to set; a None value keeps the default (every field whose default is not None needs a
                value other than None).

        Returns:
            The options (not yet validated).
        """
        tuned = DEVICE_DEFAULTS["cuda" if device_type == "cuda" else "cpu"]
        return cls(**{**tuned, **{name: value for name, value in settings.items() if value is not None}})

    def validate_outputs(self) -> None:
        """Raise `ValueError` when the run would write nothing."""
        if self.out_dir is None and self.submission is None and self.overlay_dir is None:
            raise ValueError(
                "nothing to write: pass --out DIR for mask files, --overlay DIR for overlays and/or "
                "--submission FILE.csv[.gz]"
            )
        for option, folder in (("--out", self.out_dir), ("--overlay", self.overlay_dir)):
            if folder is not None and (problem := output_folder_problem(folder, option)) is not None:
                raise ValueError(problem)

    def validate(self) -> None:
        """Raise `ValueError` naming the first invalid option (outputs are checked by `validate_outputs`)."""
        if self.mask_format not in MASK_FORMATS:
            raise ValueError(f"--format must be one of {MASK_FORMATS}, got {self.mask_format!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"--compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(f"--dtype must be one of {DTYPE_NAMES}, got {self.dtype!r}")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"decode must be 'auto', 'processor' or 'tensor', got {self.decode!r}")
        if self.zoom and self.decode == "processor":
            raise ValueError(
                "zoom crops the full-size image, which processor decoding does not keep: use decode='tensor' or 'auto'"
            )
        if not _is_resolution(self.resolution):
            raise ValueError(
                f"--resolution must be 'processor', 'native' or (height, width) with integers of at least "
                f"{MIN_INPUT_SIDE}, got {self.resolution!r}"
            )
        if not isinstance(self.resolution, str) and self.resolution[0] * self.resolution[1] > DEFAULT_MAX_PIXELS:
            height, width = self.resolution
            raise ValueError(
                f"--resolution {height}x{width} is {height * width:,} pixels, over the limit of "
                f"{DEFAULT_MAX_PIXELS:,} (the largest photo carseg reads); choose a smaller network input"
            )
        for name, value in (
            ("--batch-size", self.batch_size),
            ("--workers", self.workers),
            ("prefetch", self.prefetch),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"--threshold must lie strictly between 0 and 1, got {self.threshold}")
        if self.submission is not None and not str(self.submission).lower().endswith((".csv", ".csv.gz")):
            raise ValueError(f"--submission must end in .csv or .csv.gz, got {str(self.submission)!r}")


def _is_resolution(value: object) -> bool:
    """Whether `value` is `"processor"`, `"native"` or a `(height, width)` pair of integers >= `MIN_INPUT_SIDE`."""
    if isinstance(value, str):
        return value in RESOLUTION_NAMES
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(is_input_side(side) for side in value)


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
