"""Tests of `carseg predict`: inputs, outputs, submissions, resume, bad files, and the fast paths.

The fast-path tests take a `device` parameter: they run on the CPU everywhere and on CUDA where there is a GPU
(`tests.conftest.DEVICES`; `benchmarks/gpu_checks.sh` runs them on a lent one).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import json
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor, CarSegImageProcessorPil
from carseg_hf.commands import predict as predict_command
from carseg_hf.commands.predict import parse_resolution
from carseg_hf.gpu_preprocess import decode_jpegs
from carseg_hf.image_io import load_mask, load_rgb
from carseg_hf.inference import Segmenter, predict_logits
from carseg_hf.predict import BatchPredictor, PredictOptions, PredictSummary, expand_inputs
from carseg_hf.predict.async_copy import rle_encode_torch_async
from carseg_hf.predict.items import PipelineItem as _Item
from carseg_hf.rle import rle_decode, rle_encode, rle_encode_torch
from carseg_hf.submission import read_rle_csv
from tests.conftest import DEVICES, fit_tiny_model, tiny_config
from tests.fixture import make_carvana_fixture


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A small Carvana-layout fixture: 8 training views with masks, 4 test views."""
    return make_carvana_fixture(
        tmp_path_factory.mktemp("fixture"), num_cars=1, angles=8, size=(192, 128), num_test=4, write_csv=False
    )


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> tuple[CarSegForSemanticSegmentation, CarSegImageProcessor, Path]:
    """A tiny model fitted for a few seconds on the fixture, so that its logits are confident like a real one's."""
    processor = CarSegImageProcessor(size={"height": 64, "width": 96})
    model = fit_tiny_model(dataset, processor)
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor, folder


def _predictor(trained, device: str = "cpu", **options) -> BatchPredictor:
    model, processor, _ = trained
    options.setdefault("progress", False)
    options.setdefault("workers", 1)
    if device != "cpu":
        model = copy.deepcopy(model)  # BatchPredictor moves the model it is given; keep the shared one on the CPU
    return BatchPredictor(model, processor, device, PredictOptions(**options))


def _outputs(folder: Path) -> list[Path]:
    """The files of an output folder, without its hidden journal (`.carseg-masks.jsonl`, `.carseg-overlays.jsonl`)."""
    return sorted(path for path in folder.iterdir() if not path.name.startswith("."))


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    predict_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["predict", *argv])
    return args.func(args)


def test_expand_inputs_files_folders_globs(dataset, tmp_path):
    train = sorted((dataset / "train").glob("*.jpg"))
    (dataset / "train" / "notes.txt").write_text("not an image")
    found = expand_inputs([str(train[3]), str(dataset / "train"), str(dataset / "test" / "*.jpg"), str(train[0])])
    assert len(found) == len(train) + 4  # deduplicated; the .txt in the folder is not picked up
    assert found == sorted(found, key=str)
    pairs = tmp_path / "pairs"  # an image/mask pair folder, like carseg_hf/examples
    pairs.mkdir()
    for name in ("car_01.jpg", "car_01_mask.png", "lonely_mask.png", "car_02.png", "car_02_mask.gif"):
        Image.new("L", (8, 8)).save(pairs / name)
    assert [p.name for p in expand_inputs([pairs])] == ["car_01.jpg", "car_02.png", "lonely_mask.png"]
    assert len(expand_inputs([str(pairs / "*")])) == 5  # a glob takes what it matches
    assert [p.name for p in expand_inputs([pairs / "car_01_mask.png"])] == ["car_01_mask.png"]  # so does a file
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        expand_inputs([str(tmp_path / "nothing_here" / "*.jpg")])
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        expand_inputs([str(tmp_path / "missing.jpg")])
    with pytest.raises(FileNotFoundError, match="no image files"):
        expand_inputs([str(tmp_path)])


def test_png_and_gif_masks_match_segmenter(trained, dataset, tmp_path):
    model, processor, _ = trained
    summary = _predictor(trained, out_dir=tmp_path / "png", batch_size=3).run([dataset / "test"])
    assert (summary.processed, summary.skipped, summary.failed) == (4, 0, [])
    _predictor(trained, out_dir=tmp_path / "gif", mask_format="gif", batch_size=2).run([dataset / "test"])
    segmenter = Segmenter(
        model.to(memory_format=torch.contiguous_format), processor, "cpu", channels_last=False, fold_batchnorm=False
    )
    for image in sorted((dataset / "test").glob("*.jpg")):
        png = Image.open(tmp_path / "png" / f"{image.stem}.png")
        gif = Image.open(tmp_path / "gif" / f"{image.stem}.gif")
        assert png.mode == "L" and set(np.unique(np.asarray(png))) <= {0, 255}
        assert gif.mode == "P" and set(np.unique(np.asarray(gif))) <= {0, 1}
        expected = segmenter.segment(str(image)).mask  # plain eager fp32, one image at a time
        assert png.size == gif.size == (expected.shape[1], expected.shape[0])
        assert np.array_equal(load_mask(tmp_path / "png" / f"{image.stem}.png"), load_mask(gif))
        agreement = (load_mask(png) == expected).mean()
        assert agreement >= 0.999, f"{image.name}: batch engine agrees with Segmenter on {agreement:.4%}"
        assert 0.02 < expected.mean() < 0.98  # a real mask, not all background


def test_cli_speed_options_keep_the_masks(trained, dataset, tmp_path, capsys):
    common = [str(dataset / "test"), "--model", str(trained[2]), "--no-progress", "--device", "cpu"]
    assert _cli(*common, "--out", str(tmp_path / "fast"), "--profile") == 0  # folded BN, retained allocator memory
    stages = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("stages: "))
    for stage in ("decode", "model", "rle", "write"):
        assert float(stages.split(f"{stage} ")[1].split(" s")[0]) >= 0, stages
    assert _cli(*common, "--out", str(tmp_path / "plain"), "--no-fold-batchnorm", "--allocator", "default") == 0
    for plain in sorted((tmp_path / "plain").glob("*.png")):
        agreement = (load_mask(plain) == load_mask(tmp_path / "fast" / plain.name)).mean()
        assert agreement >= 0.999, f"{plain.name}: {agreement:.4%}"
    assert len(list((tmp_path / "fast").glob("*.png"))) == 4


def test_overlay_shows_the_predicted_car_on_the_photo(trained, dataset, tmp_path, capsys):
    from carseg_hf.overlay import PREDICTION_ALPHA, PREDICTION_COLOR

    common = [str(dataset / "test"), "--model", str(trained[2]), "--no-progress", "--device", "cpu"]
    assert _cli(*common, "--overlay", str(tmp_path / "look"), "--out", str(tmp_path / "masks")) == 0
    assert f"overlays (predicted car tinted) in {tmp_path / 'look'}" in capsys.readouterr().out
    images = sorted((dataset / "test").glob("*.jpg"))
    assert [p.name for p in _outputs(tmp_path / "look")] == [f"{p.stem}_overlay.jpg" for p in images]
    for image in images:
        photo = load_rgb(image).astype(np.float64)
        mask = load_mask(tmp_path / "masks" / f"{image.stem}.png").astype(bool)
        overlay = load_rgb(tmp_path / "look" / f"{image.stem}_overlay.jpg").astype(np.float64)
        assert overlay.shape == photo.shape and 0 < mask.sum() < mask.size
        tinted = (1 - PREDICTION_ALPHA) * photo + PREDICTION_ALPHA * np.array(PREDICTION_COLOR)
        assert np.abs(overlay[mask] - tinted[mask]).mean() < 6  # car pixels are tinted (up to JPEG loss) ...
        assert np.abs(overlay[~mask] - photo[~mask]).mean() < 6  # ... and the background is the photo
    # Overlays alone are an output, and a rerun resumes.
    assert _cli(*common, "--overlay", str(tmp_path / "look")) == 0
    assert "0 segmented, 4 already done" in capsys.readouterr().out


def test_submission_rows_decode_to_written_masks(trained, dataset, tmp_path):
    submission = tmp_path / "sub.csv.gz"
    summary = _predictor(trained, out_dir=tmp_path / "masks", submission=submission, batch_size=3).run(
        [dataset / "test", dataset / "train"]
    )
    assert summary.submission_rows == 12 and not summary.failed
    assert not (tmp_path / "sub.csv.gz.partial").exists()
    with gzip.open(submission, "rt") as handle:
        assert handle.readline().strip() == "img,rle_mask"
    rows = read_rle_csv(submission)
    assert len(rows) == 12
    for name, rle in rows.items():
        mask = load_mask(tmp_path / "masks" / f"{Path(name).stem}.png")
        assert np.array_equal(rle_decode(rle, mask.shape), mask), name
        assert rle == rle_encode(mask)


def test_interrupted_run_leaves_no_partial_files_and_resumes(trained, dataset, tmp_path):
    out, submission = tmp_path / "masks", tmp_path / "sub.csv"
    inputs = [dataset / "train"]

    def interrupt(index: int, count: int) -> None:
        if index == 1:
            raise KeyboardInterrupt("simulated interruption after the second batch")

    with pytest.raises(KeyboardInterrupt):
        _predictor(trained, out_dir=out, submission=submission, batch_size=2).run(inputs, on_batch=interrupt)
    written = _outputs(out)
    assert len(written) == 4 and all(p.suffix == ".png" for p in written)  # two whole batches, no temp files
    for path in written:
        load_mask(path)  # each file decodes completely
    assert not submission.exists()
    journal = tmp_path / "sub.csv.partial"
    assert len(journal.read_text().splitlines()) == 1 + 4
    with open(journal, "a") as handle:
        handle.write("5f82c2d9cfeb_08.jpg,1 2 3")  # a row cut off mid-write, without its newline
    before = {path.name: path.stat().st_mtime_ns for path in written}

    summary = _predictor(trained, out_dir=out, submission=submission, batch_size=2).run(inputs)
    assert (summary.skipped, summary.processed) == (4, 4)
    assert {p.name: p.stat().st_mtime_ns for p in written} == before  # finished masks were not rewritten
    rows = read_rle_csv(submission)
    assert len(rows) == 8 and not journal.exists()
    for name, rle in rows.items():
        assert np.array_equal(rle_decode(rle, (128, 192)), load_mask(out / f"{Path(name).stem}.png")), name

    again = _predictor(trained, out_dir=out, submission=submission, batch_size=2).run(inputs)
    assert (again.skipped, again.processed, again.submission_rows) == (8, 0, 8)


def test_a_failing_batch_still_writes_the_batch_in_flight(trained, dataset, tmp_path):
    out, submission = tmp_path / "masks", tmp_path / "sub.csv"
    predictor = _predictor(trained, out_dir=out, submission=submission, batch_size=2)
    model, calls = predictor.runner, []

    def fails_on_the_third_batch(pixel_values: torch.Tensor) -> object:  # fault injection around the real model
        calls.append(pixel_values.shape[0])
        if len(calls) == 3:
            raise RuntimeError("simulated CUDA out of memory")
        return model(pixel_values)

    predictor.runner = fails_on_the_third_batch
    with pytest.raises(RuntimeError, match="simulated CUDA out of memory"):
        predictor.run([dataset / "train"])
    assert len(calls) == 3
    assert len(list(out.glob("*.png"))) == 4  # batch 2 was still in flight when batch 3 failed: both were written
    assert len((tmp_path / "sub.csv.partial").read_text().splitlines()) == 1 + 4
    summary = _predictor(trained, out_dir=out, submission=submission, batch_size=2).run([dataset / "train"])
    assert (summary.skipped, summary.processed, summary.submission_rows) == (4, 4, 8)


def test_corrupt_input_is_reported_skipped_and_sets_exit_code(trained, dataset, tmp_path, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    for image in sorted((dataset / "test").glob("*.jpg")):
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "masks"
    code = _cli(str(folder), "--model", str(trained[2]), "--out", str(out), "--no-progress", "--device", "cpu")
    assert code == 1
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "empty.png" in captured.err
    assert "4 segmented" in captured.out and "2 failed" in captured.out
    assert [p.name for p in _outputs(out)] == sorted(f"{p.stem}.png" for p in (dataset / "test").glob("*.jpg"))
    code = _cli(str(dataset / "test"), "--model", str(trained[2]), "--out", str(out), "--no-progress")
    assert code == 0
    assert "0 segmented, 4 already done" in capsys.readouterr().out


def test_a_submission_missing_a_failed_photo_is_reported_incomplete(trained, dataset, tmp_path, capsys):
    folder, submission = tmp_path / "inputs", tmp_path / "sub.csv"
    folder.mkdir()
    good = sorted((dataset / "test").glob("*.jpg"))[0]
    (folder / good.name).write_bytes(good.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    argv = [str(folder), "--model", str(trained[2]), "--submission", str(submission), "--no-progress"]
    assert _cli(*argv) == 1
    out = capsys.readouterr().out
    assert f"submission {submission}: 1 rows (1 image(s) missing: the submission is INCOMPLETE" in out, out
    (folder / "broken.jpg").unlink()  # fixed: the rerun reports the submission without the warning
    assert _cli(*argv) == 0
    assert f"submission {submission}: 1 rows\n" in capsys.readouterr().out


def test_submission_names_that_kaggle_would_not_match_are_warned_about_once(trained, dataset, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    photos = sorted((dataset / "test").glob("*.jpg"))
    for photo, suffix in zip(photos, [".JPG", ".jpeg", ".jpg"]):
        (folder / f"{photo.stem}{suffix}").write_bytes(photo.read_bytes())
    argv = [str(folder), "--model", str(trained[2]), "--submission", str(tmp_path / "sub.csv"), "--no-progress"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _cli(*argv, "--batch-size", "1") == 0
    messages = [str(w.message) for w in caught if "does not end in '.jpg'" in str(w.message)]
    assert len(messages) == 1 and f"'{photos[0].stem}.JPG'" in messages[0], messages
    assert "<car_id>_<NN>.jpg" in messages[0]


def test_bf16_on_an_emulating_cpu_warns(trained, dataset, tmp_path, capsys):
    from carseg_hf.device_info import cpu_bf16_is_native

    argv = [str(sorted((dataset / "test").glob("*.jpg"))[0]), "--model", str(trained[2]), "--no-progress"]
    assert _cli(*argv, "--device", "cpu", "--dtype", "bf16", "--out", str(tmp_path / "bf16")) == 0
    err = capsys.readouterr().err
    assert ("bf16 on this CPU" in err and "--dtype fp32" in err) == (not cpu_bf16_is_native())
    assert _cli(*argv, "--device", "cpu", "--out", str(tmp_path / "auto")) == 0  # auto picks fp32: no warning
    assert "bf16 on this CPU" not in capsys.readouterr().err


def test_options_are_checked(trained, dataset):
    with pytest.raises(ValueError, match="nothing to write"):
        _predictor(trained).run([dataset / "test"])
    with pytest.raises(ValueError, match="--submission"):
        _predictor(trained, submission="sub.txt")
    with pytest.raises(ValueError, match="--resolution"):
        parse_resolution("big")
    assert parse_resolution("96x128") == (96, 128)
    assert _predictor(trained, resolution=parse_resolution("processor")).size == (64, 96)
    assert _predictor(trained, resolution=parse_resolution("native")).size is None


@pytest.mark.parametrize("device", DEVICES)
def test_fast_path_matches_eager_fp32(trained, dataset, device):
    """bf16 autocast, channels-last, folded BatchNorm, hflip TTA and (on CUDA) torch.compile against eager fp32."""
    model, processor, _ = trained
    images = [str(p) for p in sorted((dataset / "test").glob("*.jpg"))]
    pixel_values = processor(images)["pixel_values"]  # (4, 3, 64, 96)
    with torch.inference_mode():
        reference = model.to(memory_format=torch.contiguous_format)(pixel_values=pixel_values).logits  # on the CPU
        on_device = pixel_values.to(device)
        fp32 = _predictor(trained, device, channels_last=False, dtype="fp32").forward(on_device).cpu()
        fast = _predictor(trained, device, channels_last=True, dtype="bf16", tta=False).forward(on_device).cpu()
        tta = _predictor(trained, device, channels_last=True, dtype="bf16", tta=True).forward(on_device).cpu()
    if device == "cpu":
        assert torch.equal(fp32 > 0, reference > 0)
    else:  # cuDNN may run fp32 convolutions in TF32
        assert ((fp32 > 0) == (reference > 0)).float().mean() >= 0.999
    assert fast.dtype == torch.float32 and fast.shape == reference.shape
    assert ((fast > 0) == (reference > 0)).float().mean() >= 0.999
    assert ((tta > 0) == (reference > 0)).float().mean() >= 0.99  # TTA may legitimately flip a few pixels
    assert not torch.equal(tta, fast)  # the flipped pass really ran
    if device != "cpu":  # compiling on the CPU is covered by a slow test in test_cpu_speedups.py
        compiled = _predictor(trained, device, dtype="bf16", compile="default", batch_size=4)
        with torch.inference_mode():
            last_batch = compiled.forward(on_device[:3]).cpu()  # padded to the static batch of 4 inside
        assert last_batch.shape == reference[:3].shape
        assert ((last_batch > 0) == (reference[:3] > 0)).float().mean() >= 0.999


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_tta_with_cuda_graphs_keeps_both_passes(trained, dataset):
    """With CUDA graphs (as `--compile max-autotune` uses), the flipped pass must not overwrite the first's logits."""
    from torch._inductor import config as inductor_config

    model, processor, _ = trained
    pixel_values = processor([str(p) for p in sorted((dataset / "test").glob("*.jpg"))])["pixel_values"]
    with torch.inference_mode():
        reference = predict_logits(model.to(memory_format=torch.contiguous_format), pixel_values, tta=True)
    on_device = pixel_values.to("cuda")
    with inductor_config.patch({"triton.cudagraphs": True}):  # max-autotune's CUDA graphs, without its autotuning
        predictor = _predictor(trained, "cuda", dtype="fp32", compile="default", tta=True, batch_size=4)
        for _ in range(3):  # warm-up, recording, replays
            logits = predictor.forward(on_device).cpu()
    assert ((logits > 0) == (reference > 0)).float().mean() >= 0.999


@pytest.mark.parametrize("device", DEVICES)
def test_tensor_preprocessing_matches_processor(trained, dataset, device):
    processor = CarSegImageProcessorPil(**trained[1].to_dict())  # the reference: PIL decoding and resizing
    tensor_processor = CarSegImageProcessor.from_processor(processor)
    paths = sorted((dataset / "test").glob("*.jpg"))
    images = decode_jpegs([torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in paths], device)
    pil = [torch.from_numpy(load_rgb(p).copy()).permute(2, 0, 1) for p in paths]  # (3, height, width) uint8 each
    for image, expected in zip(images, pil):
        assert image.device.type == device and image.shape == expected.shape
        difference = (image.cpu().float() - expected.float()).abs()  # grey levels
        if device == "cpu":
            assert difference.max() == 0  # torchvision and PIL both decode with libjpeg(-turbo)
        else:
            assert difference.mean() < 2  # nvjpeg is not bit-exact with libjpeg; torchvision's own test allows 2
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    for size in [(64, 96), (128, 192), (150, 250)]:
        ours = tensor_processor.preprocess_tensors([image.to(device) for image in pil], size, torch.channels_last)
        reference = processor([str(p) for p in paths], size={"height": size[0], "width": size[1]})["pixel_values"]
        assert ours.shape == reference.shape and ours.is_contiguous(memory_format=torch.channels_last)
        grey_levels = (ours.cpu() - reference).abs() * std * 255  # difference before normalisation, in grey levels
        # PIL and torch round bilinear filters differently (one grey level); CUDA's float order can add one more
        assert grey_levels.max() <= (1.01 if device == "cpu" else 2.01) and grey_levels.mean() < 0.25, size
    with pytest.raises(ValueError, match="uint8"):
        tensor_processor.preprocess_tensors([images[0].float()], None)


@pytest.mark.filterwarnings("ignore:the submission .* does not end in '.jpg'")  # .png inputs on purpose
@pytest.mark.parametrize("device", DEVICES)
def test_tensor_decode_path_matches_processor_path(trained, dataset, tmp_path, device):
    """Batched JPEG decoding (nvjpeg on CUDA), tensor preprocessing and device RLE against PIL on the CPU."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for image in sorted((dataset / "test").glob("*.jpg")):
        (folder / image.name).write_bytes(image.read_bytes())
    Image.open(folder / image.name).save(folder / "as_png.png")  # not a JPEG: decoded on the CPU instead
    (folder / "truncated.jpg").write_bytes(image.read_bytes()[:200])
    tensor = _predictor(trained, device, out_dir=tmp_path / "tensor", submission=tmp_path / "t.csv", decode="tensor")
    summary = tensor.run([folder])
    assert tensor.tensor_decode and summary.processed == 5
    assert [Path(p).name for p, _ in summary.failed] == ["truncated.jpg"]
    assert "truncated.jpg" in summary.failed[0][1]
    _predictor(trained, out_dir=tmp_path / "pil", decode="processor").run([folder])
    rows = read_rle_csv(tmp_path / "t.csv")
    for path in _outputs(tmp_path / "pil"):
        ours, theirs = load_mask(tmp_path / "tensor" / path.name), load_mask(path)
        assert (ours == theirs).mean() >= 0.999, path.name
        name = "as_png.png" if path.stem == "as_png" else f"{path.stem}.jpg"
        assert np.array_equal(rle_decode(rows[name], ours.shape), ours)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_rle_matches_numpy(device):
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 17, 23, generator=generator) > 0.6  # (3, 17, 23)
    masks[1] = False
    masks[2, 0, 0] = masks[2, -1, -1] = True
    assert rle_encode_torch(masks.to(device)) == [rle_encode(mask.numpy()) for mask in masks]
    noise = torch.rand(2, 1, 40, 60, generator=generator)  # smooth blobs at Carvana's size, as a model's masks are
    blobs = torch.nn.functional.interpolate(noise, size=(1280, 1918), mode="bilinear")[:, 0] > 0.5  # (2, 1280, 1918)
    assert rle_encode_torch(blobs.to(device)) == [rle_encode(mask.numpy()) for mask in blobs]
    expected = [rle_encode(mask.numpy()) for mask in blobs]
    for boundaries_per_row in (64, 1):  # room for every boundary, then far too little (the exact fallback)
        pending = rle_encode_torch_async(blobs.to(device), boundaries_per_row=boundaries_per_row)
        assert pending.result() == expected
        assert pending.overflowed is (boundaries_per_row == 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_async_rle_queues_without_waiting_for_cuda():
    masks = torch.zeros(4, 1280, 1918, dtype=torch.bool, device="cuda")
    masks[:, 200:1100, 150:1800] = True  # a car-like block: two boundaries per covered row
    masks[2] = False
    with _no_cuda_synchronisation():
        pending = rle_encode_torch_async(masks)
    assert pending.result() == [rle_encode(mask.cpu().numpy()) for mask in masks]
    assert pending.overflowed is False


@pytest.mark.parametrize("device", DEVICES)
def test_batch_in_flight_gives_the_outputs_of_a_serial_run(trained, dataset, tmp_path, device):
    inputs = [dataset / "train", dataset / "test"]  # 12 images: batches of 5, 5 and 2
    outputs = {}
    for profile in (False, True):  # profile finishes each batch before queuing the next
        calls = []
        out, submission = tmp_path / f"{profile}", tmp_path / f"{profile}.csv"
        predictor = _predictor(trained, device, out_dir=out, submission=submission, batch_size=5, profile=profile)
        summary = predictor.run(inputs, on_batch=lambda index, count, calls=calls: calls.append((index, count)))
        assert summary.processed == 12 and calls == [(0, 5), (1, 5), (2, 2)]
        outputs[profile] = (read_rle_csv(tmp_path / f"{profile}.csv"), predictor)
    assert outputs[False][0] == outputs[True][0]
    for path in _outputs(tmp_path / "True"):
        assert np.array_equal(load_mask(tmp_path / "False" / path.name), load_mask(path)), path.name

    predictor = outputs[False][1]  # the launch only queues the work; the strings and masks come with _finish
    items = _decoded_items(predictor, sorted((dataset / "test").glob("*.jpg")))
    launched = predictor._launch(items, PredictSummary())
    assert all(item.rle is None and item.mask is None for item in items)
    predictor._finish(launched, PredictSummary())
    rows = outputs[False][0]
    for item in items:
        assert item.rle == rows[item.path.name] and item.mask.shape == load_rgb(item.path).shape[:2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_queuing_a_batch_does_not_wait_for_cuda(trained, dataset):
    predictor = _predictor(trained, "cuda", decode="tensor", dtype="bf16", batch_size=4)
    paths = sorted((dataset / "test").glob("*.jpg"))
    warm, checked = _decoded_items(predictor, paths), _decoded_items(predictor, paths)
    predictor._finish(predictor._launch(warm, PredictSummary()), PredictSummary())  # cuDNN picks its algorithms
    with _no_cuda_synchronisation():
        launched = predictor._launch(checked, PredictSummary())  # preprocessing, forward, threshold, RLE, copies
    predictor._finish(launched, PredictSummary())
    for first, second in zip(warm, checked):
        assert second.rle == first.rle and np.array_equal(second.mask, first.mask), first.path.name


def _decoded_items(predictor: BatchPredictor, paths: list[Path]) -> list[_Item]:
    """Items needing a mask and a row, decoded by the predictor's own decoding stage."""
    items = [_Item(path=path, need_mask=True, need_row=True) for path in paths]
    futures = []
    for item in items:
        future: Future = Future()
        future.set_result(predictor._decode(item))
        futures.append(future)
    predictor._collect(futures, PredictSummary(), None)
    return items


@contextlib.contextmanager
def _no_cuda_synchronisation() -> Iterator[None]:
    """Make any CUDA call that waits for the GPU raise inside the block."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_native_resolution_groups_different_sizes(trained, dataset, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    images = sorted((dataset / "test").glob("*.jpg"))
    Image.open(images[0]).save(folder / "a.jpg")
    Image.open(images[1]).resize((100, 70)).save(folder / "b.jpg")
    Image.open(images[2]).save(folder / "c.jpg")
    summary = _predictor(trained, out_dir=tmp_path / "out", resolution="native", batch_size=3).run([folder])
    assert summary.processed == 3 and not summary.failed
    assert Image.open(tmp_path / "out" / "b.png").size == (100, 70)
    assert Image.open(tmp_path / "out" / "a.png").size == (192, 128)


def test_a_read_only_submission_stops_the_run_before_anything_is_computed(trained, dataset, tmp_path):
    submission = tmp_path / "sub.csv"
    submission.write_text("img,rle_mask\nold_01.jpg,1 1\n")
    submission.chmod(0o444)
    predictor = _predictor(trained, submission=submission)
    with pytest.raises(ValueError, match=r"sub\.csv: the file is read-only"):
        predictor.run([dataset / "test"])
    assert submission.read_text() == "img,rle_mask\nold_01.jpg,1 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv"]  # no journal, no temporary file


def test_a_rerun_with_other_settings_stops_and_names_them(trained, dataset, tmp_path, capsys):
    from carseg_hf.cli import main as cli_main
    from carseg_hf.predict_record import SettingsChangedError, file_sha256, submission_record_path

    model_dir = trained[2]
    submission, out, look = tmp_path / "sub.csv", tmp_path / "masks", tmp_path / "look"
    common = [str(dataset / "test"), "--submission", str(submission), "--out", str(out), "--no-progress"]
    assert _cli(*common, "--model", str(model_dir), "--overlay", str(look)) == 0
    record = json.loads(submission_record_path(submission).read_text())
    assert record["model"] == str(model_dir) and record["revision"] is None
    assert record["weights_file_sha256"] == file_sha256(model_dir / "model.safetensors")
    assert (record["threshold"], record["tta"], record["resolution"], record["format"]) == (
        0.5,
        "none",
        "64x96",
        "rle",
    )
    before = {path: path.read_bytes() for path in [submission, *_outputs(out), *_outputs(look)]}
    other = tmp_path / "other-model"  # the same architecture with other weights
    torch.manual_seed(1)
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(other)
    trained[1].save_pretrained(other)
    for extra, changed in [
        (["--model", str(model_dir), "--threshold", "0.99"], "--threshold: 0.5 -> 0.99"),
        (["--model", str(model_dir), "--tta", "hflip"], "--tta: none -> hflip"),
        (["--model", str(model_dir), "--zoom"], "--zoom: off -> in+out+close-up"),
        (["--model", str(model_dir), "--resolution", "128x192"], "--resolution: 64x96 -> 128x192"),
        (["--model", str(other)], f"--model / --revision (the weights): {model_dir} (weights sha256"),
    ]:
        assert cli_main(["predict", *common, *extra]) == 2
        err = capsys.readouterr().err
        assert f"the submission {submission} holds results made with other settings" in err and changed in err, err
        assert "--overwrite" in err
    with pytest.raises(SettingsChangedError, match=rf"the masks folder {out} .*the output format: png -> gif"):
        _predictor(trained, out_dir=out, mask_format="gif").run([dataset / "test"])
    with pytest.raises(SettingsChangedError, match="--threshold: 0.5 -> 0.99"):  # overlays alone
        _predictor(trained, overlay_dir=look, threshold=0.99).run([dataset / "test"])
    assert {path: path.read_bytes() for path in before} == before  # nothing was replaced

    assert _cli(*common, "--model", str(model_dir), "--threshold", "0.99", "--overwrite") == 0  # starting over
    assert "4 segmented, 0 already done" in capsys.readouterr().out
    assert json.loads(submission_record_path(submission).read_text())["threshold"] == 0.99
    assert submission.read_bytes() != before[submission]  # the rows were recomputed with the new threshold
    assert _cli(*common, "--model", str(model_dir), "--threshold", "0.99") == 0  # and now resume with it
    assert "0 segmented, 4 already done" in capsys.readouterr().out


def test_a_subset_rerun_keeps_the_rows_it_does_not_touch(trained, dataset, tmp_path):
    submission = tmp_path / "sub.csv"
    everything = _predictor(trained, submission=submission, batch_size=4).run([dataset / "train"])
    assert everything.submission_rows == 8
    rows = read_rle_csv(submission)
    subset = sorted((dataset / "train").glob("*.jpg"))[:2]
    again = _predictor(trained, submission=submission).run(subset)
    assert (again.skipped, again.processed, again.submission_rows, again.submission_rows_kept) == (2, 0, 8, 6)
    assert read_rle_csv(submission) == rows


def test_output_files_without_a_journal_entry_are_recomputed(trained, dataset, tmp_path):
    out = tmp_path / "masks"
    out.mkdir()
    image = sorted((dataset / "test").glob("*.jpg"))[0]
    Image.new("L", (192, 128), 255).save(out / f"{image.stem}.png")  # a stale mask from some earlier tool
    summary = _predictor(trained, out_dir=out).run([image])
    assert (summary.processed, summary.skipped) == (1, 0)
    assert 0.02 < load_mask(out / f"{image.stem}.png").mean() < 0.98  # replaced by the model's mask
    (tmp_path / "sub.csv").write_text("img,rle_mask\nx.jpg,1 1\n")  # a submission without a record
    with pytest.raises(ValueError, match=r"sub\.csv holds results without a record .* Pass --overwrite"):
        _predictor(trained, submission=tmp_path / "sub.csv").run([image])


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "is not a carseg record"), (b"[1, 2]", "not a JSON object"), (b"\xff\xfe", "is not a carseg")],
)
def test_a_corrupt_record_is_named_with_the_way_out(tmp_path, content, message):
    from carseg_hf.predict_record import SettingsChangedError, read_record

    path = tmp_path / "s.csv.carseg.json"
    path.write_bytes(content)
    with pytest.raises(SettingsChangedError, match=message) as excinfo:
        read_record(path)
    assert str(path) in str(excinfo.value) and "--overwrite" in str(excinfo.value)
    assert read_record(tmp_path / "absent.json") is None


@pytest.mark.parametrize("flag", ["--batch-size", "--workers"])
def test_zero_batch_size_or_workers_is_an_error_not_the_default(flag, tmp_path, capsys):
    from carseg_hf.cli import main as cli_main

    image = tmp_path / "car.jpg"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(image)
    argv = ["predict", str(image), "--out", str(tmp_path / "masks"), "--device", "cpu", flag, "0"]
    assert cli_main(argv) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "masks").exists()
