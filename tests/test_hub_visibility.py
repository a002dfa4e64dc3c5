"""A push asked to be private never publishes: an existing public repo is refused, by `carseg push --private` and by
training's `--hub-private` before the run starts. Runs against `tests/hub_server.py`, the local Hub-compatible test
server."""

from __future__ import annotations

import pytest
from hub_fixtures import hub_env_fixture, local_hub_fixture  # noqa: F401 - the hub_env and local_hub fixtures
from huggingface_hub import HfApi

from carseg_hf.hub import push_checkpoint
from carseg_hf.training import main, parse_args
from tests.tiny_training import make_tiny_carvana, tiny_training_argv


@pytest.fixture
def checkpoint(tmp_path, tiny_model, tiny_processor):
    folder = tmp_path / "ckpt"
    tiny_model.save_pretrained(folder)
    tiny_processor.save_pretrained(folder)
    return folder


def test_a_private_push_into_an_existing_public_repo_is_refused_and_uploads_nothing(hub_env, checkpoint):
    repo_id = "org/carseg-public"
    first = push_checkpoint(checkpoint, repo_id)  # a public repo with one commit
    with pytest.raises(ValueError, match="'org/carseg-public' already exists and is public"):
        push_checkpoint(checkpoint, repo_id, private=True, commit_message="meant to be private")
    assert hub_env.server.head_sha(repo_id) == first
    assert HfApi().model_info(repo_id).private is False


def test_a_private_push_into_an_existing_private_repo_or_a_new_one_goes_through(hub_env, checkpoint):
    push_checkpoint(checkpoint, "org/carseg-new", private=True)
    assert hub_env.server.repos["org/carseg-new"].private
    second = push_checkpoint(checkpoint, "org/carseg-new", private=True, commit_message="again")
    assert hub_env.server.head_sha("org/carseg-new") == second


def test_training_refuses_hub_private_for_a_public_repo_before_it_trains(hub_env, checkpoint, tmp_path_factory):
    push_checkpoint(checkpoint, "org/carseg-trained-public")
    data_dir = make_tiny_carvana(tmp_path_factory)
    output_dir = tmp_path_factory.mktemp("run")
    push = ["--push_to_hub", "--hub_model_id", "org/carseg-trained-public", "--hub_private"]
    args = parse_args(tiny_training_argv(data_dir, output_dir, "--max_train_steps", "1", *push))
    with pytest.raises(ValueError, match="already exists and is public"):
        main(args)
    assert not any(output_dir.iterdir())  # refused before the output folder was written to
