import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModelForSemanticSegmentation, pipeline

from carseg_hf import (
    CarSegConfig,
    CarSegForSemanticSegmentation,
    CarSegImageProcessor,
    CarSegImageProcessorPil,
    ImageDecodeError,
)
from carseg_hf.loading import bundled_model_dir
from tests.remote_code import check_remote_code_load


def _save(tmp_path, model, processor):
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    return tmp_path


def test_auto_classes_resolve(tmp_path, tiny_model, tiny_processor):
    folder = _save(tmp_path, tiny_model, tiny_processor)
    assert isinstance(AutoConfig.from_pretrained(folder), CarSegConfig)
    assert isinstance(AutoModelForSemanticSegmentation.from_pretrained(folder), CarSegForSemanticSegmentation)
    assert isinstance(AutoImageProcessor.from_pretrained(folder), CarSegImageProcessor)
    assert isinstance(AutoModelForSemanticSegmentation.from_config(CarSegConfig()), CarSegForSemanticSegmentation)


def test_saved_folder_has_safetensors_code_and_auto_map(tmp_path, tiny_model, tiny_processor):
    folder = _save(tmp_path, tiny_model, tiny_processor)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "modeling_carseg.py"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSemanticSegmentation"] == "modeling_carseg.CarSegForSemanticSegmentation"
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor["auto_map"]["AutoImageProcessor"] == "image_processing_carseg.CarSegImageProcessor"


def test_pipeline_mask_equals_thresholded_model_output(tmp_path, tiny_model, tiny_processor):
    torch.manual_seed(0)
    # Give the head a bias so that both classes appear.
    with torch.no_grad():
        tiny_model.unet.head.bias.fill_(0.05)
    folder = _save(tmp_path, tiny_model, tiny_processor)
    image = Image.fromarray((np.random.default_rng(0).random((45, 70, 3)) * 255).astype(np.uint8))
    segmenter = pipeline("image-segmentation", model=str(folder))
    results = segmenter(image)
    car = [r for r in results if r["label"] == "car"]
    assert len(car) == 1
    mask = np.asarray(car[0]["mask"])
    assert mask.shape == (45, 70)
    with torch.no_grad():
        logits = tiny_model(tiny_processor(image)["pixel_values"]).logits
    expected = tiny_processor.post_process_semantic_segmentation(logits, target_sizes=[(45, 70)])[0].numpy()
    assert 0 < expected.sum() < expected.size
    assert np.array_equal(mask == 255, expected == 1)


def test_trust_remote_code_without_carseg_hf(tmp_path, tiny_model, tiny_processor):
    folder = _save(tmp_path / "model", tiny_model, tiny_processor)
    x = torch.randn(1, 3, 30, 41)
    with torch.no_grad():
        expected = tiny_model(x).logits
    check_remote_code_load(str(folder), tmp_path, x, expected, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))


def _biased_model_folder(folder, model, processor):
    """Save `model` with a small head bias, so that both classes appear in its masks."""
    with torch.no_grad():
        model.unet.head.bias.fill_(0.05)
    return _save(folder, model, processor)


def _car_mask(results) -> np.ndarray | None:
    """The pipeline's `car` mask as bool, or None when no pixel is car."""
    car = [r for r in results if r["label"] == "car"]
    return np.asarray(car[0]["mask"]) == 255 if car else None


def _expected_mask(model, processor, image, threshold=None) -> np.ndarray:
    """What the processor and the model give for `image` (any input the processor reads), as bool."""
    with torch.no_grad():
        logits = model(processor(image)["pixel_values"]).logits
    size = processor.load_image(image).shape[:2]
    return processor.post_process_semantic_segmentation(logits, [size], threshold=threshold)[0].numpy() == 1


def test_pipeline_reads_a_16_bit_greyscale_png_as_the_processor_does(tmp_path, tiny_model, tiny_processor):
    folder = _biased_model_folder(tmp_path / "model", tiny_model, tiny_processor)
    path = tmp_path / "grey16.png"
    Image.fromarray(np.linspace(0, 65535, 45 * 70).reshape(45, 70).astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")  # a 16-bit greyscale PNG
    expected = _expected_mask(tiny_model, tiny_processor, str(path))
    assert np.array_equal(_car_mask(pipeline("image-segmentation", model=str(folder))(str(path))), expected)
    saturated = _expected_mask(tiny_model, tiny_processor, np.full((45, 70, 3), 255, np.uint8))
    assert not np.array_equal(expected, saturated)  # what decoding it as white (transformers' load_image) gives


def test_pipeline_honours_and_checks_threshold(tmp_path, tiny_model, tiny_processor):
    folder = _biased_model_folder(tmp_path / "model", tiny_model, tiny_processor)
    image = Image.fromarray((np.random.default_rng(0).random((45, 70, 3)) * 255).astype(np.uint8))
    segmenter = pipeline("image-segmentation", model=str(folder))
    masks = {}
    for threshold in (0.4, 0.6):
        masks[threshold] = _car_mask(segmenter(image, threshold=threshold))
        assert np.array_equal(masks[threshold], _expected_mask(tiny_model, tiny_processor, image, threshold))
    assert masks[0.4].sum() > masks[0.6].sum()
    for bad in (float("nan"), -1, 2, 0, "abc", None):
        with pytest.raises(ValueError, match="threshold must be a probability strictly between 0 and 1"):
            segmenter(image, threshold=bad)


def test_pipeline_enforces_the_pixel_limit_and_names_the_file(tmp_path, tiny_model):
    processor = CarSegImageProcessor(size={"height": 64, "width": 96}, max_pixels=1000)
    folder = _biased_model_folder(tmp_path / "model", tiny_model, processor)
    segmenter = pipeline("image-segmentation", model=str(folder), image_processor=processor)
    big = tmp_path / "big.png"
    Image.new("RGB", (40, 40)).save(big)  # 1,600 pixels
    with pytest.raises(ImageDecodeError, match=r"big\.png.*1,600 pixels, over the limit of 1,000"):
        segmenter(str(big))
    with pytest.raises(ImageDecodeError, match=r"PIL image .*1,600 pixels, over the limit of 1,000"):
        segmenter(Image.new("RGB", (40, 40)))
    broken = tmp_path / "broken.png"
    broken.write_bytes(big.read_bytes()[:60])  # a truncated PNG
    with pytest.raises(ImageDecodeError, match=r"broken\.png"):
        segmenter(str(broken))
    small = tmp_path / "small.png"
    Image.new("RGB", (30, 20), (200, 30, 30)).save(small)  # 600 pixels: under the limit
    assert {r["mask"].size for r in segmenter(str(small))} == {(30, 20)}


@pytest.mark.parametrize("name", ["carseg-lite0", "carseg-synth"])
def test_auto_image_processor_gives_torch_by_default_and_pil_on_request(name):
    folder = bundled_model_dir(name)  # saved without auto_map, as `image_processor_type: CarSegImageProcessor`
    default = AutoImageProcessor.from_pretrained(folder)
    pil = AutoImageProcessor.from_pretrained(folder, backend="pil")
    assert type(default) is CarSegImageProcessor and type(pil) is CarSegImageProcessorPil
    assert type(AutoImageProcessor.from_pretrained(folder, backend="torchvision")) is CarSegImageProcessor
    assert default.to_dict() == pil.to_dict()
    saved = json.loads((folder / "preprocessor_config.json").read_text())
    assert default.size == saved["size"] and pil.image_mean == saved["image_mean"]


def test_a_folder_saved_from_the_pil_backend_loads_either(tmp_path, tiny_model):
    folder = _save(tmp_path, tiny_model, CarSegImageProcessorPil(size={"height": 64, "width": 96}))
    saved = json.loads((folder / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "CarSegImageProcessor"
    assert saved["auto_map"]["AutoImageProcessor"] == "image_processing_pil_carseg.CarSegImageProcessorPil"
    names = {p.name for p in folder.iterdir()}
    assert {"image_processing_pil_carseg.py", "image_processing_base_carseg.py", "image_io.py"} <= names
    assert type(AutoImageProcessor.from_pretrained(folder)) is CarSegImageProcessor
    assert type(AutoImageProcessor.from_pretrained(folder, backend="pil")) is CarSegImageProcessorPil


def test_remote_code_of_the_torch_processor_includes_the_shared_base(tmp_path, tiny_model, tiny_processor):
    names = {p.name for p in _save(tmp_path, tiny_model, tiny_processor).iterdir()}
    assert {
        "image_processing_carseg.py",
        "image_processing_base_carseg.py",
        "processor_parameters.py",
        "image_io.py",
    } <= names


@pytest.mark.parametrize("processor_class", [CarSegImageProcessor, CarSegImageProcessorPil])
def test_pipeline_works_with_either_backend(tmp_path, tiny_model, processor_class):
    processor = processor_class(size={"height": 64, "width": 96})
    folder = _biased_model_folder(tmp_path / "model", tiny_model, processor)
    image = Image.fromarray((np.random.default_rng(0).random((45, 70, 3)) * 255).astype(np.uint8))
    segmenter = pipeline("image-segmentation", model=str(folder), image_processor=processor)
    assert segmenter.image_processor is processor
    for threshold in (0.4, 0.6):
        expected = _expected_mask(tiny_model, processor, image, threshold)
        assert 0 < expected.sum() < expected.size
        assert np.array_equal(_car_mask(segmenter(image, threshold=threshold)), expected)


def test_pipeline_accepts_carseg_without_touching_transformers_mappings(
    tmp_path, tiny_model, tiny_processor, monkeypatch
):
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES
    from transformers.pipelines import base

    errors = []
    monkeypatch.setattr(base.logger, "error", lambda message, *args, **kwargs: errors.append(str(message)))
    segmenter = pipeline("image-segmentation", model=str(_save(tmp_path, tiny_model, tiny_processor)))
    assert isinstance(segmenter.model, CarSegForSemanticSegmentation)
    assert CarSegConfig.model_type not in MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES
    assert not [e for e in errors if "not supported" in e], errors
    segmenter.check_model_type(["SomethingElse"])  # a registered carseg model passes whatever the list says
    assert not errors
