import pytest
import torch

from carseg_hf.training.augment import JointAugmentation, build_augmentation, sample_seed
from carseg_hf.training.augmentation_config import AugmentationConfig

GEOMETRY_ONLY = AugmentationConfig(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def white_rectangle(height: int = 96, width: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    mask = torch.zeros(height, width, dtype=torch.uint8)
    image[:, 30:70, 40:100] = 255
    mask[30:70, 40:100] = 1
    return image, mask


@pytest.mark.parametrize("seed", range(8))
def test_affine_keeps_image_and_mask_aligned(seed):
    image, mask = white_rectangle()
    out_image, out_mask = JointAugmentation(GEOMETRY_ONLY)(image, mask, seed=seed)
    assert out_image.shape == image.shape and out_image.dtype == torch.uint8
    assert out_mask.shape == mask.shape and out_mask.dtype == torch.uint8
    gray = out_image.float().mean(dim=0)  # (height, width)
    # Clearly inside the augmented rectangle: car; clearly outside: background. Only the one-pixel rim where
    # bilinear (image) and nearest (mask) sampling differ may disagree.
    assert bool((out_mask[gray > 200] == 1).all())
    assert bool((out_mask[gray < 55] == 0).all())
    disagreement = ((gray > 127).to(torch.uint8) != out_mask).float().mean().item()
    assert disagreement < 0.01


def test_affine_actually_moves_the_shape():
    image, mask = white_rectangle()
    augment = JointAugmentation(GEOMETRY_ONLY)
    moved = [not torch.equal(augment(image, mask, seed=seed)[1], mask) for seed in range(8)]
    assert sum(moved) >= 6


def test_masks_stay_binary_with_every_transform():
    image, mask = white_rectangle()
    augment = JointAugmentation(AugmentationConfig(rotate=30.0, scale=0.3, shift=0.2))
    for seed in range(20):
        _, out_mask = augment(image, mask, seed=seed)
        assert set(torch.unique(out_mask).tolist()) <= {0, 1}


def test_colour_jitter_changes_the_image_only():
    image, mask = white_rectangle()
    image[:, :, :20] = 100  # some mid-grey so that brightness and contrast have something to change
    config = AugmentationConfig(shift=0.0, scale=0.0, rotate=0.0, hflip=0.0, brightness=0.5, contrast=0.5)
    out_image, out_mask = JointAugmentation(config)(image, mask, seed=3)
    assert torch.equal(out_mask, mask)
    assert not torch.equal(out_image, image)


def test_same_seed_same_result_and_seeds_differ_by_epoch():
    image, mask = white_rectangle()
    augment = JointAugmentation(AugmentationConfig())
    first = augment(image, mask, seed=sample_seed(42, 0, 5))
    again = augment(image, mask, seed=sample_seed(42, 0, 5))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert sample_seed(42, 0, 5) != sample_seed(42, 1, 5) != sample_seed(42, 0, 6)


def test_disabled_augmentation_is_identity():
    config = AugmentationConfig(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert build_augmentation(config) is None
    image, mask = white_rectangle()
    out_image, out_mask = JointAugmentation(config)(image, mask, seed=1)
    assert torch.equal(out_image, image) and torch.equal(out_mask, mask)


def test_invalid_strengths_and_inputs_are_refused():
    with pytest.raises(ValueError, match="hflip"):
        build_augmentation(AugmentationConfig(hflip=1.5))
    with pytest.raises(ValueError, match="hue"):
        build_augmentation(AugmentationConfig(hue=0.7))
    image, mask = white_rectangle()
    with pytest.raises(ValueError, match="uint8"):
        JointAugmentation(AugmentationConfig())(image.float(), mask)
    with pytest.raises(ValueError, match="does not match"):
        JointAugmentation(AugmentationConfig())(image, mask[:10])


def test_random_crop_cuts_image_and_mask_at_the_same_place():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    mask = torch.zeros(40, 60, dtype=torch.uint8)
    rows = torch.arange(40).view(40, 1).expand(40, 60)
    image[0] = rows.to(torch.uint8)  # the red channel encodes the row
    mask[rows % 2 == 1] = 1  # odd rows are "car"
    augment = JointAugmentation(AugmentationConfig(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, crop=(16, 24)))
    out_image, out_mask = augment(image, mask, seed=3)
    assert out_image.shape == (3, 16, 24) and out_mask.shape == (16, 24)
    assert torch.equal(out_mask, (out_image[0] % 2).to(torch.uint8))
    again, _ = augment(image, mask, seed=3)
    assert torch.equal(again, out_image)


def test_crop_larger_than_positive_sides_is_refused():
    with pytest.raises(ValueError, match="crop"):
        AugmentationConfig(crop=(0, 8)).validate()
