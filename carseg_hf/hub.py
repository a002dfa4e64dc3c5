"""Hugging Face Hub helpers: checks made before loading a model by repo id."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "model.pt", "model.pth")


def check_loadable(path: str, revision: str | None = None, token: str | bool | None = None) -> None:
    """Fail early, with a fix, when a model cannot be loaded safely from a folder or the Hub.

    Args:
        path: A local folder or a Hub repo id.
        revision: Hub revision.
        token: Hub token.

    Raises:
        OSError: If the model is offline and uncached, does not exist, or holds only pickled weights.
    """
    local = Path(path)
    if local.is_dir():
        files = {p.name for p in local.iterdir()}
        _refuse_pickle_only(path, files)
        return
    if constants.HF_HUB_OFFLINE:
        cached = try_to_load_from_cache(path, "model.safetensors", revision=revision)
        if not isinstance(cached, str):
            raise OSError(
                f"model {path!r} (revision {revision or 'main'}) is not in the local cache and HF_HUB_OFFLINE=1 "
                "forbids downloading it. Unset HF_HUB_OFFLINE and load it once while online, or pass a local folder."
            )
        return
    from huggingface_hub import HfApi

    try:
        files = set(HfApi().list_repo_files(path, revision=revision, token=token))
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise OSError(f"model {path!r} (revision {revision or 'main'}) was not found on the Hub: {error}") from error
    except HfHubHTTPError as error:
        raise OSError(f"could not list the files of model {path!r} on the Hub: {error}") from error
    _refuse_pickle_only(path, files)


def _refuse_pickle_only(path: str, files: set[str]) -> None:
    if "model.safetensors" in files or "model.safetensors.index.json" in files:
        return
    pickled = sorted(files.intersection(PICKLE_WEIGHTS))
    if pickled:
        raise OSError(
            f"model {path!r} only has pickled weights ({', '.join(pickled)}); carseg reads safetensors only, "
            "because unpickling can run arbitrary code. Convert the checkpoint to model.safetensors first."
        )
    raise OSError(f"model {path!r} has no model.safetensors; expected a folder written by save_pretrained")
