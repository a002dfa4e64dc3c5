"""`training/average_checkpoints.py`: the uniform weight average of fine-tuned checkpoints."""

from __future__ import annotations

import json

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


def test_training_checkpoints_take_their_config_from_another_folder(tmp_path, capsys):
    _checkpoint(tmp_path / "best", 0)
    for seed in (1, 2):
        _checkpoint(tmp_path / f"checkpoint-{seed}", seed, with_config=False)
    args = [str(tmp_path / "soup"), str(tmp_path / "checkpoint-1"), str(tmp_path / "checkpoint-2")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and "has no config.json" in capsys.readouterr().err
    assert not (tmp_path / "soup" / "model.safetensors").exists()
    assert main([*args, "--config-from", str(tmp_path / "best")]) == 0
    assert "the average of 2 checkpoints" in capsys.readouterr().out
    written = json.loads((tmp_path / "soup" / "config.json").read_text())
    assert written == json.loads((tmp_path / "best" / "config.json").read_text())


def test_checkpoints_of_other_models_are_refused_by_name(tmp_path):
    _checkpoint(tmp_path / "a", 0)
    other = CarSegForSemanticSegmentation(tiny_config(center_channels=8))
    other.save_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match=r"b/config.json differs .* in center_channels"):
        average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    (tmp_path / "b" / "config.json").unlink()
    with pytest.raises(ValueError, match=r"tensor .* is \(8"):
        average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
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


def test_checkpoints_that_do_not_fit_the_named_config_are_refused_before_writing(tmp_path):
    for seed in range(2):
        _checkpoint(tmp_path / f"c{seed}", seed, with_config=False)  # training checkpoints carry no config
    other = tmp_path / "other"
    CarSegForSemanticSegmentation(tiny_config(encoder_channels=(4, 8, 16, 32))).save_pretrained(other)
    with pytest.raises(ValueError, match=r"do not fit the network of .*other/config.json"):
        average_checkpoints([tmp_path / "c0", tmp_path / "c1"], tmp_path / "soup", config_from=other)
    assert not (tmp_path / "soup").exists()
    (tmp_path / "c1" / "model.safetensors").write_bytes(b"\x00" * 16)  # a broken copy
    with pytest.raises(ValueError, match=r"c1/model.safetensors is not a readable safetensors file"):
        average_checkpoints([tmp_path / "c0", tmp_path / "c1"], tmp_path / "soup", config_from=other)
