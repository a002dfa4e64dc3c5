"""`keep_aspect_ratio`: portrait and square photos keep their shape on the way into the network, everywhere."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor, CarSegImageProcessorPil
from carseg_hf.data import load_carvana
from carseg_hf.evaluation import evaluate_model
from carseg_hf.image_io import load_mask
from carseg_hf.inference import Segmenter
from carseg_hf.predict import BatchPredictor, PredictOptions
from carseg_hf.registration import register_auto_classes
from carseg_hf.sizes import aspect_preserving_size
from tests.conftest import tiny_config
from tests.fixture import make_carvana_fixture

#: (height, width) of the test images: landscape at the processor's own 2:3, portrait 2:1, square, wide 1:3.
SHAPES = [(128, 192), (128, 64), (96, 96), (60, 180)]


@pytest.mark.parametrize(
    ("image", "expected"),
    [((4032, 3024), (896, 672)), ((3024, 4032), (672, 896)), ((1080, 1920), (576, 1056)), ((1280, 1280), (768, 768))],
)
def test_aspect_preserving_size_keeps_shape_and_pixel_count(image, expected):
    height, width = aspect_preserving_size(*image, (640, 960))
    assert (height, width) == expected
    assert height % 32 == 0 and width % 32 == 0
    assert abs(math.log((height / width) / (image[0] / image[1]))) < 0.1
    assert 0.9 < height * width / (640 * 960) < 1.1


def test_aspect_preserving_size_returns_the_target_for_its_own_shape():
    assert aspect_preserving_size(1280, 1918, (640, 960)) == (640, 960)  # a Carvana photo: 0.1% off 2:3
    assert aspect_preserving_size(320, 480, (640, 960)) == (640, 960)
    assert aspect_preserving_size(1280, 1800, (640, 960)) != (640, 960)  # 6% off: its own shape


def test_aspect_preserving_size_bounds_degenerate_strips_and_checks_sizes():
    assert aspect_preserving_size(1, 30_000_000, (640, 960)) == (32, 19200)  # 640 * 960 / 32 pixels wide at most
    assert aspect_preserving_size(30_000_000, 1, (640, 960)) == (19200, 32)
    with pytest.raises(ValueError, match="sizes must be positive"):
        aspect_preserving_size(0, 10, (640, 960))


@pytest.mark.parametrize("processor_class", [CarSegImageProcessor, CarSegImageProcessorPil])
def test_processor_resizes_each_image_to_its_own_shape(processor_class):
    processor = processor_class(size={"height": 64, "width": 96}, keep_aspect_ratio=True)
    for height, width in SHAPES:
        image = np.random.default_rng(height + width).integers(0, 256, (height, width, 3), dtype=np.uint8)
        mask = (np.arange(height * width).reshape(height, width) % 3 == 0).astype(np.uint8)
        batch = processor(image, masks=mask)
        expected = processor.resized_size(height, width)
        assert tuple(batch["pixel_values"].shape) == (1, 3, expected["height"], expected["width"])
        assert tuple(batch["labels"].shape) == (1, expected["height"], expected["width"])
        squashed = processor(image, keep_aspect_ratio=False)["pixel_values"]
        assert tuple(squashed.shape) == (1, 3, 64, 96)
        if (height, width) == (128, 192):
            assert torch.equal(batch["pixel_values"], squashed)  # the processor's own shape: the same input
    with pytest.raises(ValueError, match="keep_aspect_ratio and different aspect ratios"):
        processor([np.zeros((128, 64, 3), np.uint8), np.zeros((96, 96, 3), np.uint8)])


def test_keep_aspect_ratio_is_saved_and_old_configs_load_without_it(tmp_path):
    processor = CarSegImageProcessor(size={"height": 64, "width": 96}, keep_aspect_ratio=True, ensure_multiple_of=16)
    processor.save_pretrained(tmp_path)
    loaded = CarSegImageProcessor.from_pretrained(tmp_path)
    assert (loaded.keep_aspect_ratio, loaded.ensure_multiple_of) == (True, 16)
    old = {
        key: value
        for key, value in processor.to_dict().items()
        if key not in ("keep_aspect_ratio", "ensure_multiple_of")
    }
    assert CarSegImageProcessor.from_dict(old).keep_aspect_ratio is False
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="ensure_multiple_of must be a positive integer"):
            CarSegImageProcessor(ensure_multiple_of=bad)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A Carvana-layout fixture, and a folder of its test views cropped to other aspect ratios."""
    root = make_carvana_fixture(
        tmp_path_factory.mktemp("fixture"), num_cars=1, angles=4, size=(192, 128), num_test=2, write_csv=False
    )
    shapes = root / "shapes"
    shapes.mkdir()
    photo = np.asarray(Image.open(sorted((root / "test").glob("*.jpg"))[0]))
    for height, width in SHAPES:
        Image.fromarray(photo[:height, :width]).save(shapes / f"crop_{height}x{width}.png")
    return root


@pytest.fixture(scope="module")
def model_and_processor() -> tuple[CarSegForSemanticSegmentation, CarSegImageProcessor]:
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(tiny_config()).eval()
    with torch.no_grad():
        model.unet.head.bias.fill_(0.05)  # both classes in the masks
    return model, CarSegImageProcessor(size={"height": 64, "width": 96}, keep_aspect_ratio=True)


def _record_input_shapes(model: torch.nn.Module) -> list[tuple[int, int]]:
    """Record the (height, width) of every batch the model sees (a forward pre-hook, not a replacement)."""
    shapes: list[tuple[int, int]] = []

    def record(_: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        pixel_values = args[0] if args else kwargs["pixel_values"]
        shapes.append(tuple(pixel_values.shape[-2:]))

    model.register_forward_pre_hook(record, with_kwargs=True)
    return shapes


def test_segmenter_feeds_the_kept_shape_and_answers_at_the_image_size(model_and_processor, dataset):
    model, processor = model_and_processor
    segmenter = Segmenter(copy.deepcopy(model), processor, "cpu", channels_last=False, fold_batchnorm=False)
    for path in sorted((dataset / "shapes").glob("*.png")):
        height, width = np.asarray(Image.open(path)).shape[:2]
        result = segmenter.segment(str(path))
        expected = processor.resized_size(height, width)
        assert result.input_size == (expected["height"], expected["width"])
        assert result.mask.shape == (height, width)


@pytest.mark.parametrize("decode", ["processor", "tensor"])
def test_batch_predictor_feeds_each_image_its_kept_shape(model_and_processor, dataset, tmp_path, decode):
    model, processor = model_and_processor
    network = copy.deepcopy(model)
    seen = _record_input_shapes(network)
    options = PredictOptions(out_dir=tmp_path / "masks", batch_size=4, workers=1, progress=False, decode=decode)
    summary = BatchPredictor(network, processor, "cpu", options).run([dataset / "shapes"])
    assert (summary.processed, summary.failed) == (len(SHAPES), [])
    expected = {tuple(processor.resized_size(h, w).values()) for h, w in SHAPES}
    assert set(seen) == expected and len(seen) == len(expected)  # one forward pass per input size
    segmenter = Segmenter(copy.deepcopy(model), processor, "cpu", channels_last=False, fold_batchnorm=False)
    for path in sorted((dataset / "shapes").glob("*.png")):
        ours = load_mask(tmp_path / "masks" / f"{path.stem}.png")
        assert (ours == segmenter.segment(str(path)).mask).mean() >= 0.999, path.name


def test_a_rerun_with_the_aspect_ratio_switched_is_refused(model_and_processor, dataset, tmp_path):
    from carseg_hf.predict_record import SettingsChangedError

    model, processor = model_and_processor
    squashing = CarSegImageProcessor.from_dict({**processor.to_dict(), "keep_aspect_ratio": False})
    options = PredictOptions(out_dir=tmp_path / "masks", workers=1, progress=False)
    BatchPredictor(copy.deepcopy(model), squashing, "cpu", options).run([dataset / "shapes"])
    before = {path: path.read_bytes() for path in (tmp_path / "masks").iterdir()}
    with pytest.raises(SettingsChangedError, match="keep_aspect_ratio"):
        BatchPredictor(copy.deepcopy(model), processor, "cpu", options).run([dataset / "shapes"])
    assert {path: path.read_bytes() for path in (tmp_path / "masks").iterdir()} == before


def test_pipeline_batches_give_the_masks_of_single_images(model_and_processor, dataset, tmp_path):
    from transformers import pipeline

    register_auto_classes()
    model, processor = model_and_processor
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    segmenter = pipeline("image-segmentation", model=str(tmp_path / "model"), device="cpu")
    paths = [str(path) for path in sorted((dataset / "shapes").glob("*.png"))]
    one_by_one = [segmenter(path) for path in paths]
    batched = segmenter(paths, batch_size=len(paths))
    for path, single, batch in zip(paths, one_by_one, batched):
        assert [r["label"] for r in single] == [r["label"] for r in batch]
        for a, b in zip(single, batch):
            assert a["mask"].size == Image.open(path).size
            assert np.array_equal(np.asarray(a["mask"]), np.asarray(b["mask"]))


@pytest.mark.filterwarnings("ignore:only 1 car")
def test_evaluation_groups_images_by_input_size(model_and_processor, dataset, tmp_path):
    model, processor = model_and_processor
    for path in sorted((dataset / "train").glob("*.jpg"))[:2]:  # portrait crops of two training views
        mask_path = dataset / "train_masks" / f"{path.stem}_mask.gif"
        Image.open(path).crop((0, 0, 64, 128)).save(path)
        Image.open(mask_path).crop((0, 0, 64, 128)).save(mask_path)
    network = copy.deepcopy(model)
    seen = _record_input_shapes(network)
    data = load_carvana(str(dataset))["train"]
    summary = evaluate_model(network, processor, data, tmp_path / "eval", batch_size=8, worst=1, progress=False)
    assert summary["count"] == len(data) and not summary["skipped"]
    assert sorted(set(seen)) == [(64, 96), (96, 64)]
