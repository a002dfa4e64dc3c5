"""The pickle-free training-state format of carseg checkpoints: safetensors for tensors, JSON for everything else.

Accelerate's `save_state` writes the optimizer, scheduler and random states with `torch.save` (pickle) and reads them
back with `torch.load`; carseg never does either. A checkpoint folder holds:

| file | written by | content |
| --- | --- | --- |
| `model.safetensors` | main process | `unwrap_model(model).state_dict()` (BatchNorm buffers included) |
| `config.json` | main process | `model.config`, the network the weights belong to (only for a transformers model) |
| `optimizer.safetensors` | main process | optimizer state tensors, keys `state.<param_index>.<name>` |
| `optimizer.json` | main process | `param_groups` and the non-tensor per-parameter state |
| `scheduler.json` | main process | the LR scheduler's `state_dict()` (only with a scheduler) |
| `scaler.json` | main process | the fp16 `GradScaler` state (only with a scaler) |
| `rng_state_<process>.safetensors` | each process | torch CPU generator, `cuda.<device>` generators |
| `rng_state_<process>.json` | each process | Python `random` and NumPy generator states, Accelerate's step counter |

JSON values that JSON cannot hold are tagged: a non-finite float as `{"__float__": "inf"}` (or `"-inf"`, `"nan"`) and
a tuple as `{"__tuple__": [...]}`, so that `state_dict()` -> file -> `load_state_dict()` is exact.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

MODEL_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
OPTIMIZER_TENSORS_NAME = "optimizer.safetensors"
OPTIMIZER_JSON_NAME = "optimizer.json"
SCHEDULER_NAME = "scheduler.json"
SCALER_NAME = "scaler.json"
RNG_TENSORS_PATTERN = "rng_state_{}.safetensors"
RNG_JSON_PATTERN = "rng_state_{}.json"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------------------------------
# JSON with non-finite floats and tuples
# ---------------------------------------------------------------------------------------------------------------------


def to_json_value(value: Any, where: str = "value") -> Any:
    """Turn a state value made of numbers, strings, lists, tuples and str-keyed dicts into strict JSON data.

    Args:
        value: The value to encode.
        where: Its name, for the error message.

    Raises:
        TypeError: If the value holds something JSON cannot represent faithfully (a tensor, an object, a non-str key).
    """
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return to_json_value(value.item(), where)
    if isinstance(value, tuple):
        return {"__tuple__": [to_json_value(item, f"{where}[{index}]") for index, item in enumerate(value)]}
    if isinstance(value, list):
        return [to_json_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        encoded = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-string key {key!r}; the checkpoint format stores str keys only")
            encoded[key] = to_json_value(item, f"{where}.{key}")
        return encoded
    raise TypeError(f"{where} is a {type(value).__name__}, which the JSON part of a checkpoint cannot store")


def from_json_value(value: Any) -> Any:
    """Invert `to_json_value`."""
    if isinstance(value, list):
        return [from_json_value(item) for item in value]
    if isinstance(value, dict):
        if value.keys() == {"__float__"}:
            return float(value["__float__"])
        if value.keys() == {"__tuple__"}:
            return tuple(from_json_value(item) for item in value["__tuple__"])
        return {key: from_json_value(item) for key, item in value.items()}
    return value


def write_json(path: Path, value: Any) -> None:
    """Write `value` as strict JSON (no NaN/Infinity literals) after `to_json_value`."""
    path.write_text(json.dumps(to_json_value(value, path.name), indent=1, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a file written by `write_json`.

    Raises:
        FileNotFoundError: If the file is missing from the checkpoint.
        ValueError: If it is not valid JSON.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint file {path} is missing; the checkpoint is incomplete or of another format"
        )
    try:
        return from_json_value(json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise ValueError(f"checkpoint file {path} is not valid JSON: {error}") from error


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """`safetensors.torch.load_file` onto the CPU, with an error naming a missing, truncated or corrupt file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint file {path} is missing; the checkpoint is incomplete or of another format"
        )
    try:
        return load_file(path, device="cpu")
    except SafetensorError as error:
        raise ValueError(
            f"checkpoint file {path} is not a readable safetensors file ({error}); it is truncated or corrupt: "
            f"resume from an earlier checkpoint (--resume-from-checkpoint {path.parent.parent}/checkpoint-N) or "
            "start over"
        ) from error


def plain_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU tensors that `safetensors` accepts: detached, contiguous, none sharing memory (tied weights are copied).

    Args:
        tensors: Name -> tensor, e.g. a `state_dict()`; may hold channels-last or tied tensors.

    Returns:
        Name -> contiguous CPU tensor; every name is kept, so `load_state_dict(strict=True)` works on the result.
    """
    seen_storages = set()
    result = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu()
        storage = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        if not tensor.is_contiguous() or (storage is not None and storage in seen_storages):
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        if storage is not None:
            seen_storages.add(storage)
        result[name] = tensor
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Model and optimizer
# ---------------------------------------------------------------------------------------------------------------------


def save_model_weights(model: torch.nn.Module, folder: Path) -> None:
    """Write `model.state_dict()` (parameters and buffers) to `folder/model.safetensors`."""
    save_file(plain_tensors(model.state_dict()), folder / MODEL_NAME, metadata={"format": "pt"})


def save_model_config(model: torch.nn.Module, folder: Path) -> None:
    """Write the config of a transformers model to `folder/config.json`; a model without a config writes nothing.

    The config names the network that `model.safetensors` belongs to, so that tools reading a checkpoint (such as
    `training/average_checkpoints.py`) can compare networks. Resuming does not read it: checkpoints without one
    (written before checkpoints carried it) resume alike.
    """
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json_file"):
        config.to_json_file(folder / CONFIG_NAME)


def load_model_weights(model: torch.nn.Module, folder: Path) -> None:
    """Load `folder/model.safetensors` into `model` (strict: every parameter and buffer must match).

    Raises:
        RuntimeError: If names or shapes do not match the model (a checkpoint of another architecture).
    """
    path = folder / MODEL_NAME
    try:
        model.load_state_dict(read_tensors(path))
    except RuntimeError as error:
        raise RuntimeError(f"{path} does not fit this model (another architecture or config?): {error}") from error


def split_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split `optimizer.state_dict()` into flat tensors and JSON-able data.

    Returns:
        `(tensors, data)`: tensors keyed `state.<param_index>.<name>`; data holds `param_groups` and the non-tensor
        per-parameter values under `state[str(param_index)]`.
    """
    tensors: dict[str, torch.Tensor] = {}
    other_state: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                other_state.setdefault(str(index), {})[name] = value
    data = {"format_version": FORMAT_VERSION, "param_groups": state_dict["param_groups"], "state": other_state}
    return plain_tensors(tensors), data


def join_optimizer_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> dict[str, Any]:
    """Invert `split_optimizer_state`: the `state_dict` to pass to `optimizer.load_state_dict`."""
    state: dict[int, dict[str, Any]] = {int(index): dict(values) for index, values in data["state"].items()}
    for key, tensor in tensors.items():
        prefix, index, name = key.split(".", 2)
        if prefix != "state":
            raise ValueError(f"unexpected optimizer tensor {key!r}; expected state.<param_index>.<name>")
        state.setdefault(int(index), {})[name] = tensor
    return {"state": state, "param_groups": data["param_groups"]}


def _unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # AcceleratedOptimizer keeps the torch optimizer here


def save_optimizer(optimizer: Any, folder: Path) -> None:
    """Write the optimizer state as `optimizer.safetensors` plus `optimizer.json`."""
    tensors, data = split_optimizer_state(_unwrap_optimizer(optimizer).state_dict())
    save_file(tensors, folder / OPTIMIZER_TENSORS_NAME)
    write_json(folder / OPTIMIZER_JSON_NAME, data)


def load_optimizer(optimizer: Any, folder: Path) -> None:
    """Restore the optimizer from `optimizer.safetensors` and `optimizer.json` (tensors move to the parameters)."""
    data = read_json(folder / OPTIMIZER_JSON_NAME)
    state_dict = join_optimizer_state(read_tensors(folder / OPTIMIZER_TENSORS_NAME), data)
    try:
        _unwrap_optimizer(optimizer).load_state_dict(state_dict)
    except (ValueError, KeyError) as error:
        raise ValueError(f"{folder / OPTIMIZER_JSON_NAME} does not fit this optimizer: {error}") from error


# ---------------------------------------------------------------------------------------------------------------------
# Random number generators
# ---------------------------------------------------------------------------------------------------------------------


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The generator states of this process: `(tensors, data)`.

    Tensors: `torch_cpu` and, when CUDA is available, `cuda.<device>` (uint8 state tensors). Data: Python `random`
    as `[version, internal_state, gauss_next]` and NumPy's legacy global generator as a dict of plain numbers.
    """
    version, internal, gauss_next = random.getstate()
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    data = {
        "python": [version, list(internal), gauss_next],
        "numpy": {
            "name": str(name),
            "keys": [int(key) for key in keys],
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
    }
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for device, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{device}"] = state
    return plain_tensors(tensors), data


def restore_rng_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    """Set the generators from `capture_rng_state` output (CUDA devices that exist both then and now)."""
    version, internal, gauss_next = data["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = data["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            np.asarray(numpy_state["keys"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        for device in range(torch.cuda.device_count()):
            if f"cuda.{device}" in tensors:
                torch.cuda.set_rng_state(tensors[f"cuda.{device}"], device)


# ---------------------------------------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------------------------------------


def save_training_state(
    folder: str | os.PathLike, accelerator: Any, model: Any, optimizer: Any, scheduler: Any | None = None
) -> None:
    """Write this process's share of the training state into the existing folder `folder`.

    Call on every process: the main process writes the model, optimizer, scheduler and gradient-scaler files (under
    DDP they are identical on all processes) and the model's `config.json`; every process writes its own
    `rng_state_<process_index>.*`.

    Args:
        folder: The (temporary) checkpoint folder; it must exist.
        accelerator: The `Accelerator` (process index, unwrapping, the fp16 `scaler`, the step counter).
        model: The prepared model.
        optimizer: The prepared optimizer.
        scheduler: A scheduler stepped by hand (e.g. `ReduceLROnPlateau`), or None.
    """
    folder = Path(folder)
    if accelerator.is_main_process:
        save_model_weights(accelerator.unwrap_model(model), folder)
        save_model_config(accelerator.unwrap_model(model), folder)
        save_optimizer(optimizer, folder)
        if scheduler is not None:
            write_json(folder / SCHEDULER_NAME, scheduler.state_dict())
        scaler = getattr(accelerator, "scaler", None)
        if scaler is not None:
            write_json(folder / SCALER_NAME, scaler.state_dict())
    tensors, data = capture_rng_state()
    data["accelerator_step"] = int(accelerator.step)
    index = accelerator.process_index
    save_file(tensors, folder / RNG_TENSORS_PATTERN.format(index))
    write_json(folder / RNG_JSON_PATTERN.format(index), data)


def load_training_state(
    folder: str | os.PathLike, accelerator: Any, model: Any, optimizer: Any, scheduler: Any | None = None
) -> None:
    """Restore what `save_training_state` wrote (call on every process, after `accelerator.prepare`).

    Raises:
        FileNotFoundError: If a file is missing (e.g. no `rng_state_<i>` for this process index).
        ValueError: If the folder is an Accelerate `save_state` checkpoint (pickles), or the saved state does not fit
            the optimizer.
        RuntimeError: If the saved weights do not fit the model.
    """
    folder = Path(folder)
    pickled = sorted(path.name for path in folder.iterdir() if path.suffix in (".bin", ".pkl"))
    if pickled and not (folder / OPTIMIZER_JSON_NAME).is_file():
        raise ValueError(
            f"{folder} is an Accelerate save_state checkpoint ({', '.join(pickled)} are pickles), which carseg "
            "does not read; start a new run from its weights instead, e.g. --model-name-or-path on a save_pretrained "
            "folder such as OUTPUT_DIR/best"
        )
    written_by = len(list(folder.glob(RNG_JSON_PATTERN.format("*"))))
    if written_by and written_by != accelerator.num_processes:  # each process has its own random state
        raise ValueError(
            f"{folder} was written by {written_by} processes and this run has {accelerator.num_processes}; resume "
            f"with {written_by} (e.g. accelerate launch --num_processes {written_by}), or start a new run from its "
            "weights"
        )
    load_model_weights(accelerator.unwrap_model(model), folder)
    load_optimizer(optimizer, folder)
    if scheduler is not None:
        scheduler.load_state_dict(read_json(folder / SCHEDULER_NAME))
    scaler = getattr(accelerator, "scaler", None)
    if scaler is not None:
        scaler.load_state_dict(read_json(folder / SCALER_NAME))
    index = accelerator.process_index
    data = read_json(folder / RNG_JSON_PATTERN.format(index))
    restore_rng_state(read_tensors(folder / RNG_TENSORS_PATTERN.format(index)), data)
    accelerator.step = data["accelerator_step"]
