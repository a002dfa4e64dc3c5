"""The end of a run: the results, the training curves and the optional push of the best model to the Hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpointing import BEST_MODEL_NAME, CURVES_NAME, RESULTS_NAME
from .plotting import plot_training_curves
from .run_state import TrainingRun, logger


def run_results(run: TrainingRun) -> dict[str, Any]:
    """The figures of the run, as written to `OUTPUT_DIR/all_results.json`."""
    state, args = run.state, run.args
    return {
        "best_validation_dice": state.best_dice,
        "best_epoch": state.best_epoch,
        "best_step": state.best_step,
        "final_validation_dice": run.final_dice,
        "epochs_completed": state.epochs_completed,
        "global_step": state.global_step,
        "stopped_early": state.stopped_early,
        "train_images_per_second": state.train_images / state.train_seconds if state.train_seconds else None,
        "train_runtime_s": state.train_seconds,
        "num_processes": run.accelerator.num_processes,
        "total_batch_size": run.schedule.total_batch_size,
        "mixed_precision": args.mixed_precision,
        "resolution": f"{args.resolution[0]}x{args.resolution[1]}",
        "train_images": run.loaders.train_images,
        "validation_images": run.loaders.validation_images,
    }


def finish(run: TrainingRun) -> dict[str, Any]:
    """Write the results and the curves, push `best/` with `--push_to_hub`, and end the trackers.

    Returns:
        The results (with `hub_commit` after a push).
    """
    results = run_results(run)
    if run.accelerator.is_main_process:
        (run.output_dir / RESULTS_NAME).write_text(json.dumps(results, indent=2) + "\n")
        if run.state.history:
            plot_training_curves(run.state.history, run.output_dir / CURVES_NAME)
        if run.args.push_to_hub:
            results["hub_commit"] = push_best_model(run, results)
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()
    return results


def push_best_model(run: TrainingRun, results: dict[str, Any]) -> str:
    """Push `best/` to `--hub_model_id` with a model card of this run's recipe; returns the commit sha."""
    from carseg_hf.hub import push_checkpoint

    args, state = run.args, run.state
    card_data = {
        "dataset": args.dataset_name or f"the local folder {Path(args.data_dir).resolve().name} (--data-dir)",
        "training_args": {
            "resolution": results["resolution"],
            "random_crop": args.random_crop,
            "resolution_scale_range": args.resolution_scale_range,
            "learning_rate": args.learning_rate,
            "optimizer": f"Adam(betas=({args.adam_beta1}, {args.adam_beta2}), eps={args.adam_epsilon})",
            "lr_scheduler": args.lr_scheduler,
            "early_stopping_patience": args.early_stopping_patience,
            "early_stopping_min_delta": args.early_stopping_min_delta,
            "augmentation": args.augmentation().summary(),
            "total_batch_size": run.schedule.total_batch_size,
            "epochs": state.epochs_completed,
            "best_epoch": state.best_epoch,
            "mixed_precision": args.mixed_precision,
            "loss": run.accelerator.unwrap_model(run.model).config.loss_description(),
            "seed": args.seed,
        },
    }
    best_dir = run.output_dir / BEST_MODEL_NAME
    sha = push_checkpoint(
        best_dir,
        args.hub_model_id,
        private=args.hub_private,
        token=args.hub_token,
        commit_message=f"carseg: best validation dice {state.best_dice:.5f} at epoch {state.best_epoch}",
        metrics={"dice": state.best_dice},
        card_data=card_data,
        card="generate",
    )
    logger.info(f"pushed {best_dir} to {args.hub_model_id} at {sha}")
    return sha
