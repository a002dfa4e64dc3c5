import json

import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModelForSemanticSegmentation, pipeline

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
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
