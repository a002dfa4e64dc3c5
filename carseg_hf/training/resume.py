"""Resuming a run: weights, optimizer, scheduler and random states from safetensors/JSON, the step from the state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from .arguments import TrainingArguments
from .checkpoint_format import load_training_state
from .checkpointing import TrainerState, resolve_resume_checkpoint
from .optimization import StepSchedule
from .run_state import logger


def resume_trainer_state(
    args: TrainingArguments,
    accelerator: Accelerator,
    output_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    schedule: StepSchedule,
) -> tuple[TrainerState, bool]:
    """Load the checkpoint named by `--resume_from_checkpoint` into the prepared objects, if there is one.

    Args:
        args: The training arguments.
        accelerator: The run's Accelerator.
        output_dir: `--output_dir`, where `latest` is looked up.
        model: The prepared model.
        optimizer: The prepared optimizer.
        scheduler: The learning-rate scheduler, or None.
        schedule: This run's step schedule, which the checkpoint's must match.

    Returns:
        `(state, resumed)`: the checkpoint's trainer state and True, or a fresh state and False.

    Raises:
        ValueError: If the checkpoint was written with another number of steps per epoch or images per step.
    """
    fresh = TrainerState(steps_per_epoch=schedule.steps_per_epoch, total_batch_size=schedule.total_batch_size)
    if not args.resume_from_checkpoint:
        return fresh, False
    checkpoint = resolve_resume_checkpoint(output_dir, args.resume_from_checkpoint)
    if checkpoint is None:
        logger.info(f"no checkpoint in {output_dir} yet; starting a new run")
        return fresh, False
    saved = TrainerState.load(checkpoint)
    if (saved.steps_per_epoch, saved.total_batch_size) != (schedule.steps_per_epoch, schedule.total_batch_size):
        raise ValueError(
            f"{checkpoint} was written with {saved.steps_per_epoch} steps per epoch and "
            f"{saved.total_batch_size} images per step, this run has {schedule.steps_per_epoch} and "
            f"{schedule.total_batch_size}; resume with the same batch size, gradient accumulation, number of "
            "processes and data"
        )
    load_training_state(checkpoint, accelerator, model, optimizer, scheduler)
    warn_of_ignored_learning_rate(args, optimizer, checkpoint)
    logger.info(f"resumed from {checkpoint} at step {saved.global_step}")
    return saved, True


def warn_of_ignored_learning_rate(args: TrainingArguments, optimizer: torch.optim.Optimizer, checkpoint: Path) -> None:
    """Say so when the restored optimizer's base learning rate is not `--learning-rate`: resuming keeps the run's."""
    restored = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
    if abs(restored - args.learning_rate) > 1e-12 * max(abs(restored), abs(args.learning_rate)):
        logger.warning(
            f"{checkpoint} was trained with --learning-rate {restored:g}; resuming keeps its optimizer and schedule, "
            f"so --learning-rate {args.learning_rate:g} is ignored (to change it, start a new run from the "
            "checkpoint's weights, e.g. --model-name-or-path OUTPUT_DIR/best)"
        )
