"""The optimiser, the step counts of a run and the learning-rate scheduler."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator

from .arguments import TrainingArguments


def build_optimizer(args: TrainingArguments, model: torch.nn.Module, accelerator: Accelerator) -> torch.optim.Adam:
    """Adam, as in the reference recipe, with the `--adam_*`, `--learning_rate` and `--weight_decay` options."""
    return torch.optim.Adam(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        fused=accelerator.device.type == "cuda",
    )


@dataclass(frozen=True)
class StepSchedule:
    """How long a run is, in optimizer steps and epochs, and how many images one step takes.

    Args:
        steps_per_epoch: Optimizer steps per epoch (micro-batches per process / gradient accumulation, rounded up).
        max_train_steps: Optimizer steps of the whole run (`--max_train_steps`, or epochs x steps per epoch).
        num_epochs: Epochs needed for `max_train_steps`.
        total_batch_size: Images per optimizer step over all processes.
    """

    steps_per_epoch: int
    max_train_steps: int
    num_epochs: int
    total_batch_size: int

    @classmethod
    def for_run(cls, args: TrainingArguments, batches_per_epoch: int, num_processes: int) -> StepSchedule:
        """The schedule of a run whose prepared training loader has `batches_per_epoch` batches per process."""
        steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
        max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
        return cls(
            steps_per_epoch=steps_per_epoch,
            max_train_steps=max_train_steps,
            num_epochs=math.ceil(max_train_steps / steps_per_epoch),
            total_batch_size=args.train_batch_size * num_processes * args.gradient_accumulation_steps,
        )


def build_scheduler(args: TrainingArguments, optimizer: torch.optim.Optimizer, schedule: StepSchedule) -> Any:
    """The `--lr_scheduler`: None (constant), ReduceLROnPlateau or CosineAnnealingLR.

    Neither scheduler goes through `accelerator.prepare` (an AcceleratedScheduler would step once per process):
    plateau is stepped by hand once per validation, cosine once per optimizer step (skipped updates included).
    `save_checkpoint` / `load_training_state` save and restore them.
    """
    if args.lr_scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=args.lr_plateau_factor,
            patience=args.lr_plateau_patience,
            threshold=args.early_stopping_min_delta,
            threshold_mode="abs",
        )
    if args.lr_scheduler == "cosine":
        # From --learning_rate down to lr * lr_min_ratio at the last optimizer step.
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=schedule.max_train_steps, eta_min=args.learning_rate * args.lr_min_ratio
        )
    return None
