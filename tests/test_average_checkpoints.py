"""`training/average_checkpoints.py`: the uniform weight average of fine-tuned checkpoints."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.loading import load_model
from tests.conftest import tiny_config
from training.average_checkpoints import average_checkpoints, average_state_dicts, main


def _checkpoint(folder, seed: int, with_config: bool = True):
    """A tiny model with BatchNorm statistics that differ by seed, saved as a checkpoint folder."""
    torch.manual_seed(seed)
    model = CarSegForSemanticSegmentation(tiny_config())
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 48) * (seed + 1))  # moves the running statistics
    model.save_pretrained(folder)
    CarSegImageProcessor(size={"height": 32, "width": 48}, keep_aspect_ratio=True).save_pretrained(folder)
    if not with_config:
        (folder / "config.json").unlink()
        (folder / "preprocessor_config.json").unlink()
    return load_file(str(folder / "model.safetensors"))


def test_the_average_is_the_mean_of_every_float_tensor_and_loads(tmp_path):
    states = [_checkpoint(tmp_path / f"c{seed}", seed) for seed in range(3)]
    path = average_checkpoints([tmp_path / f"c{seed}" for seed in range(3)], tmp_path / "soup")
    averaged = load_file(str(path))
    assert set(averaged) == set(states[0])
    for name, tensor in averaged.items():
        if tensor.is_floating_point():
            expected = sum(state[name].double() for state in states) / 3
            assert torch.allclose(tensor.double(), expected, atol=1e-6), name
            assert not torch.equal(tensor, states[0][name]) or torch.equal(states[1][name], states[0][name]), name
        else:
            assert torch.equal(tensor, states[0][name]), name  # num_batches_tracked: the first checkpoint's
    model, processor = load_model(str(tmp_path / "soup"))
    assert processor.keep_aspect_ratio is True
    logits = model(torch.rand(1, 3, 40, 56)).logits
    assert logits.shape == (1, 1, 40, 56) and torch.isfinite(logits).all()


def test_training_checkpoints_are_compared_by_their_own_config_or_their_runs_best(tmp_path, capsys):
    _checkpoint(tmp_path / "a" / "best", 0)
    for seed in (1, 2):  # checkpoints written before they carried a config.json: their run's best/ describes them
        _checkpoint(tmp_path / "a" / f"checkpoint-{seed}", seed, with_config=False)
    members = [str(tmp_path / "a" / "checkpoint-1"), str(tmp_path / "a" / "checkpoint-2")]
    assert main([str(tmp_path / "soup"), *members]) == 0
    assert "the average of 2 checkpoints" in capsys.readouterr().out
    for name in ("config.json", "preprocessor_config.json"):  # copied from the first checkpoint's run's best/
        assert (tmp_path / "soup" / name).read_bytes() == (tmp_path / "a" / "best" / name).read_bytes()
    # A checkpoint's own config.json (training writes one) is compared too: same tensors, another network.
    config = json.loads((tmp_path / "a" / "best" / "config.json").read_text())
    (tmp_path / "a" / "checkpoint-2" / "config.json").write_text(json.dumps({**config, "upsampling": "bilinear"}))
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "soup2"), *members])
    assert exit_info.value.code == 2 and re.search(
        r"checkpoint-2/config.json differs .* in upsampling", capsys.readouterr().err
    )
    assert not (tmp_path / "soup2").exists()


def test_checkpoints_that_no_config_describes_are_averaged_only_when_the_user_vouches_for_them(tmp_path, capsys):
    _checkpoint(tmp_path / "a_best", 0)
    for name, seed in (("a_ckpt", 1), ("b_ckpt", 2)):
        _checkpoint(tmp_path / name, seed, with_config=False)  # no config beside them, no run's best/
    args = [str(tmp_path / "soup"), str(tmp_path / "a_ckpt"), str(tmp_path / "b_ckpt")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and "has no config.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--config-from", str(tmp_path / "a_best")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no config.json describes" in err and "a_ckpt" in err and "b_ckpt" in err
    assert "--assume-same-architecture" in err and not (tmp_path / "soup").exists()
    assert main([*args, "--config-from", str(tmp_path / "a_best"), "--assume-same-architecture"]) == 0
    written = json.loads((tmp_path / "soup" / "config.json").read_text())
    assert written == json.loads((tmp_path / "a_best" / "config.json").read_text())


def test_a_checkpoint_given_twice_or_copied_is_refused_by_name(tmp_path):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed)
    weights = tmp_path / "c0" / "model.safetensors"
    for members in ([tmp_path / "c0", tmp_path / "c0"], [tmp_path / "c0", tmp_path / "c1", weights]):
        with pytest.raises(ValueError, match=rf"checkpoint {re.escape(str(weights))} is given twice"):
            average_checkpoints(members, tmp_path / "soup")
    shutil.copytree(tmp_path / "c0", tmp_path / "copy")
    with pytest.raises(ValueError, match=r"copy/model.safetensors is a copy of .*c0/model.safetensors"):
        average_checkpoints([tmp_path / "c0", tmp_path / "c1", tmp_path / "copy"], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_non_finite_weights_are_refused_naming_the_file_and_tensor(tmp_path):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed)
    state = load_file(str(tmp_path / "c1" / "model.safetensors"))
    name = next(key for key, tensor in state.items() if tensor.is_floating_point())
    state[name][0] = float("nan")
    save_file(state, str(tmp_path / "c1" / "model.safetensors"))
    with pytest.raises(ValueError, match=rf"c1/model.safetensors: tensor {re.escape(name)} holds NaN or infinite"):
        average_checkpoints([tmp_path / "c0", tmp_path / "c1"], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("config.json", "[1, 2]", "must be a mapping"),
        ("config.json", "{bad", "Expecting property name"),
        ("config.json", '{"upsampling": "cubic"}', "upsampling must be one of"),
        ("preprocessor_config.json", "{bad", "Expecting property name"),
    ],
)
def test_a_bad_config_from_is_named(tmp_path, capsys, name, content, message):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed)
    _checkpoint(tmp_path / "source", 0)
    (tmp_path / "source" / name).write_text(content)
    args = [
        str(tmp_path / "soup"),
        str(tmp_path / "c0"),
        str(tmp_path / "c1"),
        "--config-from",
        str(tmp_path / "source"),
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"source/{name} is not a valid carseg {name}" in err and message in err


def test_checkpoints_of_other_models_are_refused_by_name(tmp_path):
    _checkpoint(tmp_path / "a", 0)
    other = CarSegForSemanticSegmentation(tiny_config(center_channels=8))
    other.save_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match=r"b/config.json differs .* in center_channels"):
        average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    (tmp_path / "b" / "config.json").unlink()  # vouched for, but its tensors still tell
    with pytest.raises(ValueError, match=r"tensor .* is \(8"):
        average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "soup", assume_same_architecture=True)
    state = load_file(str(tmp_path / "a" / "model.safetensors"))
    save_file({k: v for k, v in list(state.items())[1:]}, str(tmp_path / "fewer.safetensors"))
    with pytest.raises(ValueError, match="holds other tensors"):
        average_state_dicts([tmp_path / "a" / "model.safetensors", tmp_path / "fewer.safetensors"])
    with pytest.raises(ValueError, match="at least two"):
        average_state_dicts([tmp_path / "a" / "model.safetensors"])
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        average_checkpoints([tmp_path / "a", tmp_path / "missing"], tmp_path / "soup")
    assert not (tmp_path / "soup").exists() or not any((tmp_path / "soup").iterdir())


def test_a_run_of_another_loss_averages_with_the_model_it_started_from(tmp_path):
    """A run's best/ adds the remote-code map and may set a loss weight: the network is the same, so it averages."""
    _checkpoint(tmp_path / "base", 0)
    _checkpoint(tmp_path / "run", 1)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config.update(auto_map={"AutoConfig": "configuration_carseg.CarSegConfig"}, boundary_loss_weight=4.0)
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    average_checkpoints([tmp_path / "base", tmp_path / "run"], tmp_path / "soup")
    assert json.loads((tmp_path / "soup" / "config.json").read_text()).get("boundary_loss_weight", 0.0) == 0.0
    config["upsampling"] = "bilinear"  # same tensors, another network
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"differs .* in upsampling"):
        average_checkpoints([tmp_path / "base", tmp_path / "run"], tmp_path / "soup2")


def test_out_is_never_a_checkpoint_being_averaged_nor_an_existing_model_without_overwrite(tmp_path):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed)
    members = [tmp_path / "c0", tmp_path / "c1"]
    before = (tmp_path / "c0" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="is one of the checkpoints being averaged"):
        average_checkpoints(members, tmp_path / "c0", overwrite=True)
    assert (tmp_path / "c0" / "model.safetensors").read_bytes() == before
    average_checkpoints(members, tmp_path / "soup")
    with pytest.raises(ValueError, match=r"already holds model.safetensors; name a new folder, or pass --overwrite"):
        average_checkpoints(members, tmp_path / "soup")
    average_checkpoints(members, tmp_path / "soup", overwrite=True)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        average_checkpoints(members, tmp_path / "afile")
    with pytest.raises(ValueError, match="which is a file; expected a folder"):
        average_checkpoints(members, tmp_path / "afile" / "soup")


def test_out_is_never_a_training_checkpoint_even_with_overwrite(tmp_path):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed)
    old = tmp_path / "run" / "checkpoint-4"
    _checkpoint(old, 3, with_config=False)
    for name in ("optimizer.safetensors", "trainer_state.json", "rng_state_0.json"):
        (old / name).write_text("{}")
    before = {path.name: path.read_bytes() for path in old.iterdir()}
    with pytest.raises(ValueError, match=r"is a training checkpoint \(it holds optimizer.safetensors, rng_state_0"):
        average_checkpoints([tmp_path / "c0", tmp_path / "c1"], old, overwrite=True)
    assert {path.name: path.read_bytes() for path in old.iterdir()} == before


def test_checkpoints_that_do_not_fit_the_named_config_are_refused_before_writing(tmp_path):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed, with_config=False)  # no config describes them: vouched for below
    other = tmp_path / "other"
    CarSegForSemanticSegmentation(tiny_config(encoder_channels=(4, 8, 16, 32))).save_pretrained(other)
    with pytest.raises(ValueError, match=r"do not fit the network of .*other/config.json"):
        average_checkpoints(
            [tmp_path / "c0", tmp_path / "c1"], tmp_path / "soup", config_from=other, assume_same_architecture=True
        )
    assert not (tmp_path / "soup").exists()
    (tmp_path / "c1" / "model.safetensors").write_bytes(b"\x00" * 16)  # a broken copy
    with pytest.raises(ValueError, match=r"c1/model.safetensors is not a readable safetensors file"):
        average_checkpoints(
            [tmp_path / "c0", tmp_path / "c1"], tmp_path / "soup", config_from=other, assume_same_architecture=True
        )
