import pytest

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation


def test_defaults_are_the_reference_network():
    config = CarSegConfig()
    assert config.encoder_channels == [8, 16, 32, 64, 128, 256, 512]
    assert config.center_channels == 1024
    assert config.decoder_convs == 3
    assert config.norm == "batchnorm" and config.upsampling == "nearest"
    assert config.size_divisor == 128
    assert config.id2label == {0: "background", 1: "car"}


def test_default_parameter_count_is_34_6m():
    model = CarSegForSemanticSegmentation(CarSegConfig())
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 34.6e6) <= 0.1e6, count


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder_channels": ()}, "at least one encoder level"),
        ({"encoder_channels": (8, 0)}, "must all be positive"),
        ({"center_channels": 0}, "center_channels"),
        ({"decoder_convs": 0}, "decoder_convs"),
        ({"norm": "groupnorm"}, "norm must be one of"),
        ({"upsampling": "bicubic"}, "upsampling must be one of"),
        ({"id2label": {0: "a", 1: "b", 2: "c"}}, "2 entries"),
        ({"encoder_name": "resnet34"}, "depth of 1 to 5"),
    ],
)
def test_invalid_values_raise_with_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CarSegConfig(**kwargs)


def test_config_round_trip(tmp_path):
    config = CarSegConfig(encoder_channels=(4, 8), center_channels=8, decoder_convs=1)
    config.save_pretrained(tmp_path)
    loaded = CarSegConfig.from_pretrained(tmp_path)
    assert loaded.encoder_channels == [4, 8] and loaded.center_channels == 8 and loaded.decoder_convs == 1
