"""`--resolution-scale-range`: training frames resized by a factor drawn per image and epoch, then cropped."""

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.training import TrainingArguments, main, parse_args
from carseg_hf.training.augment import JointAugmentation, sample_seed
from carseg_hf.training.augmentation_config import AugmentationConfig
from carseg_hf.training.data_pipeline import SegmentationTransform
from carseg_hf.training.option_fields import parse_scale_range, scaled_resolution
from tests.tiny_training import make_tiny_carvana, tiny_training_argv

SIZE = {"height": 40, "width": 60}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_tiny_carvana(tmp_path_factory)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[str, str]:
    """A 120x80 photo whose left half is car, with its mask."""
    folder = tmp_path_factory.mktemp("pair")
    image = np.zeros((80, 120, 3), np.uint8)
    image[:, :60] = 200
    mask = np.zeros((80, 120), np.uint8)
    mask[:, :60] = 1
    Image.fromarray(image).save(folder / "car.png")
    Image.fromarray(mask * 255).save(folder / "car_mask.png")
    return str(folder / "car.png"), str(folder / "car_mask.png")


def transform(scale_range, augmentation=True, epoch=0, seed=3) -> SegmentationTransform:
    joint = JointAugmentation(AugmentationConfig.disabled()) if augmentation else None
    epochs = torch.tensor([epoch], dtype=torch.int64)
    return SegmentationTransform(CarSegImageProcessor(), SIZE, joint, seed, epochs, scale_range)


def shapes(tf: SegmentationTransform, pair, count: int = 12) -> list[tuple[int, int]]:
    batch = {"image": [pair[0]] * count, "mask": [pair[1]] * count, "sample_index": list(range(count))}
    out = tf(batch)
    for image, mask in zip(out["pixel_values"], out["labels"]):
        assert image.shape[-2:] == mask.shape and image.dtype == torch.uint8 and set(mask.unique().tolist()) <= {0, 1}
    return [tuple(image.shape[-2:]) for image in out["pixel_values"]]


def test_parse_scale_range_accepts_ordered_positive_pairs():
    assert parse_scale_range("1.0,1.5") == (1.0, 1.5)
    assert parse_scale_range("0.8,0.8") == (0.8, 0.8)
    for bad in ("1.5,1.0", "0,1", "-1,2", "1", "a,b", "1,2,3", "1,inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="LOW"):
            parse_scale_range(bad)


def test_scaled_sizes_stay_in_range_are_reproducible_and_change_with_the_epoch(pair):
    low, high = 0.75, 1.5
    first = shapes(transform((low, high)), pair)
    assert shapes(transform((low, high)), pair) == first  # same seed, epoch and index: same sizes
    assert len(set(first)) > 3  # the factor is drawn per image
    for height, width in first:
        assert round(40 * low) <= height <= round(40 * high) and round(60 * low) <= width <= round(60 * high)
        assert abs(width / height - 1.5) < 0.05  # one factor for both sides
    assert shapes(transform((low, high), epoch=1), pair) != first


def test_the_mask_follows_the_scaled_image(pair):
    tf = transform((2.0, 2.0))
    out = tf({"image": [pair[0]], "mask": [pair[1]], "sample_index": [0]})
    image, mask = out["pixel_values"][0], out["labels"][0]
    assert tuple(mask.shape) == (80, 120)  # 40x60 times 2
    assert mask[:, :58].all() and not mask[:, 62:].any()
    assert (image[:, mask.bool()] > 150).all()


def test_without_a_range_or_without_augmentation_frames_keep_the_resolution(pair):
    assert set(shapes(transform(None), pair)) == {(40, 60)}
    assert set(shapes(transform((0.5, 2.0), augmentation=False), pair)) == {(40, 60)}  # validation


def test_the_factor_is_drawn_apart_from_the_augmentation():
    tf = transform((0.5, 2.0))
    sizes = [tf.sample_size(40, 60, sample_seed(3, 0, index))["height"] for index in range(40)]
    torch_draws = []
    for index in range(40):
        torch.manual_seed(sample_seed(3, 0, index))
        torch_draws.append(float(torch.rand(1)))
    assert abs(np.corrcoef(sizes, torch_draws)[0, 1]) < 0.6


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resolution-scale-range", "1.0,1.5"], "needs --random-crop"),
        (["--resolution", "64x96", "--random-crop", "48x64", "--resolution-scale-range", "0.5,1.0"], "smallest"),
        (["--resolution-scale-range", "2,1"], "LOW"),
    ],
)
def test_bad_ranges_are_refused_with_the_reason(extra, message, data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_args(["--data-dir", str(data_dir), "--output-dir", str(tmp_path / "o"), *extra])
    assert excinfo.value.code == 2 and message in capsys.readouterr().err


def test_scaled_resolution_rounds_each_side():
    assert scaled_resolution((640, 960), 1.2) == (768, 1152)
    assert scaled_resolution((3, 5), 0.1) == (1, 1)


def test_training_with_a_scale_range_runs_end_to_end(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    extra = ["--random-crop", "32x32", "--resolution-scale-range", "0.75,1.5", "--max-train-steps", "3"]
    torch.set_num_threads(1)
    args = parse_args(tiny_training_argv(data_dir, output_dir, *extra))
    assert isinstance(args, TrainingArguments) and args.resolution_scale_range == (0.75, 1.5)
    results = main(args)
    assert results["global_step"] == 3 and 0.0 <= results["best_validation_dice"] <= 1.0
    processor = CarSegImageProcessor.from_pretrained(output_dir / "best")
    assert processor.size == {"height": 48, "width": 64}  # the model is saved for --resolution, not a scaled size
    CarSegForSemanticSegmentation.from_pretrained(output_dir / "best")
