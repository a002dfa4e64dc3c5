"""One training epoch: forward, backward and optimizer steps, with non-finite steps skipped and step checkpoints."""

from __future__ import annotations

import time
from typing import Any

import torch

from .data_pipeline import to_model_inputs
from .run_state import TrainingRun, logger
from .validation import save_checkpoint_now


def train_one_epoch(run: TrainingRun, epoch: int) -> None:
    """Train on the batches of `epoch` (the rest of it when a resumed run starts mid-epoch).

    Args:
        run: The training run.
        epoch: The 0-based epoch.

    Raises:
        RuntimeError: After `--max-nonfinite-steps` non-finite steps in a row.
    """
    accelerator, loader = run.accelerator, run.loaders.train
    run.model.train()
    run.loaders.epoch_counter[0] = epoch
    loader.set_epoch(epoch)
    skip = run.resume_batches if epoch == run.first_epoch else 0
    batches = accelerator.skip_first_batches(loader, skip) if skip else loader
    window_bad = torch.zeros((), dtype=torch.float64, device=accelerator.device)  # non-finite micro-batches
    step_start = time.perf_counter()
    for batch in batches:
        with accelerator.accumulate(run.model):
            loss_value = forward_backward(run, batch, window_bad)
        if not accelerator.sync_gradients:
            continue
        finish_optimizer_step(run, loss_value, step_start)
        if run.state.global_step >= run.schedule.max_train_steps:
            break
        step_start = time.perf_counter()


def forward_backward(run: TrainingRun, batch: dict[str, Any], window_bad: torch.Tensor) -> float | None:
    """One micro-batch: loss, backward and, at the end of an accumulation window, the optimizer step.

    Args:
        run: The training run.
        batch: `pixel_values` (batch, 3, height, width) uint8 and `labels` (batch, height, width) uint8 0/1.
        window_bad: Count of non-finite micro-batches in this accumulation window (updated in place).

    Returns:
        The micro-batch loss at an optimizer step, else None.
    """
    pixel_values = to_model_inputs(batch["pixel_values"], run.processor, run.args.channels_last)
    # pixel_values: (batch, 3, height, width) float32, labels: (batch, height, width) uint8 0/1
    loss = run.model(pixel_values=pixel_values, labels=batch["labels"]).loss
    # Everything stays on the device until the one host synchronisation per optimizer step below.
    detached = loss.detach().double()
    finite = torch.isfinite(detached)
    window_bad += (~finite).double()
    run.epoch_loss.add(detached, finite)
    run.accelerator.backward(loss)
    if not run.accelerator.sync_gradients:
        return None
    return optimizer_step(run, window_bad, detached)


def optimizer_step(run: TrainingRun, window_bad: torch.Tensor, detached_loss: torch.Tensor) -> float:
    """Step the optimizer unless a loss or gradient of the window is non-finite on any process; then zero the grads.

    Returns:
        The last micro-batch's loss (one host synchronisation per optimizer step).

    Raises:
        RuntimeError: After `--max-nonfinite-steps` skipped steps in a row.
    """
    args, accelerator = run.args, run.accelerator
    bad = window_bad.reshape(1)
    if args.mixed_precision != "fp16":  # with fp16 the GradScaler skips steps with inf gradients
        norms = [p.grad.norm() for p in run.model.parameters() if p.grad is not None]
        bad = bad + (~torch.isfinite(torch.stack(norms))).sum().double()
    # The same decision on every process (gradients are all-reduced, flags summed).
    bad = accelerator.reduce(bad, "sum")
    bad_count, loss_value = torch.cat([bad, detached_loss.reshape(1)]).tolist()
    window_bad.zero_()
    if bad_count > 0:
        skip_nonfinite_step(run)
    else:
        run.nonfinite_in_a_row = 0
        if args.max_grad_norm > 0:
            accelerator.clip_grad_norm_(run.model.parameters(), args.max_grad_norm)
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss_value


def skip_nonfinite_step(run: TrainingRun) -> None:
    """Count a skipped step, warn, and stop after `--max-nonfinite-steps` in a row."""
    run.nonfinite_in_a_row += 1
    step, limit = run.state.global_step + 1, run.args.max_nonfinite_steps
    logger.warning(
        f"step {step}: non-finite loss or gradients, skipping the update "
        f"({run.nonfinite_in_a_row} in a row, abort after {limit})"
    )
    if run.nonfinite_in_a_row >= limit:
        raise RuntimeError(
            f"{run.nonfinite_in_a_row} steps in a row had a non-finite loss or gradients (last at "
            f"step {step}); stopping. Lower --learning-rate, use "
            "--mixed-precision bf16 or no instead of fp16, set --max-grad-norm, or check the data."
        )


def finish_optimizer_step(run: TrainingRun, loss_value: float, step_start: float) -> None:
    """Count the step, step the cosine schedule, report loss and speed, save a `--checkpointing-steps` checkpoint."""
    args, accelerator, state = run.args, run.accelerator, run.state
    state.global_step += 1
    if args.lr_scheduler == "cosine":
        run.scheduler.step()
    images = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    elapsed = time.perf_counter() - step_start
    state.train_images += images
    state.train_seconds += elapsed
    run.progress.update(1)
    run.progress.set_postfix(loss=f"{loss_value:.4f}", img_s=f"{images / max(elapsed, 1e-9):.1f}")
    accelerator.log({"train/loss": loss_value, "train/images_per_s": images / elapsed}, step=state.global_step)
    end_of_epoch = (
        state.global_step % run.schedule.steps_per_epoch == 0 or state.global_step >= run.schedule.max_train_steps
    )
    if (
        isinstance(args.checkpointing_steps, int)
        and state.global_step % args.checkpointing_steps == 0
        and not end_of_epoch  # saved after the validation instead
    ):
        save_checkpoint_now(run)
