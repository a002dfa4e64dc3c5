"""The training loss: `boundary_loss_weight` weighs pixels near a mask edge more; padding must stay ignored."""

from pathlib import Path

import pytest
import torch

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.model_card import build_model_card
from carseg_hf.modeling_carseg import bce_dice_loss, boundary_band
from carseg_hf.training import main, parse_args
from tests.tiny_training import make_tiny_carvana, run_tiny_training


def square_labels() -> torch.Tensor:
    """One 16x16 frame whose rows and columns 4 to 11 are car."""
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, 4:12, 4:12] = 1
    return labels


def test_the_band_covers_both_sides_of_each_edge_and_nothing_else():
    band = boundary_band(square_labels(), width=2)
    assert band[0, 8].tolist() == [False] * 2 + [True] * 4 + [False] * 4 + [True] * 4 + [False] * 2
    assert not band[0, 0].any() and not band[0, 8, 7]  # far background and the square's centre
    assert not boundary_band(torch.ones(2, 8, 8, dtype=torch.long), width=3).any()  # no edge, no band


def logit_gradient(boundary_weight: float) -> torch.Tensor:
    logits = torch.zeros(1, 1, 16, 16, requires_grad=True)  # every pixel at probability 0.5
    bce_dice_loss(logits, square_labels(), boundary_weight=boundary_weight, boundary_width=2).backward()
    return logits.grad[0, 0]


def test_a_car_pixel_on_the_edge_pulls_harder_than_one_inside_only_with_a_weight():
    plain, weighted = logit_gradient(0.0), logit_gradient(4.0)
    # (4, 4) lies on the square's corner; (7, 7) is two pixels further in than the band reaches.
    assert torch.isclose(plain[4, 4], plain[7, 7])
    assert weighted[4, 4] < 0 and weighted[7, 7] < 0
    assert (weighted[4, 4] / weighted[7, 7]).item() > 1.5  # the dice term pulls both alike


def test_ignored_pixels_stay_ignored_with_a_weight():
    labels = square_labels()
    labels[:, :, 12:] = 255
    logits = torch.randn(1, 1, 16, 16)
    changed = logits.clone()
    changed[:, :, :, 12:] = 40.0
    before = bce_dice_loss(logits, labels, boundary_weight=3.0)
    after = bce_dice_loss(changed, labels, boundary_weight=3.0)
    assert torch.isclose(before, after)


def test_the_model_reads_the_weight_from_its_config():
    torch.manual_seed(0)
    config = CarSegConfig(encoder_channels=(4, 8), center_channels=8, decoder_convs=1)
    model = CarSegForSemanticSegmentation(config).eval()
    pixels = torch.randn(1, 3, 16, 16)
    plain = model(pixel_values=pixels, labels=square_labels()).loss
    model.config.boundary_loss_weight = 5.0
    weighted = model(pixel_values=pixels, labels=square_labels()).loss
    assert torch.isfinite(weighted) and not torch.isclose(plain, weighted)


@pytest.mark.parametrize(
    "fields",
    [
        {"boundary_loss_weight": -1.0},
        {"boundary_loss_weight": float("inf")},
        {"boundary_loss_weight": float("nan")},
        {"boundary_loss_width": 0},
        {"dice_smooth": float("inf")},
    ],
)
def test_bad_config_values_are_refused(fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        CarSegConfig(**fields)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_tiny_carvana(tmp_path_factory)


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--boundary-loss-weight", "-2"], "--boundary-loss-weight"), (["--boundary-loss-width", "0"], "width")],
)
def test_bad_flags_are_refused_with_the_reason(extra, message, data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_args(["--data-dir", str(data_dir), "--output-dir", str(tmp_path / "o"), *extra])
    assert excinfo.value.code == 2 and message in capsys.readouterr().err


def test_training_with_a_boundary_weight_saves_it_in_the_config(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    extra = ["--max-train-steps", "2", "--boundary-loss-weight", "3", "--boundary-loss-width", "2"]
    results = run_tiny_training(data_dir, output_dir, *extra)
    assert results["global_step"] == 2 and 0.0 <= results["best_validation_dice"] <= 1.0
    config = CarSegConfig.from_pretrained(output_dir / "best")
    assert (config.boundary_loss_weight, config.boundary_loss_width) == (3.0, 2)


def test_a_model_whose_loss_would_count_the_padding_is_refused(data_dir, tmp_path):
    config = CarSegConfig(encoder_channels=(4, 8), center_channels=8, decoder_convs=1, semantic_loss_ignore_index=0)
    CarSegForSemanticSegmentation(config).save_pretrained(tmp_path / "model")
    CarSegImageProcessor().save_pretrained(tmp_path / "model")
    argv = ["--data-dir", str(data_dir), "--output-dir", str(tmp_path / "run"), "--resolution", "48x64"]
    argv += ["--model-name-or-path", str(tmp_path / "model"), "--max-train-steps", "1"]
    with pytest.raises(ValueError, match="semantic_loss_ignore_index is 0.*set semantic_loss_ignore_index to 255"):
        main(parse_args(argv))


def test_the_model_card_states_the_loss_of_the_config():
    plain = build_model_card("org/carseg", CarSegConfig()).text
    weighted = build_model_card("org/carseg", CarSegConfig(boundary_loss_weight=4.0, boundary_loss_width=2)).text
    assert "Loss: binary cross-entropy on the logit plus (1 - soft dice)" in plain and "mask edge" not in plain
    assert "5 times the weight within 2 px of a mask edge" in weighted


def test_the_band_is_the_square_neighbourhood_test_on_random_masks():
    torch.manual_seed(0)
    targets = (torch.rand(3, 40, 56) > 0.7).long()
    for width in (1, 3, 6):
        masks = targets.float()[:, None]
        square = torch.nn.functional.max_pool2d(masks, 2 * width + 1, stride=1, padding=width)
        square_min = -torch.nn.functional.max_pool2d(-masks, 2 * width + 1, stride=1, padding=width)
        assert torch.equal(boundary_band(targets, width), (square != square_min)[:, 0])
