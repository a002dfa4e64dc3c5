"""`carseg evaluate` end to end on the procedural fixture with a tiny saved model, and `evaluate_model` directly."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.cli import main
from carseg_hf.data import load_carvana, read_image, read_mask
from carseg_hf.evaluation import evaluate_model
from carseg_hf.metrics import dice_score
from carseg_hf.overlay import FN_COLOR, FP_COLOR, TP_COLOR
from tests.fixture import make_carvana_fixture


@pytest.fixture(scope="module")
def carvana(tmp_path_factory):
    return make_carvana_fixture(tmp_path_factory.mktemp("carvana"), num_cars=3, angles=3, size=(96, 64), num_test=0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model")
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(path)
    CarSegImageProcessor(size={"height": 32, "width": 48}).save_pretrained(path)
    return path


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("resolution", ["processor", "native"])
def test_cli_writes_all_outputs(carvana, model_dir, tmp_path, resolution):
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(carvana), "--out", str(out), "--split", "all"]
    argv += ["--worst", "2", "--batch-size", "2", "--device", "cpu", "--resolution", resolution, "--no-progress"]
    assert main(argv) == 0
    rows = read_csv(out / "per_image.csv")
    assert list(rows[0]) == ["image", "car_id", "angle", "dice", "iou", "precision", "recall", "fp", "fn"]
    assert len(rows) == 9
    summary = json.loads((out / "summary.json").read_text())
    dice = np.array([float(r["dice"]) for r in rows])
    assert summary["count"] == 9
    assert summary["mean_dice"] == pytest.approx(dice.mean(), abs=1e-6)
    assert summary["dice_percentiles"]["50"] == pytest.approx(np.median(dice), abs=1e-6)
    assert summary["dice_percentiles"]["5"] <= summary["dice_percentiles"]["50"] <= summary["dice_percentiles"]["95"]
    assert all(0.0 <= d <= 1.0 for d in dice)
    assert summary["model"] == str(model_dir) and summary["resolution"] == resolution

    worst = sorted(p.name for p in (out / "worst").iterdir())
    lowest = sorted(rows, key=lambda r: float(r["dice"]))[:2]
    assert worst == sorted(r["image"].replace(".jpg", "_overlay.png") for r in lowest)
    with Image.open(out / "worst" / worst[0]) as overlay:
        assert overlay.size == (96, 64)

    report = (out / "report.html").read_text()
    assert "false positive" in report and "false negative" in report and "rgb(255,0,0)" in report
    assert '<span class="key"><span class="box" style="background:rgb(0,255,0)"></span>true positive</span>' in report
    positions = [report.index(f'alt="{r["image"]}"') for r in sorted(rows, key=lambda r: float(r["dice"]))]
    assert positions == sorted(positions)  # thumbnails sorted by dice ascending
    assert len(list((out / "thumbs").iterdir())) == 9


def test_validation_split_only_has_validation_cars(carvana, model_dir, tmp_path):
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(carvana), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    expected = set(load_carvana(carvana)["validation"]["name"])
    assert {r["image"] for r in read_csv(out / "per_image.csv")} == expected


def test_scores_and_colours_match_an_independent_prediction(carvana, model_dir, tmp_path):
    from carseg_hf.loading import load_model

    model, processor = load_model(str(model_dir))
    with torch.no_grad():
        # The real model; only its output bias is zeroed so that predictions mix car and background.
        head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        head.bias.fill_(0.0)
    dataset = load_carvana(carvana, validation_fraction=0.0)["train"].select([0, 1])
    summary = evaluate_model(model, processor, dataset, tmp_path, worst=2, progress=False, batch_size=2)
    rows = {r["image"]: r for r in read_csv(tmp_path / "per_image.csv")}
    raw = dataset.cast_column("image", datasets.Image(decode=False)).cast_column("mask", datasets.Image(decode=False))
    colours_seen = set()
    for example in raw:
        image, target = read_image(example["image"]), read_mask(example["mask"])
        with torch.no_grad():
            logits = model(**processor(image)).logits
        pred = processor.post_process_semantic_segmentation(logits, target_sizes=[target.shape])[0].numpy()
        assert float(rows[example["name"]]["dice"]) == pytest.approx(dice_score(pred, target), abs=1e-6)
        overlay = np.asarray(Image.open(tmp_path / "worst" / example["name"].replace(".jpg", "_overlay.png")))
        kinds = (
            ((pred == 1) & (target == 0), FP_COLOR),
            ((pred == 1) & (target == 1), TP_COLOR),
            ((pred == 0) & (target == 1), FN_COLOR),
        )
        for where, colour in kinds:
            for y, x in np.argwhere(where)[:5]:
                np.testing.assert_allclose(overlay[y, x], np.round(0.5 * image[y, x] + 0.5 * np.array(colour)), atol=1)
                colours_seen.add(colour)
        background = np.argwhere((pred == 0) & (target == 0))[:5]
        for y, x in background:
            np.testing.assert_array_equal(overlay[y, x], image[y, x])
    assert len(colours_seen) >= 2  # the check above exercised more than one kind of pixel
    assert summary["count"] == 2


def test_empty_split_and_bad_args(carvana, model_dir, tmp_path, capsys):
    single = make_carvana_fixture(tmp_path / "one", num_cars=1, angles=2, size=(64, 48), num_test=0)
    argv = [
        "evaluate",
        "--model",
        str(model_dir),
        "--data",
        str(single),
        "--out",
        str(tmp_path / "e"),
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "carseg evaluate: warning: " in err and "validation split is empty" in err  # the command line's wording
    assert "carseg evaluate: error: " in err and "empty" in err
    assert main(argv[:-1] + ["--threshold", "1.5"]) == 2
    assert "threshold" in capsys.readouterr().err


def test_missing_local_data_folder_is_named(tmp_path, capsys):
    from carseg_hf.cli import main

    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unreadable_images_are_skipped_and_reported(carvana, model_dir, tmp_path, capsys):
    from demo_files import write_png_header_only

    data = Path(shutil.copytree(carvana, tmp_path / "data"))
    bomb, garbage, *_ = sorted((data / "train").glob("*.jpg"))
    write_png_header_only(bomb, 20_000, 10_000)  # 200 MP: PIL's DecompressionBombError
    garbage.write_bytes(b"not an image")
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(data), "--out", str(out), "--split", "all"]
    assert main([*argv, "--no-progress", "--device", "cpu"]) == 1  # as carseg predict: 1 when some were skipped
    error = capsys.readouterr().err
    assert f"{bomb.name}: " in error and "decompression bomb" in error
    assert f"{garbage.name}: not a readable image" in error
    assert len(read_csv(out / "per_image.csv")) == 7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 7 and [entry["image"] for entry in summary["skipped"]] == [bomb.name, garbage.name]


def test_the_default_split_says_what_it_leaves_out(model_dir, tmp_path, capsys):
    examples = Path(__file__).resolve().parents[1] / "carseg_hf" / "examples"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(examples), "--out", str(tmp_path / "e")]
    assert main([*argv, "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "scoring the validation split only: 1 of the 4 images" in out and "--split all" in out
    assert main([*argv, "--no-progress", "--device", "cpu", "--split", "all"]) == 0
    assert "split only" not in capsys.readouterr().out
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["zoom"] is False
    assert main([*argv, "--no-progress", "--device", "cpu", "--split", "all", "--zoom"]) == 0
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["zoom"] is True


def test_summary_fields_worst_order_and_repeated_names(carvana, model_dir, tmp_path):
    model = CarSegForSemanticSegmentation.from_pretrained(model_dir).eval()
    processor = CarSegImageProcessor.from_pretrained(model_dir)
    once = load_carvana(carvana, validation_fraction=0.0)["train"]
    twice = datasets.concatenate_datasets([once, once])  # every name twice: the second copy's files get its index
    summary = evaluate_model(
        model, processor, twice, tmp_path, batch_size=4, worst=3, progress=False, model_name="m", data_name="d"
    )
    assert list(summary) == [
        "mean_dice",
        "dice_percentiles",
        "mean_iou",
        "count",
        "model",
        "data",
        "split",
        "resolution",
        "threshold",
        "tta",
        "zoom",
        "device",
        "seconds",
        "images_per_second",
        "worst",
        "skipped",
    ]
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["count"] == 2 * len(once) and summary["threshold"] == processor.threshold
    assert summary["device"] == "cpu" and summary["tta"] is False and summary["skipped"] == []
    first = Path(once[0]["name"]).stem
    assert (tmp_path / "thumbs" / f"{first}.jpg").is_file()
    assert (tmp_path / "thumbs" / f"{first}_{len(once)}.jpg").is_file()
    assert len(list((tmp_path / "thumbs").iterdir())) == 2 * len(once)
    rows = read_csv(tmp_path / "per_image.csv")
    stems = [Path(r["image"]).stem + ("" if i < len(once) else f"_{i}") for i, r in enumerate(rows)]
    lowest = sorted(range(len(rows)), key=lambda i: (float(rows[i]["dice"]), i))[:3]  # ties: the earlier row first
    assert summary["worst"] == [f"worst/{stems[i]}_overlay.png" for i in lowest]


def test_a_rerun_into_the_same_folder_leaves_only_its_own_overlays_and_thumbnails(carvana, model_dir, tmp_path):
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(carvana), "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--split", "all", "--worst", "5", "--no-progress"]) == 0
    assert len(list((out / "worst").iterdir())) == 5 and len(list((out / "thumbs").iterdir())) == 9
    assert main([*argv, "--split", "validation", "--worst", "1", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(f"worst/{p.name}" for p in (out / "worst").iterdir()) == summary["worst"]
    assert len(list((out / "thumbs").iterdir())) == summary["count"] < 9


def test_a_model_folder_without_its_processor_or_with_foreign_weights_is_refused(model_dir, tmp_path):
    from carseg_hf.loading import load_model

    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / "preprocessor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="lacks preprocessor_config.json; expected a folder written by"):
        load_model(str(bare))
    foreign = tmp_path / "foreign"
    shutil.copytree(model_dir, foreign)
    CarSegForSemanticSegmentation(tiny_config(encoder_channels=(4, 8, 16, 32))).save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", foreign / "model.safetensors")
    with pytest.raises(ValueError, match=r"weights of .*foreign' do not fit its config.json: .*other shapes"):
        load_model(str(foreign))
    CarSegForSemanticSegmentation(tiny_config(decoder_convs=3)).save_pretrained(tmp_path / "deeper")
    shutil.copy(tmp_path / "deeper" / "model.safetensors", foreign / "model.safetensors")
    with pytest.raises(ValueError, match=r"weights of .*foreign' do not fit its config.json: 18 unexpected keys \("):
        load_model(str(foreign))
    weights = (model_dir / "model.safetensors").read_bytes()
    (foreign / "model.safetensors").write_bytes(weights[: len(weights) // 2])  # an interrupted copy
    with pytest.raises(ValueError, match=r"weights file of .*foreign' is not a readable safetensors file"):
        load_model(str(foreign))


def test_the_command_line_words_warnings_and_refuses_files_where_folders_belong(carvana, model_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for image in sorted((carvana / "train").glob("*.jpg"))[:2]:
        shutil.copy(image, pairs / image.name)
        shutil.copy(carvana / "train_masks" / f"{image.stem}_mask.gif", pairs / f"{image.stem}_mask.gif")
    shutil.copy(pairs / f"{image.stem}_mask.gif", pairs / "stray_mask.gif")  # a mask without its image
    argv = ["evaluate", "--model", str(model_dir), "--split", "all", "--device", "cpu", "--no-progress"]
    assert main([*argv, "--data", str(pairs), "--out", str(tmp_path / "eval")]) == 0
    err = capsys.readouterr().err
    assert "carseg evaluate: warning: ignoring 1 mask(s)" in err and "stray_mask.gif" in err
    assert ".py:" not in err and "Loading weights" not in err  # no source line, no progress bar
    (tmp_path / "afile").write_text("")
    assert main([*argv, "--data", str(pairs), "--out", str(tmp_path / "afile")]) == 2
    assert "--out " in (err := capsys.readouterr().err) and "is a file; expected a folder" in err
    assert main([*argv, "--data", str(image), "--out", str(tmp_path / "eval")]) == 2
    assert (
        "--data " in (err := capsys.readouterr().err) and "is a file; expected a folder in the Carvana layout" in err
    )
