"""Training resizes as inference does: a processor that keeps the aspect ratio keeps it in training too.

Frames of different sizes are padded to the batch's largest (or to the random crop) with pixels labelled
`PAD_LABEL`, which the loss and the validation dice skip.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.image_io import load_mask
from carseg_hf.overlay import save_mask_gif
from carseg_hf.training import main, parse_args
from carseg_hf.training.augment import PAD_LABEL, JointAugmentation
from carseg_hf.training.augmentation_config import AugmentationConfig
from carseg_hf.training.data_pipeline import SegmentationTransform, pad_collate
from carseg_hf.training.validation import evaluate
from tests.conftest import tiny_config
from tests.fixture import make_carvana_fixture

BUDGET = {"height": 64, "width": 96}


def portrait_pair(folder: Path) -> tuple[str, str]:
    """A 120x80 (height x width) photo whose top half is car, with its mask."""
    image = np.zeros((120, 80, 3), np.uint8)
    image[:60] = 220
    mask = np.zeros((120, 80), np.uint8)
    mask[:60] = 1
    Image.fromarray(image).save(folder / "portrait.png")
    save_mask_gif(mask, folder / "portrait_mask.gif")
    return str(folder / "portrait.png"), str(folder / "portrait_mask.gif")


@pytest.mark.parametrize(("keep", "expected"), [(True, (96, 64)), (False, (64, 96))])
def test_training_frames_follow_the_processors_resize(keep, expected, tmp_path):
    processor = CarSegImageProcessor(size=BUDGET, keep_aspect_ratio=keep)
    assert tuple(processor.resized_size(120, 80).values()) == expected
    image, mask = portrait_pair(tmp_path)
    for augmentation in (None, JointAugmentation(AugmentationConfig.disabled())):  # validation, then training
        out = SegmentationTransform(processor, BUDGET, augmentation)({"image": [image], "mask": [mask]})
        assert tuple(out["pixel_values"][0].shape) == (3, *expected) and tuple(out["labels"][0].shape) == expected
        labels = out["labels"][0]
        assert labels[: expected[0] // 2 - 1].all() and not labels[expected[0] // 2 + 1 :].any()


def test_pad_collate_stacks_equal_frames_and_pads_others_with_the_ignored_label():
    a = {"pixel_values": torch.full((3, 4, 6), 7, dtype=torch.uint8), "labels": torch.ones((4, 6), dtype=torch.uint8)}
    b = {"pixel_values": torch.full((3, 6, 4), 9, dtype=torch.uint8), "labels": torch.zeros((6, 4), dtype=torch.uint8)}
    same = pad_collate([a, a])
    assert torch.equal(same["pixel_values"], torch.stack([a["pixel_values"]] * 2))
    assert torch.equal(same["labels"], torch.stack([a["labels"]] * 2))
    mixed = pad_collate([a, b])
    assert tuple(mixed["pixel_values"].shape) == (2, 3, 6, 6) and tuple(mixed["labels"].shape) == (2, 6, 6)
    assert (mixed["pixel_values"][0, :, :4, :6] == 7).all() and (mixed["pixel_values"][0, :, 4:] == 0).all()
    assert (mixed["labels"][0, :4, :6] == 1).all() and (mixed["labels"][0, 4:] == PAD_LABEL).all()
    assert (mixed["labels"][1, :, :4] == 0).all() and (mixed["labels"][1, :, 4:] == PAD_LABEL).all()


def test_a_frame_smaller_than_the_crop_is_padded_with_the_ignored_label():
    augmentation = JointAugmentation(AugmentationConfig.disabled(crop=(64, 64)))
    image = torch.full((3, 40, 60), 200, dtype=torch.uint8)
    mask = torch.ones((40, 60), dtype=torch.uint8)
    out_image, out_mask = augmentation(image, mask, seed=0)
    assert tuple(out_image.shape) == (3, 64, 64) and tuple(out_mask.shape) == (64, 64)
    assert int((out_mask == 1).sum()) == 40 * 60 and int((out_mask == PAD_LABEL).sum()) == 64 * 64 - 40 * 60
    assert ((out_image == 200).all(dim=0) == (out_mask == 1)).all()  # the pixels move with their labels


def test_validation_dice_skips_the_padding():
    """An all-car network scores each frame by its own pixels whether it is padded in a batch or not."""
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(tiny_config()).eval()
    with torch.no_grad():
        model.unet.head.weight.zero_()
        model.unet.head.bias.fill_(10.0)  # every logit +10: all car, whatever the context
    processor = CarSegImageProcessor(size=BUDGET)
    wide = {"pixel_values": torch.zeros((3, 32, 64), dtype=torch.uint8), "labels": torch.zeros((32, 64)).byte()}
    tall = {"pixel_values": torch.zeros((3, 64, 32), dtype=torch.uint8), "labels": torch.zeros((64, 32)).byte()}
    wide["labels"][:, :32], tall["labels"][:16] = 1, 1  # dice 2/3 and 2/5 for an all-car mask
    accelerator = Accelerator(cpu=True)
    padded = evaluate(model, [pad_collate([wide, tall])], processor, accelerator)
    alone = evaluate(model, [pad_collate([wide]), pad_collate([tall])], processor, accelerator)
    assert padded == pytest.approx(alone) == pytest.approx((2 / 3 + 2 / 5) / 2)


def mixed_aspect_fixture(root: Path) -> Path:
    """3 cars x 4 views at 64x48 (width x height); the first car's photos and masks turned to portrait."""
    data = make_carvana_fixture(root, num_cars=3, angles=4, size=(64, 48), num_test=0, write_csv=False)
    first = sorted((data / "train").glob("*.jpg"))[0].stem.rsplit("_", 1)[0]
    for photo in sorted((data / "train").glob(f"{first}_*.jpg")):
        Image.open(photo).transpose(Image.Transpose.TRANSPOSE).save(photo, quality=95)
        mask_path = data / "train_masks" / f"{photo.stem}_mask.gif"
        save_mask_gif(load_mask(mask_path).T, mask_path)
    return data


@pytest.mark.parametrize("crop", [None, "32x32"])
def test_fine_tuning_a_keep_aspect_model_on_mixed_frames_runs_end_to_end(crop, tmp_path):
    data = mixed_aspect_fixture(tmp_path / "data")
    torch.manual_seed(0)
    base = tmp_path / "base"
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(base)
    CarSegImageProcessor(size={"height": 48, "width": 64}, keep_aspect_ratio=True).save_pretrained(base)
    argv = ["--data-dir", str(data), "--output-dir", str(tmp_path / "run"), "--model-name-or-path", str(base)]
    argv += ["--resolution", "48x64", "--validation-fraction", "0.34", "--train-batch-size", "4"]
    argv += ["--eval-batch-size", "4", "--dataloader-num-workers", "0", "--max-train-steps", "2"]
    argv += ["--random-crop", crop] if crop else []
    torch.set_num_threads(1)
    results = main(parse_args(argv))
    assert results["global_step"] == 2 and 0.0 < results["best_validation_dice"] <= 1.0
    processor = CarSegImageProcessor.from_pretrained(tmp_path / "run" / "best")
    assert processor.keep_aspect_ratio and processor.size == {"height": 48, "width": 64}
