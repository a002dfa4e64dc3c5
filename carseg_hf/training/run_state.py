"""What the sections of a training run share: the prepared objects, the step schedule and the progress so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from carseg_hf.image_processing_carseg import CarSegImageProcessor

from .arguments import TrainingArguments
from .checkpointing import TrainerState
from .data_pipeline import DataLoaders
from .optimization import StepSchedule

#: The one logger of every section, so that the log lines of a run all carry the same name.
logger = get_logger("carseg_hf.training")


@dataclass
class EpochLoss:
    """Sum and count of the finite training losses of this epoch on this process, kept on the device.

    Args:
        total: A float64 scalar tensor, the sum of the finite micro-batch losses.
        count: An int64 scalar tensor, their number.
    """

    total: torch.Tensor
    count: torch.Tensor

    @classmethod
    def from_state(cls, state: TrainerState, accelerator: Accelerator) -> EpochLoss:
        """The partial epoch loss of a resumed run (saved summed over processes; kept on the main process only)."""
        device = accelerator.device
        total = torch.tensor(state.epoch_loss_sum if accelerator.is_main_process else 0.0, device=device).double()
        count = torch.tensor(state.epoch_loss_count if accelerator.is_main_process else 0, device=device).long()
        return cls(total, count)

    def add(self, loss: torch.Tensor, finite: torch.Tensor) -> None:
        """Add a float64 scalar loss if `finite` (a bool scalar tensor) is true, without a host synchronisation."""
        self.total += torch.where(finite, loss, torch.zeros_like(loss))
        self.count += finite.long()

    def reduce(self, accelerator: Accelerator) -> torch.Tensor:
        """`[sum, count]` (float64) summed over all processes."""
        return accelerator.reduce(torch.stack([self.total, self.count.double()]))

    def reset(self) -> None:
        """Start a new epoch."""
        self.total.zero_()
        self.count.zero_()


@dataclass
class TrainingRun:
    """The state that the sections of `trainer.main` share once the model, data and optimizer are prepared.

    Args:
        args: The training arguments.
        accelerator: The run's Accelerator.
        output_dir: `--output_dir`.
        model: The prepared model.
        processor: Its image processor (normalisation, threshold, size).
        optimizer: The prepared optimizer.
        scheduler: The learning-rate scheduler, or None (constant).
        loaders: The prepared data loaders.
        schedule: Steps per epoch, the run's length and images per step.
        state: The trainer state (step, best dice, history): fresh, or that of the resumed checkpoint.
        resumed: Whether `state` comes from a checkpoint.
    """

    args: TrainingArguments
    accelerator: Accelerator
    output_dir: Path
    model: torch.nn.Module
    processor: CarSegImageProcessor
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loaders: DataLoaders
    schedule: StepSchedule
    state: TrainerState
    resumed: bool
    #: Derived from `state` on construction.
    epoch_loss: EpochLoss = field(init=False)
    first_epoch: int = field(init=False)
    resume_batches: int = field(init=False)  # micro-batches of the first epoch that a resumed run already trained on
    final_dice: float | None = field(init=False)
    last_saved_step: int = field(init=False)
    #: Updated while training.
    nonfinite_in_a_row: int = 0
    progress: Any = None

    def __post_init__(self) -> None:
        steps_per_epoch = self.schedule.steps_per_epoch
        self.first_epoch = self.state.global_step // steps_per_epoch
        self.resume_batches = (self.state.global_step % steps_per_epoch) * self.args.gradient_accumulation_steps
        self.epoch_loss = EpochLoss.from_state(self.state, self.accelerator)
        self.final_dice = self.state.history[-1]["validation_dice"] if self.state.history else None
        self.last_saved_step = self.state.global_step if self.resumed else -1

    @property
    def finished(self) -> bool:
        """Whether training is over: stopped early, or at `max_train_steps`."""
        return self.state.stopped_early or self.state.global_step >= self.schedule.max_train_steps
