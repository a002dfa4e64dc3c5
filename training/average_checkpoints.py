r"""Average the weights of several fine-tuned checkpoints of one model into one checkpoint (a uniform "model soup").

Checkpoints fine-tuned from the same starting weights, on different data or with different seeds, often sit in one
basin of the loss; the uniform average of their weights (Wortsman et al., 2022, "Model soups") can then score as well
as the best of them or better, at no cost at inference. Choose the members and judge the average on validation data.

Every floating-point tensor (weights and BatchNorm running statistics) is averaged in float64 and stored in its own
dtype; integer buffers (BatchNorm's `num_batches_tracked`) are copied from the first checkpoint. The checkpoints
must hold the same tensors, and those that have a `config.json` must agree on the network it describes (they may
differ in the loss settings and the remote-code map, `NOT_ARCHITECTURE`). `config.json` and
`preprocessor_config.json` are copied from `--config-from` (a folder written by `save_pretrained`, such as a run's
`best/`; training checkpoints hold weights and optimizer state only) or else from the first checkpoint.

Example:
    python -m training.average_checkpoints runs/soup runs/a/checkpoint-768 runs/b/checkpoint-576 \
        --config-from runs/a/best
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from carseg_hf.atomic_files import write_atomic
from carseg_hf.configuration_carseg import LOSS_FIELDS, CarSegConfig
from carseg_hf.modeling_carseg import CarSegForSemanticSegmentation

WEIGHTS = "model.safetensors"
#: `config.json` fields that do not change the network: the loss settings (`LOSS_FIELDS`), the remote-code map that a
#: training run's `best/` carries, and transformers' bookkeeping. Checkpoints may differ in these; the copied
#: config's win.
NOT_ARCHITECTURE = frozenset({"auto_map", "transformers_version", "_name_or_path", *LOSS_FIELDS})


def _weights_file(checkpoint: Path) -> Path:
    """`checkpoint/model.safetensors`, or `checkpoint` itself when it is a `.safetensors` file."""
    path = checkpoint if checkpoint.suffix == ".safetensors" else checkpoint / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint}: no {WEIGHTS}; expected a checkpoint folder or a .safetensors file")
    return path


def average_state_dicts(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The uniform average of the tensors of several safetensors files.

    Args:
        files: Two or more `.safetensors` files of one architecture.

    Returns:
        The averaged tensors, each in its file's dtype; integer tensors are the first file's.

    Raises:
        ValueError: If fewer than two files are given, or a file's tensor names, shapes or dtypes differ from the
            first file's (naming the file and the tensor).
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
    """The tensors of a safetensors file, or a `ValueError` naming a file that is truncated or not safetensors."""
    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors file ({error}); it may be truncated or corrupt"
        ) from error


def _check_fits(state: dict[str, torch.Tensor], config_file: Path) -> None:
    """Refuse averaged weights that the network of `config_file` cannot load exactly (before anything is written)."""
    network = CarSegForSemanticSegmentation(CarSegConfig.from_json_file(config_file))
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise ValueError(
            f"the checkpoints do not fit the network of {config_file} ({first_line} ...); name the run's own best/ "
            "with --config-from"
        ) from error


def _check_out(out: Path, files: Sequence[Path], overwrite: bool) -> None:
    """Refuse an output folder that is a file, one of the inputs, or (without `overwrite`) a model or checkpoint."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"OUT {out} is a file; expected a folder")
    if any(out.resolve() == file.parent.resolve() for file in files):
        raise ValueError(f"OUT {out} is one of the checkpoints being averaged; name a new folder")
    held = [name for name in (WEIGHTS, "optimizer.safetensors") if (out / name).exists()]
    if held and not overwrite:
        raise ValueError(f"OUT {out} already holds {', '.join(held)}; name a new folder, or pass --overwrite")


def _architecture(config_file: Path) -> dict:
    """A `config.json` without the fields that leave the network unchanged (`NOT_ARCHITECTURE`)."""
    return {key: value for key, value in json.loads(config_file.read_text()).items() if key not in NOT_ARCHITECTURE}


def average_checkpoints(
    checkpoints: Sequence[Path], out: Path, config_from: Path | None = None, overwrite: bool = False
) -> Path:
    """Write the average of `checkpoints` to `out/model.safetensors`, with a `config.json` beside it.

    Args:
        checkpoints: Checkpoint folders, or `.safetensors` files.
        out: The output folder; created if needed.
        config_from: The folder whose `config.json` and `preprocessor_config.json` are copied; by default the
            first checkpoint's folder.
        overwrite: Replace a model that `out` already holds (never a checkpoint being averaged).

    Returns:
        The weights file written.

    Raises:
        FileNotFoundError: If a checkpoint has no weights, or the config folder has no `config.json`.
        ValueError: If a checkpoint's `config.json` differs from the copied one, the tensors differ (see
            `average_state_dicts`) or do not fit the copied config's network, a file is not safetensors, or `out`
            is unusable (`_check_out`).
    """
    files = [_weights_file(Path(checkpoint)) for checkpoint in checkpoints]
    out = Path(out)
    _check_out(out, files, overwrite)
    source = Path(config_from) if config_from is not None else files[0].parent
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} has no config.json; name a save_pretrained folder with --config-from")
    reference = _architecture(source / "config.json")
    for config in (file.parent / "config.json" for file in files):
        if config.is_file() and (other := _architecture(config)) != reference:
            fields = sorted(key for key in reference.keys() | other.keys() if reference.get(key) != other.get(key))
            raise ValueError(
                f"{config} differs from {source / 'config.json'} in {', '.join(fields)}: average checkpoints of one "
                "model only"
            )
    state = average_state_dicts(files)
    _check_fits(state, source / "config.json")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "preprocessor_config.json"):
        if (source / name).is_file() and source.resolve() != out.resolve():
            shutil.copyfile(source / name, out / name)
    target = out / WEIGHTS
    write_atomic(target, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m training.average_checkpoints OUT CHECKPOINT CHECKPOINT [...] [--config-from DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m training.average_checkpoints", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="output folder for model.safetensors and the config files")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint folders or .safetensors files")
    parser.add_argument(
        "--config-from", type=Path, help="folder with the config.json to use (default: the first checkpoint's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the model that OUT already holds")
    args = parser.parse_args(argv)
    try:
        path = average_checkpoints(args.checkpoints, args.out, args.config_from, args.overwrite)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    print(f"wrote {path}, the average of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
