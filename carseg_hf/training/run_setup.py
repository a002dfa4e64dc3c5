"""The first section of a training run: the Accelerator, logging, the seed and the output folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

from carseg_hf.cpu_runtime import retain_freed_memory

from .arguments import TrainingArguments
from .checkpointing import LOGS_NAME, clear_run_outputs
from .run_state import logger

#: Environment variables in which launchers give the number of processes they started: torchrun (behind
#: `accelerate launch --multi_gpu` and `--num_processes N`) sets WORLD_SIZE, MPI launchers the others.
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


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
                "and write into the same --output-dir. This happens when `accelerate launch --multi_gpu` finds no "
                "usable GPU: check `nvidia-smi` and CUDA_VISIBLE_DEVICES, launch with `--cpu` to train the "
                "processes together on the CPU, or with `--num_processes 1`."
            )


def setup_accelerator(args: TrainingArguments) -> Accelerator:
    """Create the Accelerator (precision, accumulation, tracker, seeded sampler) and configure logging.

    Raises:
        RuntimeError: If a launcher started several processes that Accelerate would run as separate trainings.
    """
    output_dir = Path(args.output_dir)
    logging_dir = Path(args.logging_dir) if args.logging_dir else output_dir / LOGS_NAME
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():  # Accelerate would train in fp32 instead
        raise ValueError("--mixed-precision fp16 needs a CUDA GPU; on a CPU pass bf16 or no")
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(logging_dir)),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed, non_blocking=True),
    )
    check_process_count(accelerator.num_processes, str(accelerator.distributed_type))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if args.mixed_precision == "bf16" and accelerator.device.type == "cpu":
        from carseg_hf.device_info import cpu_bf16_warning

        if (warning := cpu_bf16_warning()) is not None:
            logger.warning(warning)
    if accelerator.device.type == "cpu":
        retain_freed_memory()  # reuse freed activation memory instead of faulting in fresh pages every step
    return accelerator


def prepare_output_dir(args: TrainingArguments, accelerator: Accelerator) -> Path:
    """Create `--output-dir` (clearing the previous run's outputs with `--overwrite-output-dir`) and return it."""
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:
        if args.overwrite_output_dir:
            for path in clear_run_outputs(output_dir):
                logger.info(f"--overwrite-output-dir: deleted {path}")
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()  # no process writes into the folder before it is cleared
    return output_dir


def check_hub_target(args: TrainingArguments, accelerator: Accelerator) -> None:
    """Before training, refuse `--hub-private` for a Hub repo that exists and is public (main process only).

    The push at the end would refuse it too (`carseg_hf.hub.refuse_public_repo`), but only after the whole run. When
    the Hub cannot be reached now, the check is left to the push and the log says so.

    Raises:
        ValueError: If `--hub-model-id` exists and is public.
    """
    if not (args.push_to_hub and args.hub_private and accelerator.is_main_process):
        return
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from carseg_hf.hub import refuse_public_repo

    try:
        refuse_public_repo(HfApi(token=args.hub_token), args.hub_model_id, "the best model (--hub-private)")
    except (HfHubHTTPError, OSError) as error:
        logger.warning(f"could not check {args.hub_model_id!r} on the Hub now ({error}); the push checks it again")
