"""The training door keeps secrets and checkpoints safe: no token in tracker logs, no false fp16 record, and a
damaged checkpoint is named instead of crashing the resume."""

from __future__ import annotations

import pytest
from hub_fixtures import hub_env_fixture, local_hub_fixture  # noqa: F401 - hub_env, local_hub

from carseg_hf.training import main, parse_args
from tests.tiny_training import make_tiny_carvana, run_tiny_training, tiny_training_argv


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_tiny_carvana(tmp_path_factory)


def test_the_hub_token_never_reaches_the_tracker_logs(data_dir, tmp_path, hub_env):
    pytest.importorskip("tensorboard")
    token = "hf_qaSECRETtoken123"
    push = ["--push_to_hub", "--hub_model_id", "qa/secret-run", "--hub_token", token]
    run_tiny_training(data_dir, tmp_path / "run", "--max_train_steps", "1", "--report_to", "tensorboard", *push)
    assert "qa/secret-run" in hub_env.server.repos  # the token was used for the push (local Hub test server)
    logs = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert any(path.name == "hparams.yml" for path in logs)  # the run's arguments were logged ...
    assert not [path for path in logs if token.encode() in path.read_bytes()]  # ... without the token
    assert "hub_token: <redacted>" in next(path for path in logs if path.name == "hparams.yml").read_text()


def test_fp16_on_a_cpu_is_refused_rather_than_recorded_for_an_fp32_run(data_dir, tmp_path):
    args = parse_args(
        tiny_training_argv(data_dir, tmp_path / "run", "--max_train_steps", "1", "--mixed_precision", "fp16")
    )
    with pytest.raises(ValueError, match="--mixed-precision fp16 needs a CUDA GPU; on a CPU pass bf16 or no"):
        main(args)
    assert not (tmp_path / "run" / "all_results.json").exists()


def test_a_truncated_checkpoint_is_named_with_the_way_on(data_dir, tmp_path):
    common = ["--checkpointing_steps", "1", "--checkpoints_total_limit", "3"]
    run_tiny_training(data_dir, tmp_path / "run", *common, "--max_train_steps", "2")
    weights = tmp_path / "run" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    with pytest.raises(
        ValueError, match=r"checkpoint-2/model.safetensors is not a readable safetensors file.*earlier"
    ):
        run_tiny_training(
            data_dir, tmp_path / "run", *common, "--max_train_steps", "3", "--resume_from_checkpoint", "latest"
        )


def test_a_learning_rate_that_a_resume_ignores_is_said_to_be_ignored(data_dir, tmp_path, caplog):
    common = ["--checkpointing_steps", "1", "--learning_rate", "1e-3"]
    run_tiny_training(data_dir, tmp_path / "run", *common, "--max_train_steps", "1")
    with caplog.at_level("WARNING", logger="carseg_hf.training"):
        run_tiny_training(
            data_dir, tmp_path / "run", *common, "--max_train_steps", "2", "--resume_from_checkpoint", "latest"
        )
    assert "ignored" not in caplog.text  # the same rate: nothing to say
    changed = ["--checkpointing_steps", "1", "--learning_rate", "1e-2", "--resume_from_checkpoint", "latest"]
    with caplog.at_level("WARNING", logger="carseg_hf.training"):
        run_tiny_training(data_dir, tmp_path / "run", *changed, "--max_train_steps", "3")
    assert "was trained with --learning-rate 0.001; resuming keeps its optimizer" in caplog.text
    assert "--learning-rate 0.01 is ignored" in caplog.text


def test_output_folders_under_a_file_are_named(data_dir, tmp_path, capsys):
    from carseg_hf.output_folders import output_folder_problem

    (tmp_path / "afile").write_text("")
    with pytest.raises(SystemExit):
        parse_args(tiny_training_argv(data_dir, tmp_path / "afile" / "run"))
    assert "--output-dir" in (err := capsys.readouterr().err) and "which is a file; expected a folder" in err
    assert output_folder_problem(tmp_path / "afile", "--out").endswith("is a file; expected a folder")
    assert "lies under" in output_folder_problem(tmp_path / "afile" / "a" / "b", "--out")
    assert output_folder_problem(tmp_path / "new" / "deep", "--out") is None  # created when needed


def test_an_smp_encoder_name_alone_builds_a_five_level_network_and_a_wrong_one_is_named(data_dir, tmp_path):
    from carseg_hf.training.model_builder import SMP_DECODER_CHANNELS, build_model

    args = parse_args(tiny_training_argv(data_dir, tmp_path / "a", "--encoder_name", "resnet18"))
    args.encoder_channels = None  # as on a command line that names only the encoder
    model, _ = build_model(args)
    assert tuple(model.config.encoder_channels) == SMP_DECODER_CHANNELS
    args = parse_args(tiny_training_argv(data_dir, tmp_path / "b", "--encoder_name", "resnet999"))
    args.encoder_channels = None
    with pytest.raises(ValueError, match="--encoder-name 'resnet999' is not a segmentation-models-pytorch encoder"):
        build_model(args)


def test_the_best_model_is_readable_by_others_like_its_other_files(data_dir, tmp_path):
    run_tiny_training(data_dir, tmp_path / "run", "--max_train_steps", "1")
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "run" / "best").iterdir()}
    assert modes["model.safetensors"] == 0o644 and modes["config.json"] == 0o644


def test_a_checkpoint_of_two_processes_is_not_resumed_by_one(data_dir, tmp_path):
    import shutil

    common = ["--checkpointing_steps", "1"]
    run_tiny_training(data_dir, tmp_path / "run", *common, "--max_train_steps", "1")
    checkpoint = tmp_path / "run" / "checkpoint-1"
    for name in ("rng_state_0.json", "rng_state_0.safetensors"):  # as a second process would have written them
        shutil.copy(checkpoint / name, checkpoint / name.replace("_0", "_1"))
    with pytest.raises(ValueError, match="written by 2 processes and this run has 1; resume with 2"):
        run_tiny_training(
            data_dir, tmp_path / "run", *common, "--max_train_steps", "2", "--resume_from_checkpoint", "latest"
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hub_model_id", "org/name"], "--hub-model-id only apply with --push-to-hub"),
        (["--hub_private", "--hub_token", "hf_x"], "--hub-private, --hub-token only apply with --push-to-hub"),
        (["--encoder_weights", "none"], "--encoder-weights applies to --encoder"),
        (["--encoder_name", "resnet18", "--encoder_weights", "imagenet"], "--encoder-weights applies to --encoder"),
        (["--revision", "v1"], "--revision pins --model-name-or-path"),
    ],
)
def test_options_that_would_be_silently_ignored_are_refused(data_dir, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(tiny_training_argv(data_dir, tmp_path / "run", *extra))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_encoder_weights_default_to_imagenet_with_an_encoder_only(data_dir, tmp_path):
    common = ["--data_dir", str(data_dir), "--resolution", "64x64"]
    fresh = parse_args([*common, "--output_dir", str(tmp_path / "a")])
    assert fresh.encoder_weights is None
    with_encoder = parse_args([*common, "--output_dir", str(tmp_path / "b"), "--encoder", "efficientnet-lite0"])
    assert with_encoder.encoder_weights == "imagenet"
