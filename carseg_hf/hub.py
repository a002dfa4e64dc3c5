"""Hugging Face Hub helpers: pushing a checkpoint in one atomic commit, and checks made before loading by repo id.

The checks of a push target (`check_repo_id`, `refuse_public_repo`) live in `hub_checks` and are imported here too.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml  # PyYAML, which huggingface_hub's repo cards parse with
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, constants, try_to_load_from_cache
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from .hub_checks import check_repo_id, refuse_public_repo  # also imported from here by training's run checks


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's transport errors: huggingface_hub 2.x talks through httpx2, 1.x through httpx."""
    errors = []
    for name in ("httpx2", "httpx"):  # both may be installed; either may be the one in use
        try:
            errors.append(importlib.import_module(name).HTTPError)
        except ImportError:
            continue
    return tuple(errors)


#: What a failed Hub call raises: HTTP errors, transport errors (dropped connection, timeout), OS errors.
_UPLOAD_ERRORS = (HfHubHTTPError, *_transport_errors(), OSError)

PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "model.pt", "model.pth")
#: Suffixes of pickled files that a checkpoint folder to push must not hold.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: Files every pushed checkpoint carries (besides the model code and the README.md model card).
REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
#: Auto classes that `auto_map` must name, per JSON file, for `trust_remote_code=True` loading.
REQUIRED_AUTO_MAP = {
    "config.json": ("AutoConfig", "AutoModelForSemanticSegmentation"),
    "preprocessor_config.json": ("AutoImageProcessor",),
}


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
            download = f"hf download {path}" + (f" --revision {revision}" if revision else "")
            raise OSError(
                f"model {path!r} (revision {revision or 'main'}) is not in the local cache and HF_HUB_OFFLINE=1 "
                f"forbids downloading it. Fetch it once while online (unset HF_HUB_OFFLINE and load it, or run "
                f"`{download}`), or pass a local folder."
            )
        return
    from huggingface_hub import HfApi

    try:
        files = set(HfApi().list_repo_files(path, revision=revision, token=token))
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise OSError(f"model {path!r} (revision {revision or 'main'}) was not found on the Hub: {error}") from error
    except HfHubHTTPError as error:
        raise OSError(f"could not list the files of model {path!r} on the Hub: {error}") from error
    except Exception as error:  # the HTTP client's own connection errors, which huggingface_hub lets through
        if not _is_network_error(error):
            raise
        raise OSError(
            f"could not reach the Hub to list the files of model {path!r} ({error}); check the connection, set "
            "HF_HUB_OFFLINE=1 to use the local cache, or pass a local folder"
        ) from error
    _refuse_pickle_only(path, files)


def _is_network_error(error: Exception) -> bool:
    """Whether `error` is a connection or transport failure of the HTTP client (httpx or requests) or the OS."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, OSError) or bool(names & {"TransportError", "RequestError", "RequestException"})


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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable JSON file: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def validate_checkpoint_dir(checkpoint_dir: str | Path) -> Path:
    """Check that a folder is a carseg checkpoint that may be published.

    Args:
        checkpoint_dir: Folder written by `save_pretrained` (model and image processor).

    Returns:
        The folder as a `Path`.

    Raises:
        FileNotFoundError: If the folder or one of `config.json`, `model.safetensors`, `preprocessor_config.json`
            is missing.
        ValueError: If the folder holds pickled weights, `config.json` is not a carseg config, or
            `model.safetensors` cannot be read.
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(folder)!r} does not exist or is not a folder")
    names = {p.name for p in folder.iterdir() if p.is_file()}
    pickled = sorted(n for n in names if n in PICKLE_WEIGHTS or n.endswith(PICKLE_SUFFIXES) or _is_pickle_shard(n))
    if pickled:
        raise ValueError(
            f"refusing to push {str(folder)!r}: it holds pickled files ({', '.join(pickled)}). carseg publishes "
            "safetensors only, because unpickling runs arbitrary code; move them out of the folder first."
        )
    missing = [name for name in REQUIRED_FILES if name not in names]
    if missing:
        raise FileNotFoundError(
            f"checkpoint folder {str(folder)!r} lacks {', '.join(missing)}; expected a folder written by "
            "model.save_pretrained(...) and image_processor.save_pretrained(...)"
        )
    config = _read_json(folder / "config.json")
    if config.get("model_type") != "carseg":
        raise ValueError(f"{folder / 'config.json'} has model_type {config.get('model_type')!r}; expected 'carseg'")
    _read_json(folder / "preprocessor_config.json")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
            if not list(weights.keys()):
                raise ValueError(f"{folder / 'model.safetensors'} holds no tensors")
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{folder / 'model.safetensors'} is not a readable safetensors file: {error}") from error
    return folder


def _is_pickle_shard(name: str) -> bool:
    return name.startswith("pytorch_model") and name.endswith(".bin")


def code_files(folder: str | Path) -> list[str] | None:
    """Names of the Python files that `auto_map` needs, with their relative imports, if all are in `folder`.

    Args:
        folder: A checkpoint folder.

    Returns:
        The sorted file names, or None when `auto_map` lacks a required Auto class or a code file is missing.
    """
    from transformers.dynamic_module_utils import get_relative_import_files

    folder = Path(folder)
    modules = set()
    for json_name, classes in REQUIRED_AUTO_MAP.items():
        auto_map = _read_json(folder / json_name).get("auto_map") or {}
        for auto_class in classes:
            reference = auto_map.get(auto_class)
            if not isinstance(reference, str) or "." not in reference or "--" in reference:
                return None
            modules.add(reference.rsplit(".", 1)[0] + ".py")
    names = set()
    for module in sorted(modules):
        if not (folder / module).is_file():
            return None
        names.add(module)
        try:
            names.update(Path(p).name for p in get_relative_import_files(str(folder / module)))
        except (OSError, ValueError):
            return None
    if not all((folder / name).is_file() for name in names):
        return None
    return sorted(names)


def _resave_with_code(folder: Path, target: Path) -> list[str]:
    """Re-save a checkpoint through `save_pretrained`, which writes `auto_map` and copies the model code."""
    from .image_processing_carseg import CarSegImageProcessor
    from .modeling_carseg import CarSegForSemanticSegmentation
    from .registration import register_auto_classes

    register_auto_classes()
    model = CarSegForSemanticSegmentation.from_pretrained(str(folder), use_safetensors=True)
    model.save_pretrained(str(target), safe_serialization=True)
    CarSegImageProcessor.from_pretrained(str(folder)).save_pretrained(str(target))
    names = code_files(target)
    if names is None:
        raise RuntimeError(f"save_pretrained did not write the model code and auto_map into {target}")
    return names


#: Values of `push_checkpoint(card=...)` and `carseg push --card`.
CARD_SOURCES = ("auto", "folder", "generate")


def _folder_card(path: Path) -> str:
    """Read and check a hand-written model card: UTF-8 text that opens with a YAML metadata block."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"model card {str(path)!r} is not readable UTF-8 text: {error}") from error
    try:
        data = ModelCard(text, ignore_metadata_errors=False).data.to_dict()
    except (ValueError, yaml.YAMLError) as error:
        raise ValueError(f"model card {str(path)!r} has invalid YAML metadata: {error}") from error
    if not data:
        raise ValueError(
            f"model card {str(path)!r} has no YAML metadata block: it must open with '---', fields such as "
            "'library_name: transformers' and 'pipeline_tag: image-segmentation', and '---'. Fix it, or push "
            "with card='generate' (carseg push --card generate) to upload a generated card instead."
        )
    return text


def _model_card_text(
    folder: Path,
    repo_id: str,
    card: str,
    metrics: Mapping[str, Any] | None,
    card_data: Mapping[str, Any] | None,
) -> str:
    """The README.md to upload: the folder's own card or a generated one, as `card` says."""
    from .configuration_carseg import CarSegConfig
    from .model_card import build_model_card

    if card not in CARD_SOURCES:
        raise ValueError(f"card must be one of {', '.join(CARD_SOURCES)}, got {card!r}")
    own = folder / "README.md"
    if card == "folder" and not own.is_file():
        raise FileNotFoundError(f"card='folder' needs a model card at {str(own)!r}, and there is none")
    if card != "generate" and own.is_file():
        if metrics or card_data:
            raise ValueError(
                f"{str(own)!r} is uploaded as the model card as it is, so metrics and card_data would be ignored. "
                "Put them into that card, or push with card='generate' (carseg push --card generate) to build a "
                "card from them instead."
            )
        return _folder_card(own)
    card_options = dict(card_data or {})
    dataset = card_options.pop("dataset", None)
    training_args = card_options.pop("training_args", None)
    config = CarSegConfig.from_pretrained(str(folder))
    built = build_model_card(
        repo_id, config, metrics=metrics, training_args=training_args, dataset=dataset, **card_options
    )
    return str(built)


def _commit_operations(folder: Path, resave_dir: Path, card_text: str) -> list[CommitOperationAdd]:
    """The files of the commit: the required files, the model code and the card text as README.md.

    Args:
        folder: The checked checkpoint folder.
        resave_dir: Where the checkpoint is re-saved with its code when `folder` lacks the code or `auto_map`; it
            must outlive the upload.
        card_text: The model card.
    """
    source = folder
    names = code_files(folder)
    if names is None:
        source = resave_dir
        names = _resave_with_code(folder, source)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(source / name)) for name in (*REQUIRED_FILES, *names)
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card_text.encode("utf-8")))
    return operations


def _commit(
    api: HfApi,
    repo_id: str,
    operations: list[CommitOperationAdd],
    branch: str,
    private: bool,
    commit_message: str | None,
    folder: Path,
) -> str:
    """Create the repo and branch if needed and upload `operations` in one commit; return the commit's sha.

    Raises:
        OSError: If a Hub call fails, naming `folder`, the repo and the branch; the repo is then left unchanged.
    """
    try:
        if private:
            refuse_public_repo(api, repo_id, repr(str(folder)))
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if branch != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
        info = api.create_commit(
            repo_id,
            operations=operations,
            commit_message=commit_message or "Upload carseg checkpoint",
            revision=branch,
            repo_type="model",
        )
    except _UPLOAD_ERRORS as error:
        raise OSError(
            f"uploading {str(folder)!r} to {repo_id!r} (revision {branch}) failed: {error}. The upload is a "
            "single commit, so no file of it reached the repo (a repo created for it may be left empty); push again "
            f"with: carseg push {folder} --repo-id {repo_id}" + (f" --revision {branch}" if branch != "main" else "")
        ) from error
    return info.oid


def push_checkpoint(
    checkpoint_dir: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    card_data: Mapping[str, Any] | None = None,
    card: str = "auto",
) -> str:
    """Publish a carseg checkpoint to the Hub in one atomic commit.

    The commit holds `config.json`, `model.safetensors`, `preprocessor_config.json`, the model code named by
    `auto_map` (so that `trust_remote_code=True` works without carseg installed) and a README.md model card: the
    folder's own README.md when it has one (a hand-written card, such as the bundled model's), otherwise one built
    from `metrics` and `card_data`. Other files of the folder (optimizer states, logs) are never uploaded. If the
    folder lacks the code or `auto_map`, it is re-saved through `save_pretrained` into a temporary folder first; the
    original is not touched.
    Because everything travels in one `create_commit`, a failed upload leaves the repo as it was.

    Args:
        checkpoint_dir: Folder written by `save_pretrained` (model and image processor).
        repo_id: Target repo, `org/name`; created if needed.
        private: Create the repo as private (only used when the repo does not exist yet).
        revision: Branch to commit to; created from `main` if it does not exist. Defaults to `main`.
        token: Hub token; defaults to the stored login or `$HF_TOKEN`.
        commit_message: Commit summary; defaults to "Upload carseg checkpoint".
        metrics: Evaluation results for the card (e.g. `{"eval_dice": 0.995}`).
        card_data: Card options: `dataset` (str) and `training_args` (dict) go into the card text; any other key
            (e.g. `license`, `tags`) is a YAML field that overrides the default.
        card: Which model card to upload: "auto" (the folder's README.md if it exists, else a generated one),
            "folder" (the folder's README.md, which must exist) or "generate" (always build one, ignoring the
            folder's README.md). A folder card is uploaded as it is, so `metrics` and `card_data` are refused
            with it.

    Returns:
        The sha of the new commit (usable as `revision=` to pin exactly this upload).

    Raises:
        FileNotFoundError: If the folder or a required file is missing.
        ValueError: If the repo id is malformed or the token empty, the folder holds pickled or invalid files, the
            folder's card has no valid YAML metadata, or `metrics`/`card_data` come with a folder card.
        OSError: If the upload fails; no file of it reaches the repo.
    """
    check_repo_id(repo_id)
    if isinstance(token, str) and not token.strip():
        raise ValueError("the Hub token is empty; pass a token, or leave it out to use the stored login or $HF_TOKEN")
    folder = validate_checkpoint_dir(checkpoint_dir)
    from .loading import load_model  # here: loading imports this module

    load_model(str(folder))  # the weights load whole into the config's network, or nothing is uploaded
    card_text = _model_card_text(folder, repo_id, card, metrics, card_data)
    with tempfile.TemporaryDirectory(prefix="carseg-push-") as tmp:
        operations = _commit_operations(folder, Path(tmp) / "checkpoint", card_text)
        branch = revision or constants.DEFAULT_REVISION
        return _commit(HfApi(token=token), repo_id, operations, branch, private, commit_message, folder)
