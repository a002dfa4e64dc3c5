"""Atomic training checkpoints: the training state is written into a temporary folder, then renamed.

A checkpoint folder `checkpoint-<step>` only ever appears complete: it is written as `checkpoint-<step>.tmp` and
renamed when every file is in place. A run killed while saving leaves a `.tmp` folder, which `latest` ignores, and the
previous checkpoints untouched. The files are those of `checkpoint_format` (safetensors and JSON, never
pickle) plus `trainer_state.json`: the step, the early-stopping state and the metric history.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint_format import save_training_state

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE_NAME = "trainer_state.json"
#: Files and folders that a training run writes into its output folder (the best model, the results, the curves).
BEST_MODEL_NAME = "best"
RESULTS_NAME = "all_results.json"
CURVES_NAME = "training_curves.png"
LOGS_NAME = "logs"  # the tracker's folder unless --logging-dir is given
#: What `clear_run_outputs` deletes: all of the above, checkpoints and their leftovers, and the default tracker logs.
RUN_OUTPUT_PATTERNS = (
    "checkpoint-*",
    BEST_MODEL_NAME,
    f"{BEST_MODEL_NAME}.tmp",
    f"{BEST_MODEL_NAME}.old",
    RESULTS_NAME,
    CURVES_NAME,
    LOGS_NAME,
)


@dataclass
class TrainerState:
    """Training progress that is saved with each checkpoint and restored on resume.

    Args:
        global_step: Optimizer steps taken (skipped non-finite steps included).
        epochs_completed: Epochs whose validation has run.
        best_dice: Best validation dice so far (-1 before the first validation).
        best_epoch: Epoch (1-based) of `best_dice`.
        best_step: Global step of `best_dice`.
        epochs_without_improvement: Validations since the last improvement larger than the early-stopping delta.
        stopped_early: Whether early stopping ended the run.
        history: One entry per validation: epoch, step, train_loss, validation_dice, learning_rate.
        epoch_loss_sum: Sum of micro-batch losses in the current epoch, over all processes.
        epoch_loss_count: Number of micro-batch losses in `epoch_loss_sum`.
        train_images: Images trained on so far, over all processes.
        train_seconds: Time spent in training steps so far (validation and saving excluded).
        steps_per_epoch: Optimizer steps per epoch of the run that wrote the state.
        total_batch_size: Images per optimizer step of the run that wrote the state.
    """

    global_step: int = 0
    epochs_completed: int = 0
    best_dice: float = -1.0
    best_epoch: int = 0
    best_step: int = 0
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    train_images: int = 0
    train_seconds: float = 0.0
    steps_per_epoch: int = 0
    total_batch_size: int = 0

    def save(self, folder: str | os.PathLike) -> None:
        """Write `trainer_state.json` into `folder`."""
        Path(folder, TRAINER_STATE_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainerState:
        """Read `trainer_state.json` from a checkpoint folder.

        Raises:
            FileNotFoundError: If the folder has no `trainer_state.json` (it is not a carseg checkpoint).
            ValueError: If the file is not valid JSON of the expected form.
        """
        path = Path(folder, TRAINER_STATE_NAME)
        if not path.is_file():
            raise FileNotFoundError(
                f"{folder} has no {TRAINER_STATE_NAME}; expected a checkpoint-<step> folder from training/train.py"
            )
        try:
            values = json.loads(path.read_text())
            known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
            return cls(**known)
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"{path} is not a valid trainer state: {error}") from error


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders in `output_dir`, oldest step first; `.tmp` leftovers are ignored."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def resolve_resume_checkpoint(output_dir: str | os.PathLike, value: str) -> Path | None:
    """Turn `--resume-from-checkpoint` into a folder.

    Args:
        output_dir: The run's output folder.
        value: `"latest"` or a checkpoint folder.

    Returns:
        The checkpoint folder, or None for `latest` when there is none yet (a fresh start).

    Raises:
        FileNotFoundError: If an explicit path does not exist or is not a complete checkpoint.
    """
    if value == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume-from-checkpoint {value!r}: no such folder")
    if path.name.endswith(".tmp"):
        raise FileNotFoundError(
            f"--resume-from-checkpoint {value!r} is an unfinished checkpoint (a save was interrupted); "
            "pass a complete checkpoint-<step> folder or 'latest'"
        )
    if not Path(path, TRAINER_STATE_NAME).is_file():
        raise FileNotFoundError(
            f"--resume-from-checkpoint {value!r} has no {TRAINER_STATE_NAME}; expected a checkpoint-<step> folder"
        )
    return path


def clear_run_outputs(output_dir: str | os.PathLike) -> list[Path]:
    """Delete what an earlier run wrote into `output_dir` (`RUN_OUTPUT_PATTERNS`); other files are kept.

    Args:
        output_dir: The run's output folder (it need not exist).

    Returns:
        The deleted paths.
    """
    removed = sorted({path for pattern in RUN_OUTPUT_PATTERNS for path in Path(output_dir).glob(pattern)})
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def replace_folder(source: Path, target: Path) -> None:
    """Move the complete folder `source` to `target`, replacing any existing `target`.

    The old `target` is first renamed to `<target>.old`, so at every moment one complete copy exists on disk.
    """
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(source, target)
    if old.exists():
        shutil.rmtree(old)


def prune_checkpoints(output_dir: str | os.PathLike, total_limit: int | None) -> list[Path]:
    """Delete the oldest complete checkpoints beyond `total_limit`; returns what was removed."""
    if total_limit is None:
        return []
    checkpoints = list_checkpoints(output_dir)
    removed = checkpoints[: max(0, len(checkpoints) - total_limit)]
    for path in removed:
        shutil.rmtree(path)
    return removed


def save_checkpoint(
    accelerator: Any,
    model: Any,
    optimizer: Any,
    scheduler: Any | None,
    output_dir: str | os.PathLike,
    state: TrainerState,
    total_limit: int | None,
) -> Path:
    """Save the training state and `state` atomically as `output_dir/checkpoint-<global_step>`.

    Must be called on every process: the main process writes the model, optimizer and scheduler files, every process
    its own random states (see `checkpoint_format`). `output_dir` must be on storage that all processes see.

    Args:
        accelerator: The `Accelerator`.
        model: The prepared model.
        optimizer: The prepared optimizer.
        scheduler: A scheduler stepped by hand, or None.
        output_dir: The run's output folder.
        state: The trainer state to store beside the training state.
        total_limit: Number of checkpoints to keep, or None for all.

    Returns:
        The final checkpoint folder.
    """
    final = Path(output_dir, f"checkpoint-{state.global_step}")
    temporary = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        if temporary.exists():  # left by a run that died while saving
            shutil.rmtree(temporary)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()  # the empty folder exists before any process writes into it
    save_training_state(temporary, accelerator, model, optimizer, scheduler)
    accelerator.wait_for_everyone()  # every process's files are in place before the rename
    if accelerator.is_main_process:
        state.save(temporary)
        replace_folder(temporary, final)
        prune_checkpoints(output_dir, total_limit)
    accelerator.wait_for_everyone()  # nobody goes on (or reads the checkpoint) before it has its final name
    return final


def save_pretrained_atomic(model: Any, processor: Any, target: str | os.PathLike) -> Path:
    """`save_pretrained` the model and processor into `target` through a temporary folder and a rename.

    Args:
        model: The unwrapped model.
        processor: Its image processor.
        target: The final folder (e.g. `output_dir/best`).

    Returns:
        The final folder.
    """
    target = Path(target)
    temporary = target.with_name(target.name + ".tmp")
    if temporary.exists():
        shutil.rmtree(temporary)
    model.save_pretrained(temporary)
    processor.save_pretrained(temporary)
    for saved in temporary.iterdir():  # safetensors writes its file owner-only (0600), unlike every other file here
        if saved.is_file():
            saved.chmod(0o644)
    replace_folder(temporary, target)
    return target
