"""The end of an epoch: validation dice, the best model, early stopping, the plateau scheduler and the checkpoint."""

from __future__ import annotations

from typing import Any

import torch

from carseg_hf.metrics import batch_confusion, dice_from_counts

from .augment import PAD_LABEL
from .checkpointing import BEST_MODEL_NAME, save_checkpoint, save_pretrained_atomic
from .data_pipeline import to_model_inputs
from .run_state import TrainingRun, logger


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
    model.eval()
    counts = []
    with torch.no_grad():
        for batch in dataloader:
            pixel_values = to_model_inputs(batch["pixel_values"], processor, channels_last)  # (batch, 3, H, W)
            logits = model(pixel_values=pixel_values).logits  # (batch, 1, height, width)
            predictions = torch.sigmoid(logits[:, 0].float()) > processor.threshold  # (batch, height, width)
            valid = batch["labels"] != PAD_LABEL  # padding of frames smaller than the batch's largest
            labels = batch["labels"].masked_fill(~valid, 0)
            counts.append(accelerator.gather_for_metrics(batch_confusion(predictions & valid, labels)))
    model.train()
    return float(dice_from_counts(torch.cat(counts)).mean())  # counts: (num_images, 4)


def save_checkpoint_now(run: TrainingRun) -> None:
    """Fold the processes' partial epoch loss into the trainer state and save the whole state atomically."""
    totals = run.epoch_loss.reduce(run.accelerator)
    run.state.epoch_loss_sum, run.state.epoch_loss_count = float(totals[0]), int(totals[1])
    path = save_checkpoint(
        run.accelerator,
        run.model,
        run.optimizer,
        run.scheduler,
        run.output_dir,
        run.state,
        run.args.checkpoints_total_limit,
    )
    logger.info(f"saved {path}")
    run.last_saved_step = run.state.global_step


def validate_and_checkpoint(run: TrainingRun, epoch: int) -> None:
    """Validate at the end of `epoch` (or of the last, partial one), keep the best model, and checkpoint.

    Args:
        run: The training run.
        epoch: The 0-based epoch that just ended.
    """
    record_epoch(run, epoch)
    update_best_model(run, epoch)
    if run.args.lr_scheduler == "plateau":
        run.scheduler.step(run.final_dice)
    check_early_stopping(run)
    checkpointing_steps = run.args.checkpointing_steps
    if checkpointing_steps == "epoch" or run.state.global_step % checkpointing_steps == 0:
        save_checkpoint_now(run)


def record_epoch(run: TrainingRun, epoch: int) -> None:
    """Measure the validation dice and add the epoch (loss, dice, learning rate) to the history and the tracker."""
    accelerator, state = run.accelerator, run.state
    totals = run.epoch_loss.reduce(accelerator)
    train_loss = float(totals[0] / totals[1]) if totals[1] > 0 else float("nan")
    run.epoch_loss.reset()
    run.final_dice = evaluate(run.model, run.loaders.validation, run.processor, accelerator, run.args.channels_last)
    learning_rate = run.optimizer.param_groups[0]["lr"]
    state.epochs_completed = epoch + 1
    state.history.append(
        {
            "epoch": epoch + 1,
            "step": state.global_step,
            "train_loss": train_loss,
            "validation_dice": run.final_dice,
            "learning_rate": learning_rate,
        }
    )
    accelerator.log(
        {"eval/dice": run.final_dice, "train/epoch_loss": train_loss, "lr": learning_rate}, step=state.global_step
    )
    logger.info(f"epoch {epoch + 1}: train loss {train_loss:.5f}, validation dice {run.final_dice:.6f}")


def update_best_model(run: TrainingRun, epoch: int) -> None:
    """Save `best/` when the dice beats the best so far; count the epochs without a gain above `min_delta`."""
    state, accelerator = run.state, run.accelerator
    if run.final_dice > state.best_dice:
        improved_enough = run.final_dice > state.best_dice + run.args.early_stopping_min_delta
        state.best_dice, state.best_epoch, state.best_step = run.final_dice, epoch + 1, state.global_step
        if accelerator.is_main_process:
            best_dir = run.output_dir / BEST_MODEL_NAME
            save_pretrained_atomic(accelerator.unwrap_model(run.model), run.processor, best_dir)
        accelerator.wait_for_everyone()
    else:
        improved_enough = False
    state.epochs_without_improvement = 0 if improved_enough else state.epochs_without_improvement + 1


def check_early_stopping(run: TrainingRun) -> None:
    """Stop after `--early_stopping_patience` epochs without a gain (0: never)."""
    state, args = run.state, run.args
    if 0 < args.early_stopping_patience <= state.epochs_without_improvement:
        state.stopped_early = True
        logger.info(
            f"early stopping: no validation dice gain above {args.early_stopping_min_delta} for "
            f"{state.epochs_without_improvement} epochs (best {state.best_dice:.6f} at epoch {state.best_epoch})"
        )
