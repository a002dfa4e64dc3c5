"""Checks of a Hub push target, made before anything is uploaded: the repo id's form and the repo's visibility.

`carseg push` (`hub.push_checkpoint`) and training's `--push-to-hub` (`carseg_hf.training`) both ask here; both names
are also importable from `carseg_hf.hub`.
"""

from __future__ import annotations

from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.utils import validate_repo_id


def check_repo_id(repo_id: str) -> None:
    """Refuse a malformed repo id (huggingface_hub's rules, as a `ValueError`), and one that is not `ORG/NAME`."""
    validate_repo_id(repo_id)
    if repo_id.count("/") != 1:
        raise ValueError(f"repo id {repo_id!r} must have the form ORG/NAME")


def refuse_public_repo(api: HfApi, repo_id: str, what: str) -> None:
    """Refuse a push asked to be private into a repo that already exists and is public.

    `create_repo(private=True, exist_ok=True)` leaves an existing repo's visibility as it is, so without this check
    weights meant to stay private would be published.

    Args:
        api: The client to ask, with the push's token.
        repo_id: The target repo.
        what: What would be pushed, for the message (a quoted folder, or "the best model").

    Raises:
        ValueError: If `repo_id` exists and is public, naming the repo and the ways on.
    """
    try:
        info = api.repo_info(repo_id, repo_type="model")
    except RepositoryNotFoundError:
        return  # created private below
    if not info.private:
        raise ValueError(
            f"{repo_id!r} already exists and is public, so a private push of {what} would publish it; nothing "
            "was uploaded. Make the repo private on the Hub first, push to another repo id, or push without "
            "--private to publish"
        )
