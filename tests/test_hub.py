"""The Hub round trip: huggingface_hub's real client against the local test Hub (tests/hub_server.py)."""

import argparse
import json
import shutil
import time
import uuid

import numpy as np
import pytest
import torch
from hub_fixtures import hub_env_fixture, local_hub_fixture  # noqa: F401 - the hub_env and local_hub fixtures
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation, pipeline

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.commands import push as push_command
from carseg_hf.hub import push_checkpoint
from carseg_hf.loading import load_model
from carseg_hf.model_card import build_model_card
from tests.conftest import tiny_config
from tests.remote_code import check_remote_code_load


def _repo_id() -> str:
    return f"org/carseg-{uuid.uuid4().hex[:8]}"


def _save(folder, model, processor):
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _logits(model, x):
    with torch.no_grad():
        return model(x).logits


@pytest.fixture
def checkpoint(tmp_path, tiny_model, tiny_processor):
    with torch.no_grad():
        tiny_model.unet.head.bias.fill_(0.05)  # so that both classes appear in masks
    return _save(tmp_path / "ckpt", tiny_model, tiny_processor)


def _perturb(model, folder, processor):
    """Change every weight and save the model again into `folder`."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return _save(folder, model, processor)


def test_push_then_load_in_every_way(hub_env, checkpoint, tiny_model, tiny_processor):
    repo_id = _repo_id()
    sha = push_checkpoint(checkpoint, repo_id, metrics={"eval_dice": 0.987})
    assert sha == hub_env.server.head_sha(repo_id)
    files = hub_env.server.files(repo_id)
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "modeling_carseg.py",
        "configuration_carseg.py",
        "image_processing_carseg.py",
        "README.md",
    } <= set(files)
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert json.loads(files["config.json"])["auto_map"]["AutoModelForSemanticSegmentation"]
    # One push is one commit on top of the repo's initial commit.
    assert [m for m, p in hub_env.server.requests if p == f"/api/models/{repo_id}/commit/main"] == ["POST"]

    x = torch.randn(1, 3, 40, 56)
    expected = _logits(tiny_model, x)
    model = AutoModelForSemanticSegmentation.from_pretrained(repo_id).eval()
    assert isinstance(model, CarSegForSemanticSegmentation)
    assert torch.equal(_logits(model, x), expected)
    processor = AutoImageProcessor.from_pretrained(repo_id)
    assert isinstance(processor, CarSegImageProcessor)
    assert processor.size == tiny_processor.size

    loaded, loaded_processor = load_model(repo_id)
    assert torch.equal(_logits(loaded, x), expected)
    assert loaded_processor.size == tiny_processor.size

    image = Image.fromarray((np.random.default_rng(0).random((45, 70, 3)) * 255).astype(np.uint8))
    results = pipeline("image-segmentation", model=repo_id)(image)
    car = [r for r in results if r["label"] == "car"]
    assert len(car) == 1
    reference = tiny_processor.post_process_semantic_segmentation(
        _logits(tiny_model, tiny_processor(image)["pixel_values"]), target_sizes=[(45, 70)]
    )[0].numpy()
    assert 0 < reference.sum() < reference.size
    assert np.array_equal(np.asarray(car[0]["mask"]) == 255, reference == 1)


def test_second_push_old_and_new_revisions(hub_env, checkpoint, tiny_model, tiny_processor, tmp_path):
    repo_id = _repo_id()
    x = torch.randn(1, 3, 33, 47)
    old_sha = push_checkpoint(checkpoint, repo_id)
    old_logits = _logits(tiny_model, x)
    new_folder = _perturb(tiny_model, tmp_path / "ckpt2", tiny_processor)
    new_sha = push_checkpoint(new_folder, repo_id, commit_message="second run")
    new_logits = _logits(tiny_model, x)
    assert new_sha != old_sha
    assert not torch.allclose(old_logits, new_logits)

    for revision, expected in ((old_sha, old_logits), (new_sha, new_logits), (None, new_logits)):
        model, _ = load_model(repo_id, revision=revision)
        assert torch.equal(_logits(model, x), expected), revision
    auto_old = AutoModelForSemanticSegmentation.from_pretrained(repo_id, revision=old_sha).eval()
    assert torch.equal(_logits(auto_old, x), old_logits)


def test_push_to_a_new_branch_leaves_main(hub_env, checkpoint, tiny_model, tiny_processor, tmp_path):
    repo_id = _repo_id()
    x = torch.randn(1, 3, 32, 32)
    main_sha = push_checkpoint(checkpoint, repo_id)
    main_logits = _logits(tiny_model, x)
    branch_sha = push_checkpoint(_perturb(tiny_model, tmp_path / "b", tiny_processor), repo_id, revision="dev")
    assert hub_env.server.head_sha(repo_id, "main") == main_sha
    assert hub_env.server.head_sha(repo_id, "dev") == branch_sha
    assert torch.equal(_logits(load_model(repo_id, revision="dev")[0], x), _logits(tiny_model, x))
    assert torch.equal(_logits(load_model(repo_id)[0], x), main_logits)


def test_offline_loads_from_cache_without_any_request(hub_env, checkpoint, tiny_model, monkeypatch):
    repo_id = _repo_id()
    push_checkpoint(checkpoint, repo_id)
    load_model(repo_id)  # online: fills the cache
    AutoImageProcessor.from_pretrained(repo_id)
    hub_env.set_offline(monkeypatch)
    before = len(hub_env.server.requests)
    x = torch.randn(1, 3, 32, 40)
    model, _ = load_model(repo_id)
    assert torch.equal(_logits(model, x), _logits(tiny_model, x))
    auto = AutoModelForSemanticSegmentation.from_pretrained(repo_id).eval()
    assert torch.equal(_logits(auto, x), _logits(tiny_model, x))
    assert len(hub_env.server.requests) == before


def test_offline_uncached_fails_at_once_with_the_fix(hub_env, checkpoint, monkeypatch):
    repo_id = _repo_id()
    push_checkpoint(checkpoint, repo_id)  # it exists on the Hub, but was never downloaded
    hub_env.set_offline(monkeypatch)
    before = len(hub_env.server.requests)
    start = time.perf_counter()
    with pytest.raises(OSError) as error:
        load_model(repo_id)
    assert time.perf_counter() - start < 2.0
    message = str(error.value)
    assert repo_id in message and "HF_HUB_OFFLINE" in message and f"hf download {repo_id}" in message
    assert len(hub_env.server.requests) == before


def test_pickle_only_repo_is_refused(hub_env):
    repo_id = _repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    # A dummy payload: it is never unpickled, only its name matters.
    operations = [
        CommitOperationAdd("config.json", json.dumps(CarSegConfig().to_dict()).encode()),
        CommitOperationAdd("pytorch_model.bin", b"not really a pickle"),
    ]
    api.create_commit(repo_id, operations=operations, commit_message="pickle only")
    with pytest.raises(OSError, match="only has pickled weights.*pytorch_model.bin"):
        load_model(repo_id)
    resolves = [p for _, p in hub_env.server.requests if p.startswith(f"/{repo_id}/resolve/")]
    assert resolves == []  # refused before any file was downloaded


def test_push_refuses_bad_folders(hub_env, checkpoint, tmp_path):
    before = len(hub_env.server.requests)
    (checkpoint / "pytorch_model.bin").write_bytes(b"dummy")
    with pytest.raises(ValueError, match="pickled files.*pytorch_model.bin"):
        push_checkpoint(checkpoint, _repo_id())
    (checkpoint / "pytorch_model.bin").unlink()
    (checkpoint / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="model.safetensors is not a readable safetensors file"):
        push_checkpoint(checkpoint, _repo_id())
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        push_checkpoint(checkpoint, _repo_id())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        push_checkpoint(tmp_path / "nowhere", _repo_id())
    with pytest.raises(ValueError):
        push_checkpoint(checkpoint, "not a repo id")
    with pytest.raises(ValueError, match="the Hub token is empty"):
        push_checkpoint(checkpoint, _repo_id(), token="")
    CarSegForSemanticSegmentation(tiny_config(decoder_convs=3)).save_pretrained(tmp_path / "deeper")
    shutil.copy(tmp_path / "deeper" / "model.safetensors", checkpoint / "model.safetensors")  # not this config's
    with pytest.raises(ValueError, match="do not fit its config.json"):
        push_checkpoint(checkpoint, _repo_id())
    assert len(hub_env.server.requests) == before  # every refusal happens before any request


def test_push_adds_missing_code_and_auto_map(hub_env, checkpoint, tiny_model, tmp_path):
    for code in checkpoint.glob("*.py"):
        code.unlink()
    config = json.loads((checkpoint / "config.json").read_text())
    del config["auto_map"]
    (checkpoint / "config.json").write_text(json.dumps(config))
    before = sorted(p.name for p in checkpoint.iterdir())
    repo_id = _repo_id()
    push_checkpoint(checkpoint, repo_id)
    assert sorted(p.name for p in checkpoint.iterdir()) == before  # the user's folder is not touched
    files = hub_env.server.files(repo_id)
    assert {"modeling_carseg.py", "configuration_carseg.py", "image_processing_carseg.py", "image_io.py"} <= set(files)
    assert json.loads(files["config.json"])["auto_map"]["AutoConfig"] == "configuration_carseg.CarSegConfig"
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(_logits(load_model(repo_id)[0], x), _logits(tiny_model, x))


@pytest.mark.parametrize("mode", ["error", "disconnect"])
def test_interrupted_upload_leaves_previous_revision(hub_env, checkpoint, tiny_model, tiny_processor, tmp_path, mode):
    repo_id = _repo_id()
    x = torch.randn(1, 3, 32, 48)
    old_sha = push_checkpoint(checkpoint, repo_id)
    old_files = hub_env.server.files(repo_id)
    old_logits = _logits(tiny_model, x)
    new_folder = _perturb(tiny_model, tmp_path / "ckpt2", tiny_processor)
    # Break the upload after config.json has gone through, at the weights.
    hub_env.server.fail_next_commit(at_path="model.safetensors", mode=mode)
    with pytest.raises(
        OSError, match=rf"no file of it reached the repo .*push again with: carseg push .* --repo-id {repo_id}"
    ):
        push_checkpoint(new_folder, repo_id, metrics={"eval_dice": 0.5})
    assert hub_env.server.head_sha(repo_id) == old_sha
    assert hub_env.server.files(repo_id) == old_files
    model, _ = load_model(repo_id)
    assert torch.equal(_logits(model, x), old_logits)
    # Pushing again afterwards works.
    assert push_checkpoint(new_folder, repo_id) != old_sha
    assert torch.equal(_logits(load_model(repo_id)[0], x), _logits(tiny_model, x))


def test_model_card_yaml_and_text(hub_env, checkpoint):
    config = CarSegConfig.from_pretrained(checkpoint)
    card = build_model_card(
        "org/carseg", config, metrics={"eval_dice": 0.9931, "eval_loss": 0.02}, training_args={"learning_rate": 1e-4}
    )
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "image-segmentation"
    assert data["license"] == "apache-2.0"
    assert "image-segmentation" in data["tags"]
    assert data["datasets"] == ["carvana-image-masking-challenge"]
    (result,) = data["model-index"][0]["results"]
    assert result["metrics"] == [{"type": "dice", "value": 0.9931, "name": "Dice"}]
    text = card.text
    for snippet in (
        "import carseg_hf",
        "trust_remote_code=True",
        "revision=revision",
        'pipeline("image-segmentation", model="org/carseg")',
        "carseg predict --model org/carseg",
        "CARSEG_MODEL=org/carseg",
        "Optimiser: Adam, learning rate 0.0001.",
        "shift, scale and rotation",
        "synthetic renders",
        "What `trust_remote_code=True` runs",
        '"learning_rate": 0.0001',
        "eval_loss",
    ):
        assert snippet in text, snippet
    unrecorded = build_model_card("org/carseg", config)
    assert "model-index" not in unrecorded.data.to_dict()
    assert "were not recorded" in unrecorded.text and "Optimiser:" not in unrecorded.text
    # The recipe lines come from the run's own arguments, not from the reference recipe.
    recorded = build_model_card(
        "org/carseg",
        config,
        training_args={
            "learning_rate": 3e-4,
            "lr_scheduler": "cosine",
            "early_stopping_patience": 4,
            "early_stopping_min_delta": 1e-4,
            "augmentation": "none",
        },
    ).text
    assert "learning rate 0.0003, `cosine` schedule." in recorded
    assert "patience 4, `min_delta` 0.0001" in recorded
    assert "- Augmentation: none." in recorded and "1e-4" not in recorded
    no_stopping = build_model_card("org/carseg", config, training_args={"early_stopping_patience": 0}).text
    assert "- No early stopping." in no_stopping
    with pytest.raises(ValueError, match="eval_dice"):
        build_model_card("org/carseg", config, metrics={"eval_dice": 1.5})
    custom = build_model_card("org/carseg", config, dataset="org/cars", license="mit", tags=["mine"]).data.to_dict()
    assert (custom["license"], custom["tags"], custom["datasets"]) == ("mit", ["mine"], ["org/cars"])
    described = build_model_card("org/carseg", config, dataset="the local folder my-cars (--data-dir)")
    assert "datasets" not in described.data.to_dict()  # no claim of a Hub data set it was not trained on
    assert "Data: the local folder my-cars (--data-dir)." in described.text

    # The pushed card reads back from the Hub with the same fields.
    repo_id = _repo_id()
    push_checkpoint(checkpoint, repo_id, metrics={"val_dice": 0.97}, card_data={"license": "mit"})
    pushed = ModelCard.load(repo_id).data.to_dict()
    assert pushed["license"] == "mit"
    assert pushed["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.97


def test_folder_model_card_is_uploaded_as_it_is(hub_env, checkpoint):
    own = "---\nlibrary_name: transformers\npipeline_tag: image-segmentation\nlicense: mit\n---\n\n# Mine\n"
    (checkpoint / "README.md").write_text(own, encoding="utf-8")
    repo_id = _repo_id()
    push_checkpoint(checkpoint, repo_id)
    assert hub_env.server.files(repo_id)["README.md"].decode("utf-8") == own
    push_checkpoint(checkpoint, repo_id, card="folder")
    assert hub_env.server.files(repo_id)["README.md"].decode("utf-8") == own
    # card="generate" ignores the folder's card and builds one from the metrics.
    push_checkpoint(checkpoint, repo_id, metrics={"eval_dice": 0.98}, card="generate")
    generated = ModelCard.load(repo_id)
    assert generated.data.to_dict()["license"] == "apache-2.0" and "# Mine" not in generated.text
    sha = hub_env.server.head_sha(repo_id)
    with pytest.raises(ValueError, match="card='generate'"):
        push_checkpoint(checkpoint, repo_id, metrics={"eval_dice": 0.98})
    (checkpoint / "README.md").write_text("# No metadata\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no YAML metadata block"):
        push_checkpoint(checkpoint, repo_id)
    (checkpoint / "README.md").write_text("---\nlicense: [unclosed\n---\n", encoding="utf-8")
    with pytest.raises(ValueError, match="invalid YAML metadata"):
        push_checkpoint(checkpoint, repo_id)
    (checkpoint / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match="card='folder'"):
        push_checkpoint(checkpoint, repo_id, card="folder")
    with pytest.raises(ValueError, match="card must be one of"):
        push_checkpoint(checkpoint, repo_id, card="mine")
    assert hub_env.server.head_sha(repo_id) == sha  # refused pushes commit nothing


def test_bundled_model_pushes_with_its_own_card(hub_env):
    from carseg_hf.loading import bundled_model_dir

    folder = bundled_model_dir()
    repo_id = _repo_id()
    push_checkpoint(folder, repo_id)
    assert hub_env.server.files(repo_id)["README.md"] == (folder / "README.md").read_bytes()
    assert "These are Kaggle competition data" in ModelCard.load(repo_id).text
    x = torch.randn(1, 3, 128, 128)
    assert torch.equal(_logits(load_model(repo_id)[0], x), _logits(load_model(str(folder))[0], x))


def test_push_command(hub_env, checkpoint, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="carseg")
    push_command.add_parser(parser.add_subparsers())
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"eval_dice": 0.91}))
    repo_id = _repo_id()
    args = parser.parse_args(
        ["push", str(checkpoint), "--repo-id", repo_id, "--commit-message", "from the CLI", "--metrics", str(metrics)]
    )
    assert args.func(args) == 0
    sha = hub_env.server.head_sha(repo_id)
    assert sha in capsys.readouterr().out
    assert hub_env.server.repos[repo_id].commits[sha].message == "from the CLI"
    metrics.write_text("[1, 2]")
    with pytest.raises(ValueError, match="metrics.json"):
        args.func(parser.parse_args(["push", str(checkpoint), "--repo-id", repo_id, "--metrics", str(metrics)]))


@pytest.mark.parametrize("private", [False, True])
def test_push_command_private_flag_creates_a_private_repo(hub_env, checkpoint, private):
    parser = argparse.ArgumentParser(prog="carseg")
    push_command.add_parser(parser.add_subparsers())
    repo_id = _repo_id()
    args = parser.parse_args(["push", str(checkpoint), "--repo-id", repo_id] + (["--private"] if private else []))
    assert args.func(args) == 0
    assert hub_env.server.repos[repo_id].private is private
    assert HfApi().model_info(repo_id).private is private


@pytest.mark.parametrize(
    ("payload", "private"),
    [({"visibility": "private"}, True), ({"visibility": "public"}, False), ({"private": True}, True), ({}, False)],
)
def test_test_hub_reads_visibility_and_the_older_private_field(hub_env, payload, private):
    import httpx

    repo_id = _repo_id()
    org, name = repo_id.split("/")
    answer = httpx.post(f"{hub_env.server.url}/api/repos/create", json={"name": name, "organization": org, **payload})
    assert answer.status_code == 200
    assert hub_env.server.repos[repo_id].private is private


def test_trust_remote_code_with_revision_without_carseg_hf(hub_env, checkpoint, tiny_model, tiny_processor, tmp_path):
    repo_id = _repo_id()
    sha = push_checkpoint(checkpoint, repo_id)
    x = torch.randn(1, 3, 30, 41)
    expected = _logits(tiny_model, x)
    # A later push of other weights on main must not affect a load pinned to `sha`.
    push_checkpoint(_perturb(tiny_model, tmp_path / "later", tiny_processor), repo_id)
    # HF_ENDPOINT, HF_HOME and HF_TOKEN come from the fixture's environment.
    check_remote_code_load(repo_id, tmp_path, x, expected, revision=sha)
    assert (hub_env.hf_home / "modules" / "transformers_modules").is_dir()  # remote code went under HF_HOME


def test_cli_predict_and_space_load_by_repo_id(hub_env, checkpoint, tiny_model, tiny_processor, tmp_path, monkeypatch):
    from carseg_hf.cli import main as cli_main
    from carseg_hf.demo.app import load_segmenter
    from carseg_hf.image_io import load_mask

    repo_id = _repo_id()
    push_checkpoint(checkpoint, repo_id)
    image = Image.fromarray((np.random.default_rng(1).random((45, 70, 3)) * 255).astype(np.uint8))
    image.save(tmp_path / "car.png")
    expected = tiny_processor.post_process_semantic_segmentation(
        _logits(tiny_model, tiny_processor(image)["pixel_values"]), target_sizes=[(45, 70)]
    )[0].numpy()

    assert cli_main(["predict", str(tmp_path / "car.png"), "--model", repo_id, "--out", str(tmp_path / "out")]) == 0
    assert np.array_equal(load_mask(tmp_path / "out" / "car.png"), expected)

    monkeypatch.setenv("CARSEG_MODEL", repo_id)  # what the Space reads when no --model is given
    segmenter = load_segmenter(None, "cpu")
    assert np.array_equal(segmenter.segment(image).mask, expected)


def test_push_needs_an_org_and_the_card_opens_with_the_model(hub_env, checkpoint):
    before = len(hub_env.server.requests)
    with pytest.raises(ValueError, match="repo id 'carseg' must have the form ORG/NAME"):
        push_checkpoint(checkpoint, "carseg")
    assert len(hub_env.server.requests) == before
    card = build_model_card("org/my-carseg", CarSegConfig.from_pretrained(checkpoint))
    assert card.text.lstrip().startswith(
        "# my-carseg\n\nBinary car segmentation (Kaggle Carvana Image Masking Challenge) with"
    )
    assert "It outputs one logit per pixel; label 1 (`car`) is predicted where its sigmoid exceeds" in card.text
