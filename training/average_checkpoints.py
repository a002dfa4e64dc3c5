r"""Average the weights of several fine-tuned checkpoints of one model into one checkpoint (a uniform "model soup").

Checkpoints fine-tuned from the same starting weights, on different data or with different seeds, often sit in one
basin of the loss; the uniform average of their weights (Wortsman et al., 2022, "Model soups") can then score as well
as the best of them or better, at no cost at inference. Choose the members and judge the average on validation data.

Every floating-point tensor (weights and BatchNorm running statistics) is averaged in float64 and stored in its own
dtype; integer buffers (BatchNorm's `num_batches_tracked`) are copied from the first checkpoint. The checkpoints
must hold the same finite tensors, each checkpoint once, and must agree on the network that their configs describe
(they may differ in the loss settings, the remote-code map and transformers' bookkeeping, `NOT_ARCHITECTURE`). A
checkpoint's config is its own `config.json` (training checkpoints carry one) or, for a training checkpoint
`checkpoint-N` written without one, its run's `best/config.json`; a checkpoint with neither is averaged only with
`--assume-same-architecture`. `config.json` and `preprocessor_config.json` are copied from `--config-from` (a folder
written by `save_pretrained`) or else from the first checkpoint: its run's `best/` for a training checkpoint, its own
folder otherwise.

Example:
    python -m training.average_checkpoints runs/soup runs/a/checkpoint-768 runs/b/checkpoint-576 \
        --config-from runs/a/best
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from carseg_hf.atomic_files import write_files_atomically
from carseg_hf.configuration_carseg import LOSS_FIELDS, CarSegConfig
from carseg_hf.image_processing_carseg import CarSegImageProcessor
from carseg_hf.modeling_carseg import CarSegForSemanticSegmentation
from carseg_hf.output_folders import output_folder_problem
from carseg_hf.predict_record import file_sha256
from carseg_hf.training.checkpoint_format import (
    OPTIMIZER_JSON_NAME,
    OPTIMIZER_TENSORS_NAME,
    RNG_JSON_PATTERN,
    RNG_TENSORS_PATTERN,
    SCALER_NAME,
    SCHEDULER_NAME,
)
from carseg_hf.training.checkpointing import BEST_MODEL_NAME, CHECKPOINT_PATTERN, TRAINER_STATE_NAME

WEIGHTS = "model.safetensors"
CONFIG_FILES = ("config.json", "preprocessor_config.json")
#: `config.json` fields that do not change the network: the loss settings (`LOSS_FIELDS`), the remote-code map that a
#: training run's `best/` carries, and transformers' bookkeeping (a training checkpoint's config lacks the
#: `architectures` and `dtype` that `save_pretrained` adds). Checkpoints may differ in these; the copied config's win.
NOT_ARCHITECTURE = frozenset(
    {"auto_map", "transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype", *LOSS_FIELDS}
)
#: Files of a training checkpoint besides its weights and config: averaged weights written beside them would resume
#: with another run's optimizer and random states, so such a folder is never an output.
TRAINING_STATE_PATTERNS = (
    OPTIMIZER_TENSORS_NAME,
    OPTIMIZER_JSON_NAME,
    SCHEDULER_NAME,
    SCALER_NAME,
    TRAINER_STATE_NAME,
    RNG_TENSORS_PATTERN.format("*"),
    RNG_JSON_PATTERN.format("*"),
)


def _weights_file(checkpoint: Path) -> Path:
    """`checkpoint/model.safetensors`, or `checkpoint` itself when it is a `.safetensors` file."""
    path = checkpoint if checkpoint.suffix == ".safetensors" else checkpoint / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint}: no {WEIGHTS}; expected a checkpoint folder or a .safetensors file")
    return path


def _check_distinct(files: Sequence[Path]) -> None:
    """Refuse a weights file given twice, or two byte-identical copies: the average would weight it twice."""
    seen: dict[str, Path] = {}
    for file in files:
        earlier = seen.setdefault(file_sha256(file), file)
        if earlier is not file:
            how = "is given twice" if os.path.samefile(earlier, file) else f"is a copy of {earlier}"
            raise ValueError(f"checkpoint {file} {how}; the average would weight it twice: name each checkpoint once")


def average_state_dicts(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The uniform average of the tensors of several safetensors files.

    Args:
        files: Two or more `.safetensors` files of one architecture.

    Returns:
        The averaged tensors, each in its file's dtype; integer tensors are the first file's.

    Raises:
        ValueError: If fewer than two files are given, a file holds NaN or infinite values, or a file's tensor
            names, shapes or dtypes differ from the first file's (naming the file and the tensor).
    """
    if len(files) < 2:
        raise ValueError(f"averaging needs at least two checkpoints, got {len(files)}")
    first = _read(files[0])
    sums = {name: tensor.double() for name, tensor in first.items() if tensor.is_floating_point()}
    for path in files[1:]:
        state = _read(path)
        if set(state) != set(first):
            different = sorted(set(state) ^ set(first))
            raise ValueError(f"{path} holds other tensors than {files[0]}: {', '.join(different[:5])}")
        for name, tensor in state.items():
            if tensor.shape != first[name].shape or tensor.dtype != first[name].dtype:
                raise ValueError(
                    f"{path}: tensor {name} is {tuple(tensor.shape)} {tensor.dtype}, but {tuple(first[name].shape)} "
                    f"{first[name].dtype} in {files[0]}"
                )
            if name in sums:
                sums[name] += tensor.double()
    return {
        name: (sums[name] / len(files)).to(tensor.dtype) if name in sums else tensor.clone()
        for name, tensor in first.items()
    }


def _read(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a `ValueError` names a file that is unreadable or holds non-finite values."""
    try:
        state = load_file(str(path))
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors file ({error}); it may be truncated or corrupt"
        ) from error
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(
                f"{path}: tensor {name} holds NaN or infinite values (a diverged run?); averaging it would spoil "
                "every other checkpoint's weights: leave it out"
            )
    return state


def _read_config(config_file: Path, kind: type = CarSegConfig) -> Any:
    """The `kind` (a config or image processor class) read from `config_file`; a `ValueError` names a bad file."""
    try:
        return kind.from_json_file(config_file)
    except (ValueError, TypeError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{config_file} is not a valid carseg {config_file.name}: {error}") from error


def _check_fits(state: dict[str, torch.Tensor], config_file: Path) -> None:
    """Refuse averaged weights that the network of `config_file` cannot load exactly (before anything is written)."""
    network = CarSegForSemanticSegmentation(_read_config(config_file))
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise ValueError(
            f"the checkpoints do not fit the network of {config_file} ({first_line} ...); name the run's own best/ "
            "with --config-from"
        ) from error


def _check_out(out: Path, files: Sequence[Path], overwrite: bool) -> None:
    """Refuse an unusable output folder, a checkpoint being averaged, or (without `overwrite`) a model.

    A training checkpoint is refused even with `overwrite`: its optimizer and random states would stay beside the
    averaged weights.
    """
    problem = output_folder_problem(out, "OUT")
    if problem:
        raise ValueError(problem)
    if any(out.resolve() == file.parent.resolve() for file in files):
        raise ValueError(f"OUT {out} is one of the checkpoints being averaged; name a new folder")
    state = sorted({path.name for pattern in TRAINING_STATE_PATTERNS for path in out.glob(pattern)})
    if state:
        raise ValueError(
            f"OUT {out} is a training checkpoint (it holds {', '.join(state)}): averaged weights beside its "
            "optimizer and random states would resume as neither run; name a new folder"
        )
    if (out / WEIGHTS).exists() and not overwrite:
        raise ValueError(f"OUT {out} already holds {WEIGHTS}; name a new folder, or pass --overwrite")


def _is_training_checkpoint(folder: Path) -> bool:
    """Whether `folder` is named like a training run's `checkpoint-<step>`."""
    return CHECKPOINT_PATTERN.match(folder.name) is not None


def _config_of(folder: Path) -> Path | None:
    """The `config.json` that describes the weights in `folder`, or None.

    Its own, else, for a training checkpoint written before checkpoints carried one, its run's `best/config.json`.
    """
    own = folder / "config.json"
    if own.is_file():
        return own
    best = folder.parent / BEST_MODEL_NAME / "config.json"
    return best if _is_training_checkpoint(folder) and best.is_file() else None


def _config_source(first: Path, config_from: Path | None) -> Path:
    """The folder whose config files are copied.

    `config_from`, else the first checkpoint's run's `best/` for a training checkpoint, else the first checkpoint's
    folder.
    """
    if config_from is not None:
        source = Path(config_from)
    elif _is_training_checkpoint(first) and (first.parent / BEST_MODEL_NAME).is_dir():
        source = first.parent / BEST_MODEL_NAME
    else:
        source = first
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} has no config.json; name a save_pretrained folder with --config-from")
    if (source / "preprocessor_config.json").is_file():
        _read_config(source / "preprocessor_config.json", CarSegImageProcessor)
    return source


def _architecture(config_file: Path) -> dict:
    """A config without the fields that leave the network unchanged (`NOT_ARCHITECTURE`); defaults filled in."""
    return {key: value for key, value in _read_config(config_file).to_dict().items() if key not in NOT_ARCHITECTURE}


def _check_one_architecture(files: Sequence[Path], reference_file: Path, assume_same: bool) -> None:
    """Refuse checkpoints whose config differs from `reference_file`'s network, or that have no config.

    Those without a config pass with `assume_same` (the user vouches that they are of that network).
    """
    reference = _architecture(reference_file)
    unknown = []
    for file in files:
        config = _config_of(file.parent)
        if config is None:
            unknown.append(file)
        elif (other := _architecture(config)) != reference:
            fields = sorted(key for key in reference.keys() | other.keys() if reference.get(key) != other.get(key))
            raise ValueError(
                f"{config} differs from {reference_file} in {', '.join(fields)}: average checkpoints of one model only"
            )
    if unknown and not assume_same:
        its, them, it_is = ("its", "it", "it is") if len(unknown) == 1 else ("their", "them", "they are")
        raise ValueError(
            f"no config.json describes {', '.join(map(str, unknown))}: none lies beside {them}, nor in {its} run's "
            f"best/, so {its} network cannot be compared with {reference_file}; if {it_is} of that network, pass "
            "--assume-same-architecture"
        )


def average_checkpoints(
    checkpoints: Sequence[Path],
    out: Path,
    config_from: Path | None = None,
    overwrite: bool = False,
    assume_same_architecture: bool = False,
) -> Path:
    """Write the average of `checkpoints` to `out/model.safetensors`, with a `config.json` beside it.

    Args:
        checkpoints: Checkpoint folders, or `.safetensors` files.
        out: The output folder; created if needed.
        config_from: The folder whose `config.json` and `preprocessor_config.json` are copied; by default the
            first checkpoint's run's `best/` for a training checkpoint (`checkpoint-N`), else its own folder.
        overwrite: Replace a model that `out` already holds (never a checkpoint being averaged, nor any training
            checkpoint).
        assume_same_architecture: Average checkpoints that no `config.json` describes (see `_config_of`) as if
            they were of the copied config's network; their tensors are still checked against it.

    Returns:
        The weights file written.

    Raises:
        FileNotFoundError: If a checkpoint has no weights, or the config folder has no `config.json`.
        ValueError: If a checkpoint is given twice, a checkpoint's config differs from the copied one or (without
            `assume_same_architecture`) it has none, a config is not valid, the tensors differ or are not finite
            (see `average_state_dicts`) or do not fit the copied config's network, a file is not safetensors, or
            `out` is unusable (`_check_out`).
    """
    files = [_weights_file(Path(checkpoint)) for checkpoint in checkpoints]
    out = Path(out)
    _check_out(out, files, overwrite)
    _check_distinct(files)
    source = _config_source(files[0].parent, config_from)
    _check_one_architecture(files, source / "config.json", assume_same_architecture)
    state = average_state_dicts(files)
    _check_fits(state, source / "config.json")
    out.mkdir(parents=True, exist_ok=True)
    target = out / WEIGHTS
    writes = {target: lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"})}
    if source.resolve() != out.resolve():
        for name in CONFIG_FILES:
            if (source / name).is_file():
                writes[out / name] = lambda tmp, copied=source / name: shutil.copyfile(copied, tmp)
    write_files_atomically(writes)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m training.average_checkpoints OUT CHECKPOINT CHECKPOINT [...] [--config-from DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m training.average_checkpoints", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="output folder for model.safetensors and the config files")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint folders or .safetensors files")
    parser.add_argument(
        "--config-from",
        type=Path,
        help="folder with the config files to copy (default: the first checkpoint's run's best/ for a training "
        "checkpoint, else the first checkpoint's folder)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the model that OUT already holds")
    parser.add_argument(
        "--assume-same-architecture",
        action="store_true",
        help="average checkpoints that no config.json describes (none beside them, nor in their run's best/) as "
        "the copied config's network",
    )
    args = parser.parse_args(argv)
    try:
        path = average_checkpoints(
            args.checkpoints, args.out, args.config_from, args.overwrite, args.assume_same_architecture
        )
    except (OSError, ValueError) as error:
        parser.error(str(error))
    print(f"wrote {path}, the average of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
