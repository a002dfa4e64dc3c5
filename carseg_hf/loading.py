"""Loading a carseg model and its processor from a folder, a Hub repo id, or the bundled default."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError

from .configuration_carseg import CarSegConfig
from .hub import check_loadable
from .image_processing_carseg import CarSegImageProcessor
from .modeling_carseg import CarSegForSemanticSegmentation

#: The checkpoints shipped inside the package, by name: `carseg-lite0` (the default, a U-Net on an
#: ImageNet-pretrained EfficientNet-Lite0, trained on real cars and composites) and `carseg-synth` (the earlier
#: renders-only model, kept as a baseline for comparisons).
BUNDLED_MODELS = ("carseg-lite0", "carseg-synth")

#: Name of the bundled checkpoint used when no model is given.
DEFAULT_MODEL = "carseg-lite0"


def bundled_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """Folder of a checkpoint shipped with the package.

    Raises:
        ValueError: If `name` is not one of `BUNDLED_MODELS`.
    """
    if name not in BUNDLED_MODELS:
        raise ValueError(f"no bundled model named {name!r}; the package ships {', '.join(BUNDLED_MODELS)}")
    return Path(__file__).resolve().parent / "pretrained" / name


def resolve_model_path(model: str | os.PathLike | None) -> str:
    """Map `None`, a bundled name or `$CARSEG_MODEL` to a concrete folder or Hub id.

    Args:
        model: A folder, a Hub repo id, a bundled name (`BUNDLED_MODELS`), or None for `$CARSEG_MODEL` or the
            bundled default.

    Returns:
        A local folder path or a Hub repo id.
    """
    if model is None:
        model = os.environ.get("CARSEG_MODEL") or DEFAULT_MODEL
    model = os.fspath(model)
    if model in BUNDLED_MODELS:
        return str(bundled_model_dir(model))
    return model


def weights_file(
    model: str | os.PathLike | None, revision: str | None = None, token: str | bool | None = None
) -> Path:
    """The `model.safetensors` that `load_model` reads for `model`: in its folder, or in the Hub cache.

    Args:
        model: A folder, a Hub repo id, or None for `$CARSEG_MODEL` or the bundled default.
        revision: Hub revision.
        token: Hub token, if the repo is private.

    Returns:
        The local path of the weights file (downloaded into the cache if it is not there yet).
    """
    path = resolve_model_path(model)
    if Path(path).is_dir():
        return Path(path) / "model.safetensors"
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(path, "model.safetensors", revision=revision, token=token))


def resolve_device(device: str = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a device, refusing CUDA where there is none.

    Raises:
        ValueError: For a string torch does not read as a device, or CUDA on a machine without it.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a device; expected auto, cpu, cuda or cuda:N") from error
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported by carseg; expected auto, cpu, cuda or cuda:N")
    if resolved.type == "cpu" and resolved.index not in (None, 0):
        raise ValueError(f"device {device!r}: the CPU has no numbered devices; expected cpu")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine; use cpu")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        )
    return resolved


def check_weights_match(model: str, info: dict) -> None:
    """Refuse weights that do not fit the config: missing, unexpected or differently shaped tensors.

    transformers would load such weights with those tensors freshly initialised, a network that predicts noise.

    Args:
        model: The folder or Hub id, for the message.
        info: The `output_loading_info` of `from_pretrained`.

    Raises:
        ValueError: Naming the model and up to three tensors of each kind.
    """
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = [key if isinstance(key, str) else key[0] for key in info.get(kind) or ()]
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{len(keys)} {kind.replace('_', ' ')} ({shown})")
    if problems:
        raise ValueError(
            f"the weights of {model!r} do not fit its config.json: {'; '.join(problems)}; the weights file belongs to "
            "another architecture (or the config was edited)"
        )


def load_model(
    model: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    token: str | bool | None = None,
) -> tuple[CarSegForSemanticSegmentation, CarSegImageProcessor]:
    """Load a model in eval mode and its image processor; weights are read from safetensors only.

    Args:
        model: A folder, a Hub repo id, or None for `$CARSEG_MODEL` or the bundled default.
        device: Where to put the model.
        revision: Hub revision (branch, tag or commit) to pin.
        token: Hub token, if the repo is private.

    Returns:
        `(model, processor)`.

    Raises:
        FileNotFoundError: If a local folder lacks `config.json`, `model.safetensors` or `preprocessor_config.json`.
        ValueError: If the weights do not fit the config (`check_weights_match`), or a revision comes with a local
            folder.
        OSError: If a Hub repo cannot be resolved (offline and not cached, missing, or pickle-only).
    """
    path = resolve_model_path(model)
    local = Path(path)
    if local.is_dir() and revision is not None:
        raise ValueError(
            f"revision {revision!r} pins a Hub repo, but {path!r} is a local folder, which has no revisions; "
            "drop the revision or pass a Hub repo id"
        )
    if local.is_dir():
        needed = ("config.json", "model.safetensors", "preprocessor_config.json")
        missing = [name for name in needed if not (local / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"model folder {path!r} lacks {', '.join(missing)}; expected a folder written by save_pretrained of "
                "the model and of its image processor (without the processor's file the input size and "
                "normalisation the weights were trained with are unknown)"
            )
    elif path.startswith((".", "/", "~")) or path.count("/") != 1 or Path(path).parent.is_dir():
        source = " (from $CARSEG_MODEL)" if model is None else ""
        raise FileNotFoundError(
            f"model folder {path!r}{source} does not exist, and it is not a Hub repo id ORG/NAME nor a bundled "
            f"model ({', '.join(BUNDLED_MODELS)})"
        )
    check_loadable(path, revision=revision, token=token)
    config = CarSegConfig.from_pretrained(path, revision=revision, token=token)
    try:
        network, info = CarSegForSemanticSegmentation.from_pretrained(
            path, config=config, revision=revision, token=token, use_safetensors=True, output_loading_info=True
        )
    except SafetensorError as error:
        raise ValueError(
            f"the weights file of {path!r} is not a readable safetensors file ({error}); it may be truncated or "
            "corrupt: save or download it again"
        ) from error
    except RuntimeError as error:  # tensors of other shapes than the config's (transformers' own check)
        raise ValueError(
            f"the weights of {path!r} do not fit its config.json: some tensors have other shapes than the config "
            "gives; the weights file belongs to another architecture (or the config was edited)"
        ) from error
    check_weights_match(path, info)
    processor = CarSegImageProcessor.from_pretrained(path, revision=revision, token=token)
    network.to(torch.device(device) if isinstance(device, str) else device).eval()
    return network, processor
