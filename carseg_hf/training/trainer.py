"""The training run: `main` calls the sections in order, each a small function in its own module.

1. setup (`run_setup`): Accelerator, logging, the Hub target's visibility, output folder;
2. data (`data_pipeline`): splits by car id, then loaders that decode, resize and augment in workers;
3. model (`model_builder`), seeded so that every process and every rerun starts from the same weights;
4. optimiser and scheduler (`optimization`), prepared for the device(s) with the model and loaders;
5. resume (`resume`): weights, optimizer, scheduler and random states of a checkpoint;
6. one epoch of training steps (`epoch`), then validation, best model, early stopping and checkpoint (`validation`);
7. finish (`finish`): results, curves and the optional push to the Hub.
"""

from __future__ import annotations

from typing import Any

from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from .arguments import TrainingArguments
from .data_pipeline import DataLoaders, build_dataloaders, load_splits
from .epoch import train_one_epoch
from .finish import finish
from .model_builder import build_model
from .optimization import StepSchedule, build_optimizer, build_scheduler
from .resume import resume_trainer_state
from .run_setup import check_hub_target, prepare_output_dir, setup_accelerator
from .run_state import TrainingRun, logger
from .validation import save_checkpoint_now, validate_and_checkpoint


def main(args: TrainingArguments) -> dict[str, Any]:
    """Run the training described by `args` (from `parse_args`).

    Returns:
        The final results, as written to `OUTPUT_DIR/all_results.json`.

    Raises:
        RuntimeError: After `--max_nonfinite_steps` non-finite steps in a row.
        ValueError: If a resumed checkpoint was written with another batch layout, or the data is unusable.
    """
    accelerator = setup_accelerator(args)
    check_hub_target(args, accelerator)
    output_dir = prepare_output_dir(args, accelerator)
    splits = load_splits(args, accelerator)
    set_seed(args.seed)  # before the model, so that every process and every rerun starts from the same weights
    model, processor = build_model(args)
    loaders = build_dataloaders(args, splits, processor)
    optimizer = build_optimizer(args, model, accelerator)
    model, optimizer, train_loader, validation_loader = accelerator.prepare(
        model, optimizer, loaders.train, loaders.validation
    )
    loaders = DataLoaders(
        train_loader, validation_loader, loaders.train_images, loaders.validation_images, loaders.epoch_counter
    )
    schedule = StepSchedule.for_run(args, len(train_loader), accelerator.num_processes)
    scheduler = build_scheduler(args, optimizer, schedule)
    start_trackers(args, accelerator)
    log_run_layout(args, accelerator, loaders, schedule)
    state, resumed = resume_trainer_state(args, accelerator, output_dir, model, optimizer, scheduler, schedule)
    run = TrainingRun(
        args, accelerator, output_dir, model, processor, optimizer, scheduler, loaders, schedule, state, resumed
    )
    train(run)
    return finish(run)


#: Arguments whose values are credentials: trackers get `<redacted>` in their place.
SECRET_ARGUMENTS = ("hub_token",)


def start_trackers(args: TrainingArguments, accelerator: Accelerator) -> None:
    """Start the `--report_to` tracker with the run's arguments as its config (main process only)."""
    if accelerator.is_main_process and args.report_to != "none":
        tracker_config = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in vars(args).items()}
        for secret in SECRET_ARGUMENTS:  # never written to the tracker's logs (hparams.yml, event files, services)
            if tracker_config.get(secret) not in (None, "None"):
                tracker_config[secret] = "<redacted>"
        accelerator.init_trackers(args.tracker_project_name, config=tracker_config)


def log_run_layout(
    args: TrainingArguments, accelerator: Accelerator, loaders: DataLoaders, schedule: StepSchedule
) -> None:
    """Log the images, resolution, processes and step counts of the run."""
    logger.info(
        f"{loaders.train_images} training and {loaders.validation_images} validation images at {args.resolution[0]}x"
        f"{args.resolution[1]}; {accelerator.num_processes} process(es), {schedule.total_batch_size} images per step, "
        f"{schedule.steps_per_epoch} steps per epoch, {schedule.max_train_steps} steps in at most "
        f"{schedule.num_epochs} epochs"
    )


def train(run: TrainingRun) -> None:
    """Train epoch by epoch until the last step or early stopping; the last step always ends in a checkpoint."""
    run.progress = tqdm(
        total=run.schedule.max_train_steps,
        initial=run.state.global_step,
        desc="steps",
        disable=not run.accelerator.is_local_main_process,
    )
    for epoch in range(run.first_epoch, run.schedule.num_epochs):
        if run.finished:
            break
        train_one_epoch(run, epoch)
        validate_and_checkpoint(run, epoch)
    run.progress.close()
    if run.last_saved_step != run.state.global_step:
        save_checkpoint_now(run)
