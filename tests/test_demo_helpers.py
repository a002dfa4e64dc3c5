"""Unit tests of the demo's helpers and of its event handler, called directly (no server)."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
import torch
from demo_files import (
    box_mask,
    write_empty,
    write_image_variant,
    write_jpeg,
    write_mask,
    write_not_an_image,
    write_png_header_only,
    write_truncated_jpeg,
)
from PIL import Image

from carseg_hf.demo import helpers
from carseg_hf.demo.helpers import DemoInputError
from carseg_hf.image_io import load_mask, load_rgb
from carseg_hf.inference import SegmentationResult, Segmenter
from carseg_hf.metrics import dice_score, iou_score
from carseg_hf.overlay import FN_COLOR, FP_COLOR, TP_COLOR
from carseg_hf.rle import rle_decode
from carseg_hf.zoom import CropBox


def _blend(value: int, color: tuple[int, int, int], alpha: float) -> np.ndarray:
    return np.clip((1 - alpha) * value + alpha * np.asarray(color, np.float64) + 0.5, 0, 255).astype(np.uint8)


# --- reading uploads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writer", "suffix", "expected"),
    [
        (write_empty, ".jpg", r"empty \(0 bytes\)"),
        (write_not_an_image, ".jpg", "not a readable image"),
        (write_truncated_jpeg, ".jpg", "corrupt or truncated"),
    ],
)
def test_read_upload_refuses_bad_files_with_their_name(tmp_path, writer, suffix, expected):
    path = writer(tmp_path / f"upload{suffix}")
    with pytest.raises(DemoInputError, match=expected) as info:
        helpers.read_upload(path)
    message = str(info.value)
    assert message.startswith("Image upload.jpg")
    assert str(tmp_path) not in message  # the temporary upload folder is not shown


def test_read_upload_refuses_oversized_image_from_its_header(tmp_path):
    path = write_png_header_only(tmp_path / "huge.png", 8000, 8000)  # 64 MP claimed, 100 bytes on disk
    start = time.perf_counter()
    with pytest.raises(DemoInputError, match=r"8000x8000 = 64,000,000 pixels, over the limit of 16,777,216"):
        helpers.read_upload(path)
    assert time.perf_counter() - start < 1.0  # refused from the header, not decoded


def test_read_upload_without_upload():
    with pytest.raises(DemoInputError, match="Upload a car photo"):
        helpers.read_upload(None)


@pytest.mark.parametrize(("kind", "suffix"), [("gray", ".png"), ("rgba", ".png"), ("cmyk", ".jpg"), ("16bit", ".png")])
def test_read_upload_modes_become_rgb(tmp_path, kind, suffix):
    image = helpers.read_upload(write_image_variant(tmp_path / f"in{suffix}", kind))
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8


def test_read_upload_applies_exif_orientation(tmp_path):
    image = helpers.read_upload(write_image_variant(tmp_path / "rotated.jpg", "exif", height=40, width=60))
    assert image.shape == (60, 40, 3)


@pytest.mark.parametrize("encoding", ["palette", "png255", "png01"])
def test_read_ground_truth_formats(tmp_path, encoding):
    mask = box_mask()
    suffix = ".gif" if encoding == "palette" else ".png"
    path = write_mask(tmp_path / f"gt{suffix}", mask, encoding)
    read = helpers.read_ground_truth(path, (40, 60, 3))
    assert read.dtype == np.uint8 and np.array_equal(read, mask)


def test_read_ground_truth_size_mismatch(tmp_path):
    path = write_mask(tmp_path / "gt.png", box_mask(30, 60), "png255")
    with pytest.raises(DemoInputError, match=r"'gt.png' is 60x30 \(width x height\) but the image is 60x40"):
        helpers.read_ground_truth(path, (40, 60, 3))


def test_read_ground_truth_ambiguous_and_missing(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.tile(np.arange(60, dtype=np.uint8) * 4, (40, 1))).save(gray)
    with pytest.raises(DemoInputError, match="Ground-truth mask .*ambiguous mask values"):
        helpers.read_ground_truth(gray, (40, 60))
    assert helpers.read_ground_truth(None, (40, 60)) is None


def test_check_native_size():
    helpers.check_native_size((100, 100, 3), max_native_pixels=10_000)
    with pytest.raises(DemoInputError, match="Choose the processor resolution"):
        helpers.check_native_size((100, 101, 3), max_native_pixels=10_000)


# --- pictures -------------------------------------------------------------------------------------------------


def test_slider_pair_tints_only_the_car():
    image = np.full((4, 5, 3), 100, np.uint8)
    mask = np.zeros((4, 5), np.uint8)
    mask[1, 2] = 1
    original, overlay = helpers.slider_pair(image, mask)
    assert np.array_equal(np.asarray(original), image)
    overlay = np.asarray(overlay)
    assert np.array_equal(overlay[1, 2], _blend(100, helpers.OVERLAY_COLOR, helpers.OVERLAY_ALPHA))
    assert np.array_equal(overlay[0, 0], [100, 100, 100])


def test_error_map_colours_at_known_pixels():
    image = np.full((2, 2, 3), 100, np.uint8)
    pred = np.array([[1, 1], [0, 0]], np.uint8)
    target = np.array([[0, 1], [1, 0]], np.uint8)
    errors = np.asarray(helpers.error_map(image, pred, target))
    alpha = helpers.ERROR_ALPHA
    assert np.array_equal(errors[0, 0], _blend(100, FP_COLOR, alpha))  # predicted, not car: red
    assert np.array_equal(errors[0, 1], _blend(100, TP_COLOR, alpha))  # predicted car: green
    assert np.array_equal(errors[1, 0], _blend(100, FN_COLOR, alpha))  # missed car: blue
    assert np.array_equal(errors[1, 1], [100, 100, 100])  # background: unchanged
    assert (
        errors[0, 0, 0] > errors[0, 0, 1] and errors[0, 1, 1] > errors[0, 1, 0] and errors[1, 0, 2] > errors[1, 0, 0]
    )


def test_legend_uses_overlay_colours():
    legend = helpers.error_legend_html()
    for color, label in ((FP_COLOR, "false positive"), (TP_COLOR, "true positive"), (FN_COLOR, "false negative")):
        assert f"rgb({color[0]},{color[1]},{color[2]})" in legend and label in legend
    # The markup of an entry, built by carseg_hf.overlay.legend_swatch_html with the demo's inline styles.
    assert legend.startswith(
        '<div class="carseg-legend"><span style="display:inline-flex;align-items:center;gap:4px;margin-right:14px">'
        '<span style="width:14px;height:14px;border-radius:3px;background:rgb(255,0,0);display:inline-block"></span>'
        "false positive</span>"
    )
    assert legend.endswith("false negative</span></div>") and legend.count("<span") == 6


# --- numbers and files ---------------------------------------------------------------------------------------


def test_metrics_rows_match_carseg_metrics():
    rng = np.random.default_rng(1)
    pred = (rng.random((30, 40)) > 0.5).astype(np.uint8)
    target = (rng.random((30, 40)) > 0.4).astype(np.uint8)
    (row,) = helpers.metrics_rows(pred, target)
    rows = dict(zip(helpers.METRICS_HEADERS, row))
    assert rows["dice"] == pytest.approx(dice_score(pred, target), abs=1e-6)
    assert rows["IoU"] == pytest.approx(iou_score(pred, target), abs=1e-6)
    assert rows["FP px"] == int(((pred == 1) & (target == 0)).sum())
    assert rows["FN px"] == int(((pred == 0) & (target == 1)).sum())
    assert rows["TP px"] == int(((pred == 1) & (target == 1)).sum())


def test_rle_string_round_trips():
    mask = box_mask()
    assert np.array_equal(rle_decode(helpers.rle_string(mask), mask.shape), mask)
    assert helpers.rle_string(np.zeros((3, 3), np.uint8)) == ""


def test_write_mask_png_is_0_255(tmp_path):
    mask = box_mask()
    path = helpers.write_mask_png(mask, tmp_path, "/uploads/My car (1).jpg")
    assert path.name == "My_car_1_mask.png" and path.parent == tmp_path
    assert helpers.write_mask_png(mask, tmp_path, "/uploads/ünï cödé 日本.jpg").name == "ünï_cödé_日本_mask.png"
    assert helpers.write_mask_png(mask, tmp_path, "/uploads/.jpg").name == "jpg_mask.png"  # never a hidden file
    assert helpers.write_mask_png(mask, tmp_path, "/uploads/..jpg").name == "car_mask.png"
    assert set(np.unique(np.asarray(Image.open(path)))) == {0, 255}
    assert np.array_equal(load_mask(path), mask)


def test_request_dirs_are_unique_and_previews_are_jpeg(tmp_path):
    first, second = helpers.request_dir(tmp_path), helpers.request_dir(tmp_path)
    assert first != second and first.parent == second.parent == tmp_path
    path = helpers.write_preview(Image.fromarray(np.full((4, 6, 3), 90, np.uint8)), first, "photo")
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (6, 4)


def test_prune_scratch_removes_only_old_entries(tmp_path):
    old = helpers.request_dir(tmp_path)
    new = helpers.request_dir(tmp_path)
    helpers.write_mask_png(box_mask(), old)
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert helpers.prune_scratch(tmp_path, max_age_s=600) == 1
    assert not old.exists() and new.exists()


def test_a_removed_scratch_folder_is_recreated(tmp_path):
    scratch = tmp_path / "scratch"  # as if a temp-folder cleaner deleted it under a running server
    assert helpers.prune_scratch(scratch) == 0
    folder = helpers.request_dir(scratch)
    assert folder.is_dir() and folder.parent == scratch


def _age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_prune_upload_leftovers_removes_only_old_empty_tmp_files(tmp_path):
    old_empty = tmp_path / "tmpold"
    old_empty.touch()
    _age(old_empty, 120)
    young_empty = tmp_path / "tmpyoung"
    young_empty.touch()  # an upload that has just started
    old_full = tmp_path / "tmpfull"
    old_full.write_bytes(b"data")
    _age(old_full, 120)
    hashed = tmp_path / "0a1b2c"
    hashed.mkdir()
    (hashed / "car.jpg").touch()
    _age(hashed / "car.jpg", 120)
    assert helpers.prune_upload_leftovers(tmp_path, min_age_s=60) == 1
    assert not old_empty.exists() and young_empty.exists() and old_full.exists() and (hashed / "car.jpg").exists()
    assert helpers.prune_upload_leftovers(tmp_path / "missing") == 0


def test_temp_cleaner_prunes_on_its_timer_and_deletes_everything_at_stop(tmp_path):
    scratch, cache = tmp_path / "scratch", tmp_path / "gradio"
    cache.mkdir()
    cleaner = helpers.TempCleaner(scratch, cache, every_s=0.05, max_age_s=600)
    old, new = helpers.request_dir(scratch), helpers.request_dir(scratch)
    _age(old, 3600)
    leftover = cache / "tmpabc"
    leftover.touch()
    _age(leftover, 3600)
    cleaner.start()
    deadline = time.time() + 10
    while (old.exists() or leftover.exists()) and time.time() < deadline:
        time.sleep(0.05)
    assert not old.exists() and not leftover.exists() and new.exists()  # pruned by the timer, not by a request
    cleaner.stop()
    assert not scratch.exists()
    with pytest.raises(ValueError, match="every_s"):
        helpers.TempCleaner(scratch, cache, every_s=0, max_age_s=1)


def test_photo_preview_shows_the_upright_photo_or_nothing(tmp_path):
    exif = write_image_variant(tmp_path / "car.jpg", "exif", 40, 60)  # stored 60 wide, displayed 40 wide
    preview = helpers.photo_preview(str(exif))
    assert preview.mode == "RGB" and preview.size == load_rgb(str(exif)).shape[1::-1] == (40, 60)
    big = write_jpeg(tmp_path / "big.jpg", 1200, 1600)
    assert max(helpers.photo_preview(str(big), max_side=640).size) == 640
    assert helpers.photo_preview(None) is None
    assert helpers.photo_preview(str(write_not_an_image(tmp_path / "notes.jpg"))) is None  # segment reports it


def test_preview_event_writes_the_photo_for_the_page(tmp_path):
    from carseg_hf.demo.app import make_preview_fn

    preview = make_preview_fn(tmp_path / "scratch")
    path = preview(str(write_jpeg(tmp_path / "car.jpg", 40, 60, seed=3)))
    assert path.endswith(".jpg") and load_rgb(path).shape == (40, 60, 3)
    assert preview(None) is None


def test_the_welcome_text_says_that_uploading_runs_the_model():
    assert "segmented at once" in helpers.WELCOME_TEXT
    assert not helpers.WELCOME_TEXT.startswith("Upload a photo, then press")


def test_find_examples(tmp_path):
    assert helpers.find_examples(tmp_path / "missing") == []
    assert helpers.find_examples(tmp_path) == []
    write_jpeg(tmp_path / "abc123_01.jpg")
    write_mask(tmp_path / "abc123_01_mask.png", box_mask(), "png255")
    write_jpeg(tmp_path / "abc123_02.jpg")
    write_mask(tmp_path / "abc123_02_mask.png", box_mask(), "png255")
    write_not_an_image(tmp_path / "README.txt")
    rows = helpers.find_examples(tmp_path)
    assert [os.path.basename(image) for image, _ in rows] == ["abc123_01.jpg", "abc123_02.jpg"]
    assert rows[0][1].endswith("abc123_01_mask.png")


def test_timing_text():
    result = SegmentationResult(
        mask=box_mask(),
        probabilities=np.zeros((40, 60), np.float32),
        seconds=0.0123,
        device="cpu",
        input_size=(64, 96),
    )
    text = helpers.timing_text(result, tta=True, threshold=0.5)
    assert "12 ms" in text and "`cpu`" in text and "image 60×40" in text and "96×64" in text and "TTA on" in text
    assert "zoom off" in text
    assert "zoom: first pass kept" in helpers.timing_text(result, tta=False, threshold=0.5, zoom=True)
    result.zoom_box = CropBox(top=2, bottom=34, left=5, right=53)
    assert "zoom: 48×32 crop segmented again" in helpers.timing_text(result, tta=False, threshold=0.5, zoom=True)
    result.zoom_box, result.zoom_out_size = None, (64, 32)
    text = helpers.timing_text(result, tta=False, threshold=0.5, zoom=True)
    assert "zoom: segmented again at 32×64 (the car runs off both sides of a tall frame)" in text
    result.close_up_size = (32, 64)
    text = helpers.timing_text(result, tta=False, threshold=0.5, zoom=True)
    assert "zoom: segmented again at 64×32 (a close-up: the car is larger than the frame)" in text


# --- the helper modules and the page's layout ------------------------------------------------------------------


def test_helpers_re_exports_every_public_name_of_the_concern_modules():
    import ast
    import inspect

    from carseg_hf.demo import examples, outputs, scratch_files, uploads

    for module in (examples, outputs, scratch_files, uploads):
        tree = ast.parse(inspect.getsource(module))
        defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        defined += [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
        public = [name for name in defined if not name.startswith("_")]
        assert public, module.__name__
        for name in public:
            assert name in helpers.__all__, f"{module.__name__}.{name}"
            assert getattr(helpers, name) is getattr(module, name), f"{module.__name__}.{name}"
    assert len(helpers.__all__) == len(set(helpers.__all__))


def test_read_request_checks_the_settings_then_reads_the_uploads(tmp_path):
    from carseg_hf.demo.app import read_request

    image_path = str(write_jpeg(tmp_path / "car.jpg"))
    gt = str(write_mask(tmp_path / "car_mask.gif", box_mask(), "palette"))
    image, target, threshold, native = read_request(image_path, gt, "0.3", "native")
    assert image.shape == (40, 60, 3) and np.array_equal(target, box_mask())
    assert threshold == 0.3 and isinstance(threshold, float) and native is True
    _, target, _, native = read_request(image_path, None, 0.5, "processor")
    assert target is None and native is False
    with pytest.raises(DemoInputError, match="resolution must be one of"):
        read_request(image_path, None, 0.5, "huge")
    with pytest.raises(DemoInputError, match="strictly between 0 and 1, got 0.0"):
        read_request(image_path, None, 0.0, "processor")
    for bad in (None, "abc", [0.5]):  # what an API client may send: a specific message, not a Python error
        with pytest.raises(DemoInputError, match=f"strictly between 0 and 1, got {re.escape(repr(bad))}"):
            read_request(image_path, None, bad, "processor")
    with pytest.raises(DemoInputError, match="native-size inference is limited to 100 pixels"):
        read_request(image_path, None, 0.5, "native", max_native_pixels=100)
    read_request(image_path, None, 0.5, "processor", max_native_pixels=100)  # the limit is for native size only
    with pytest.raises(DemoInputError, match="Upload a car photo first"):
        read_request(None, None, 0.5, "processor")


def test_page_outputs_write_the_files_and_score_only_with_a_ground_truth(tmp_path):
    from carseg_hf.demo.app import page_outputs

    image = np.full((40, 60, 3), 90, np.uint8)
    result = SegmentationResult(
        mask=box_mask(), probabilities=np.zeros((40, 60), np.float32), seconds=0.02, device="cpu", input_size=(64, 96)
    )
    (before, after), mask_png, rle, info, metrics, errors = page_outputs(
        image, None, result, "/uploads/My car.jpg", False, 0.5, tmp_path
    )
    assert mask_png.endswith("My_car_mask.png") and np.array_equal(load_mask(mask_png), box_mask())
    assert load_rgb(before).shape == load_rgb(after).shape == (40, 60, 3)
    assert np.array_equal(rle_decode(rle, (40, 60)), box_mask())
    assert "TTA off" in info and "threshold 0.50" in info and metrics == [] and errors is None
    *_, metrics, errors = page_outputs(image, box_mask(), result, "car.jpg", True, 0.5, tmp_path)
    assert dict(zip(helpers.METRICS_HEADERS, metrics[0]))["dice"] == 1.0 and load_rgb(errors).shape == (40, 60, 3)


def test_layout_builders_group_the_components_in_the_handler_order():
    import gradio as gr

    from carseg_hf.demo.layout import input_column, output_column, wire_events

    with gr.Blocks():
        with gr.Row():
            inputs = input_column(0.4, {"height": 64, "width": 96}, [])
            outputs = output_column()
        wire_events(inputs, outputs, lambda *args: None, lambda path: None)
    assert inputs.examples is None and inputs.threshold.value == 0.4
    kinds = [gr.File, gr.File, gr.Slider, gr.Checkbox, gr.Radio, gr.Checkbox]
    assert [type(c) for c in inputs.segment_inputs()] == kinds
    assert inputs.segment_inputs()[5] is inputs.zoom and inputs.zoom.value is True  # zoom is on by default
    assert inputs.segment_inputs()[0] is inputs.image_file and inputs.segment_inputs()[1] is inputs.mask_file
    assert ("processor 96×64", "processor") in inputs.resolution.choices
    with gr.Blocks():
        kept = input_column(0.4, {"height": 64, "width": 96}, [], keep_aspect_ratio=True)
    assert ("processor 96×64, aspect kept", "processor") in kept.resolution.choices
    assert [type(c) for c in outputs.segment_outputs()] == [
        gr.ImageSlider,
        gr.File,
        gr.Textbox,
        gr.Markdown,
        gr.Dataframe,
        gr.Image,
    ]
    assert outputs.info.value == helpers.WELCOME_TEXT


# --- the event handler, without a server ---------------------------------------------------------------------


@pytest.fixture
def segment_fn(tiny_model, tiny_processor, tmp_path):
    from carseg_hf.demo.app import make_segment_fn

    torch.set_num_threads(1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return make_segment_fn(Segmenter(tiny_model, tiny_processor), scratch, max_pixels=1_000_000)


@pytest.mark.parametrize(
    ("kind", "suffix", "shape"),
    [("gray", ".png", (40, 60)), ("rgba", ".png", (40, 60)), ("cmyk", ".jpg", (40, 60)), ("16bit", ".png", (40, 60))]
    + [("exif", ".jpg", (60, 40))],
)
def test_segment_handles_image_kinds(segment_fn, tmp_path, kind, suffix, shape):
    path = write_image_variant(tmp_path / f"car{suffix}", kind)
    (original, overlay), mask_png, rle, info, metrics, errors = segment_fn(str(path), None, 0.5, False, "processor")
    mask = load_mask(mask_png)
    assert mask.shape == shape and load_rgb(original).shape == load_rgb(overlay).shape == (*shape, 3)
    assert np.array_equal(rle_decode(rle, shape), mask)
    assert metrics == [] and errors is None and "ms" in info


def test_segment_with_ground_truth(segment_fn, tmp_path):
    image = write_jpeg(tmp_path / "car.jpg")
    gt = write_mask(tmp_path / "car_mask.gif", box_mask(), "palette")
    _, mask_png, _, _, metrics, errors = segment_fn(str(image), str(gt), 0.4, True, "native")
    pred = load_mask(mask_png)
    scores = dict(zip(helpers.METRICS_HEADERS, metrics[0]))
    assert scores["dice"] == pytest.approx(dice_score(pred, box_mask()), abs=1e-6)
    assert load_rgb(errors).shape == (40, 60, 3)


def test_segment_errors_become_gradio_errors(segment_fn, tmp_path):
    import gradio as gr

    image = write_jpeg(tmp_path / "car.jpg")
    with pytest.raises(gr.Error, match="strictly between 0 and 1"):
        segment_fn(str(image), None, 1.0, False, "processor")
    with pytest.raises(gr.Error, match="resolution must be one of"):
        segment_fn(str(image), None, 0.5, False, "huge")
    with pytest.raises(gr.Error, match="over the limit of 1,000,000"):
        segment_fn(str(write_png_header_only(tmp_path / "big.png", 2000, 1000)), None, 0.5, False, "processor")
    segment_fn(str(image), None, 0.5, False, "processor")  # still works afterwards


def test_missing_model_folder_gives_startup_error(tmp_path):
    from carseg_hf.demo.app import build_demo

    with pytest.raises(FileNotFoundError, match="CARSEG_MODEL"):
        build_demo(str(tmp_path / "no-such-model"), device="cpu")


# --- `carseg demo` -------------------------------------------------------------------------------------------


def _demo_parser():
    import argparse

    from carseg_hf.commands import demo as demo_command

    parser = argparse.ArgumentParser(prog="carseg")
    demo_command.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_demo_command_defaults_to_localhost_and_honours_gradio_port(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = _demo_parser().parse_args(["demo"])
    assert (args.host, args.port, args.share, args.model, args.device) == ("127.0.0.1", 7860, "no", None, "auto")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    args = _demo_parser().parse_args(["demo", "--model", "some/folder"])
    assert args.port == 7999 and args.model == "some/folder"
    assert _demo_parser().parse_args(["demo", "--port", "8001"]).port == 8001


def test_demo_command_refuses_bad_values_and_missing_model(tmp_path):
    parser = _demo_parser()
    args = parser.parse_args(["demo", "--port", "70000"])
    with pytest.raises(ValueError, match="--port must lie in"):
        args.func(args)
    args = parser.parse_args(["demo", "--model", str(tmp_path / "missing"), "--device", "cpu"])
    with pytest.raises(FileNotFoundError, match="cannot start the demo"):
        args.func(args)
