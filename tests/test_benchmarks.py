"""Smoke tests of the benchmark scripts on the tiny network: they run, print their tables and check the fast path.

These assert what the scripts print (rows, columns, the agreement check), never a timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from benchmarks import bench_inference, bench_predict


def _table_rows(text: str) -> list[list[str]]:
    """Cells of the printed Markdown table's data rows."""
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]  # without the header


def test_bench_inference_runs_the_chosen_modes(capsys):
    argv = ["--device", "cpu", "--config", "tiny", "--sizes", "64x96,32x32", "--batch-size", "2", "--iters", "2"]
    argv += ["--warmup", "0", "--modes", "eager-bf16,eager-fp32", "--allocator", "default"]
    assert bench_inference.main(argv) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert [(row[0], row[2]) for row in rows] == [
        ("64x96", "eager fp32"),
        ("64x96", "eager bf16 + channels_last + folded BN"),
        ("32x32", "eager fp32"),
        ("32x32", "eager bf16 + channels_last + folded BN"),
    ]  # table order, whatever the order asked for
    assert all(float(row[4]) > 0 and row[6] for row in rows)
    assert rows[0][6] == "1.00x" and float(rows[0][7]) > 0  # baseline of its size; GFLOP counted


def test_bench_inference_rejects_unknown_modes(capsys):
    with pytest.raises(SystemExit):
        bench_inference.parse_args(["--modes", "eager-fp32,turbo"])
    assert "unknown --modes turbo" in capsys.readouterr().err


def test_bench_inference_answers_bad_values_with_usage_errors(capsys):
    bad = [
        (["--sizes", "12x"], "argument --sizes: expected HEIGHTxWIDTH"),
        (["--sizes", "0x0"], "at least 32"),
        (["--threads", "0"], "argument --threads: must be >= 1"),
        (["--modes", "eager-bf16", "--skip-bf16"], "no mode left to run"),
    ]
    if not torch.cuda.is_available():
        bad.append((["--device", "cuda"], "CUDA is not available"))
    for argv, message in bad:
        with pytest.raises(SystemExit) as exit_info:
            bench_inference.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert bench_inference.parse_args(["--sizes", "64x96,32x32"]).sizes == [(64, 96), (32, 32)]


def test_bench_inference_names_the_baseline_of_its_ratios(capsys):
    argv = ["--device", "cpu", "--config", "tiny", "--sizes", "32x32", "--batch-size", "1", "--iters", "1"]
    argv += ["--warmup", "0", "--modes", "eager-fp32-cl-fold,eager-fp32-cl", "--allocator", "default", "--no-flops"]
    assert bench_inference.main(argv) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("# vs first row"))
    assert (
        "over that of eager fp32 + channels_last (the first mode run; --modes or --skip-* left out eager fp32)" in line
    )
    assert "default allocator at the same size, in this process" in line
    assert _table_rows(out)[0][2] == "eager fp32 + channels_last" and _table_rows(out)[0][6] == "1.00x"
    both = bench_inference.parse_args(["--modes", "eager-fp32,eager-bf16", "--allocator", "both"])
    assert bench_inference.baseline_line(both) == (
        "# vs first row: images/s over that of eager fp32 with the default allocator at the same size, measured in a "
        "child process: the retain rows are compared across two processes"
    )


def _write_jpegs(folder: Path, count: int, height: int, width: int) -> None:
    """`count` grey JPEGs of `height`x`width` named like Carvana test photos."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (width, height), (90 + index, 90, 90)).save(folder / f"c{index:011d}_01.jpg")


def test_bench_predict_prints_stages_and_agreement_with_eager_fp32(tmp_path, capsys):
    # JPEGs an earlier run wrote at another size: replaced, never timed (the check would decode their RLE wrongly)
    _write_jpegs(tmp_path / "data" / "test", 3, 64, 96)
    (tmp_path / "data" / bench_predict.MARKER).write_text("written by bench_predict")
    argv = ["--device", "cpu", "--config", "tiny", "--images", "3", "--source-size", "96x64", "--resolution", "64x96"]
    argv += ["--batch-size", "2", "--workers", "1", "--data", str(tmp_path), "--check", "2", "--fold", "both"]
    argv += ["--allocator", "default"]
    assert bench_predict.main([*argv, "--tta", "both", "--dtype", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "writing 3 96x64 JPEGs" in out and "# source 3 JPEGs of 96x64" in out
    for path in (tmp_path / "data" / "test").glob("*.jpg"):
        with Image.open(path) as image:
            assert image.size == (64, 96)  # (width, height)
    rows = _table_rows(out)
    assert [(row[0], row[1]) for row in rows] == [("none", "no"), ("none", "yes"), ("hflip", "no"), ("hflip", "yes")]
    for row in rows:
        assert row[2] == "3" and float(row[5]) > 0 and float(row[8]) > 0  # overlapped and profiled images/s
        assert all(float(cell) >= 0 for cell in row[9:13])  # decode, model, rle, write ms per image
        assert float(row[14]) >= 0.99  # fp32 with channels-last (and folded BN): the same masks as eager fp32
    assert len(list((tmp_path / "data" / "test").glob("*.jpg"))) == 3  # it generated its own JPEGs


def test_bench_predict_validates_its_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_predict.parse_args(["--check", "-1"])
    assert "--check must be >= 0" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    bad = [
        (["--threads", "0"], "argument --threads: must be >= 1, got 0"),
        (["--data", str(tmp_path / "afile" / "sub")], "which is a file; expected a folder"),
    ]
    if not torch.cuda.is_available():
        bad.append((["--device", "cuda"], "CUDA is not available"))
    for argv, message in bad:
        with pytest.raises(SystemExit) as exit_info:
            bench_predict.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench_predict.main(["--device", "cpu", "--model", str(tmp_path / "nosuch"), "--images", "1"])
    assert exit_info.value.code == 2 and "error: --model" in capsys.readouterr().err


def test_bench_predict_reuses_only_jpegs_of_the_requested_size(tmp_path, capsys):
    _write_jpegs(tmp_path / "data" / "test", 2, 64, 96)  # not written by bench_predict: never replaced
    with pytest.raises(SystemExit) as exit_info:
        bench_predict.parse_args(["--data", str(tmp_path), "--images", "2", "--source-size", "128x192"])
    assert exit_info.value.code == 2 and "holds files that bench_predict did not write" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_predict.parse_args(["--data", str(tmp_path), "--images", "3", "--source-size", "64x96"])  # too few
    capsys.readouterr()
    argv = ["--device", "cpu", "--config", "tiny", "--images", "2", "--source-size", "64x96", "--resolution", "64x96"]
    argv += ["--batch-size", "1", "--workers", "1", "--threads", "1", "--data", str(tmp_path), "--check", "1"]
    assert bench_predict.main([*argv, "--tta", "none", "--fold", "no", "--allocator", "default"]) == 0
    out = capsys.readouterr().out
    assert f"reusing 2 64x96 JPEGs from {tmp_path / 'data' / 'test'}" in out and "# source 2 JPEGs of 64x96" in out
    assert _table_rows(out)[0][14] == "1.00000"


def test_bench_aspect_scores_both_resizes_on_every_frame(tmp_path, capsys):
    import torch

    from benchmarks import bench_aspect
    from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
    from tests.conftest import tiny_config
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=2, angles=2, size=(192, 128), write_csv=False)
    torch.manual_seed(0)
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(tmp_path / "model")
    CarSegImageProcessor(size={"height": 64, "width": 96}).save_pretrained(tmp_path / "model")
    car = sorted((data / "train").glob("*.jpg"))[0].stem.rsplit("_", 1)[0]
    assert bench_aspect.main(["--data", str(data), "--model", str(tmp_path / "model"), "--cars", car]) == 0
    out = capsys.readouterr().out
    assert "2 photos of" in out
    rows = {row[0]: row for row in _table_rows(out)}
    assert list(rows) == [name for name, _ in bench_aspect.ASPECTS]
    assert rows["3:2 landscape"][2] == rows["3:2 landscape"][3] and rows["3:2 landscape"][5] == "64x96"
    assert rows["3:4 portrait"][5] == "96x64" and rows["1:1 square"][5] == "64x64"  # 128x96 crops, 128x128 ones
    assert all(row[1] == "2" and float(row[6]) > 0 for row in rows.values())
    assert len(rows["3:4 portrait"]) == 8  # no zoom columns without --zoom


def test_bench_aspect_zoom_mode_zooms_out_of_tall_frames(tmp_path, capsys):
    import torch

    from benchmarks import bench_aspect
    from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
    from tests.conftest import tiny_config
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=1, angles=2, size=(192, 128), write_csv=False)
    torch.manual_seed(0)
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(tmp_path / "model")
    CarSegImageProcessor(size={"height": 64, "width": 96}, keep_aspect_ratio=True).save_pretrained(tmp_path / "model")
    assert bench_aspect.main(["--data", str(data), "--model", str(tmp_path / "model"), "--zoom"]) == 0
    rows = {row[0]: row for row in _table_rows(capsys.readouterr().out)}
    assert all(len(row) == 12 and float(row[11].split()[0]) > 0 for row in rows.values())
    # a random network labels most of a frame car, so a 9:16 crop (input 96x64, taller than 64) is zoomed out
    assert rows["9:16 portrait"][10] == "2" and rows["3:2 landscape"][10] == "0"
    assert float(rows["9:16 portrait"][9]) == pytest.approx(
        float(rows["9:16 portrait"][8].split()[0]) - float(rows["9:16 portrait"][3].split()[0]), abs=2e-4
    )


def test_bench_small_photos_scores_each_width_in_both_modes(tmp_path, capsys):
    import torch

    from benchmarks import bench_small_photos
    from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
    from tests.conftest import tiny_config
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=2, angles=2, size=(192, 128), write_csv=False)
    torch.manual_seed(0)
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(tmp_path / "model")
    CarSegImageProcessor(size={"height": 64, "width": 96}).save_pretrained(tmp_path / "model")
    argv = ["--data", str(data), "--model", str(tmp_path / "model"), "--widths", "192,96,48", "--every", "2"]
    assert bench_small_photos.main(argv) == 0
    rows = {row[0]: row for row in _table_rows(capsys.readouterr().out)}
    assert list(rows) == ["192", "96", "48"] and [rows[w][1] for w in rows] == ["192x128", "96x64", "48x32"]
    assert all(row[2] == "2" for row in rows.values()) and rows["192"][4] == "+0.0000"
    assert rows["96"][3] == rows["96"][5]  # 96x64 is the processor's size: both modes feed the same input
    assert float(rows["48"][4]) == pytest.approx(float(rows["48"][3].split()[0]) - float(rows["192"][3].split()[0]))


def test_bench_small_photos_shrinks_photo_and_mask_together(tmp_path, capsys):
    import numpy as np

    from benchmarks import bench_small_photos

    image = np.zeros((40, 60, 3), np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    image[:, :30], mask[:, :30] = 255, 1
    photo, truth = bench_small_photos.shrink(image, mask, 30)
    assert photo.shape == (20, 30, 3) and truth.shape == (20, 30) and set(np.unique(truth)) == {0, 1}
    assert truth[:, :15].all() and not truth[:, 15:].any() and (photo[:, :14] > 200).all()
    with pytest.raises(SystemExit):
        bench_small_photos.parse_args(["--data", str(tmp_path), "--widths", "640,16"])
    assert "at least 32 pixels" in capsys.readouterr().err


def test_bench_aspect_validates_its_arguments(tmp_path, capsys):
    from benchmarks import bench_aspect

    with pytest.raises(SystemExit):
        bench_aspect.parse_args(["--data", str(tmp_path), "--every", "0"])
    assert "--every and --threads must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_aspect.parse_args(["--data", str(tmp_path)])
    assert "lacks train/ and train_masks/" in capsys.readouterr().err


def test_bench_error_bands_counts_every_wrong_pixel_once(tmp_path, capsys):
    import torch

    from benchmarks import bench_error_bands
    from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
    from carseg_hf.image_io import load_mask
    from carseg_hf.inference import Segmenter
    from tests.conftest import tiny_config
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=2, angles=2, size=(96, 64), write_csv=False)
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(tiny_config()).eval()
    processor = CarSegImageProcessor(size={"height": 32, "width": 48})
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    assert bench_error_bands.main(["--data", str(data), "--model", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    assert [row[0] for row in rows] == ["<= 1 px", "<= 2 px", "<= 4 px", "<= 8 px", "<= 16 px", "> 16 px"]
    segmenter = Segmenter(model, processor, "cpu")
    wrong = 0
    for photo in sorted((data / "train").glob("*.jpg")):
        truth = load_mask(data / "train_masks" / f"{photo.stem}_mask.gif").astype(bool)
        wrong += int((segmenter.segment(str(photo)).mask.astype(bool) != truth).sum())
    assert sum(int(row[1]) for row in rows) == wrong > 0
    assert all(int(row[1]) == int(row[4]) + int(row[5]) for row in rows) and rows[-1][3] == "1.000"
    assert "4 photos: dice" in out


def test_bench_error_bands_ceiling_and_bands_on_known_masks():
    import numpy as np

    from benchmarks import bench_error_bands

    truth = np.zeros((64, 96), np.uint8)
    truth[16:48, 24:72] = 1
    assert bench_error_bands.input_size_ceiling(truth, {"height": 64, "width": 96}) == 1.0
    stripe = np.zeros((64, 96), np.uint8)
    stripe[:, 40:41] = 1  # one pixel wide: lost at a quarter of the width
    assert bench_error_bands.input_size_ceiling(stripe, {"height": 16, "width": 24}) < 0.5
    bands = bench_error_bands.band_index(truth)
    # Row 32 crosses the square's left edge between columns 23 and 24; column 24 + k is k + 1 pixels from the outside.
    assert [int(bands[32, column]) for column in (23, 24, 25, 26, 27, 28, 31, 32)] == [0, 0, 1, 2, 2, 3, 3, 4]
    assert bands[32, 40] == 4 and bands[10, 24] == 3  # the centre, 16 rows from the bottom; 6 rows above the square
    assert bands[0, 95] == 5  # the corner, 24 columns from the square


def test_photo_benchmarks_answer_bad_cars_and_models_with_usage_errors(tmp_path, capsys):
    from benchmarks import bench_aspect, bench_error_bands, bench_small_photos
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=1, angles=2, size=(96, 64), write_csv=False)
    car = sorted((data / "train").glob("*.jpg"))[0].stem.rsplit("_", 1)[0]
    for module in (bench_aspect, bench_error_bands, bench_small_photos):
        argv = ["--data", str(data), *(["--widths", "64"] if module is bench_small_photos else [])]
        for cars, message in (("nosuchcar", "car 'nosuchcar' has no photo"), ("*", "car '*' has no photo")):
            with pytest.raises(SystemExit) as exit_info:
                module.parse_args([*argv, "--cars", cars])
            assert exit_info.value.code == 2 and message in capsys.readouterr().err
        with pytest.raises(SystemExit) as exit_info:
            module.main([*argv, "--model", str(tmp_path / "nosuch")])
        assert exit_info.value.code == 2 and "error: --model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # a car named twice is refused, as in the synthetic data tools
        bench_aspect.parse_args(["--data", str(data), "--cars", f"{car},{car}"])
    assert exit_info.value.code == 2 and f"argument --cars: {car} named twice" in capsys.readouterr().err
    args = bench_aspect.parse_args(["--data", str(data), "--cars", car])
    assert args.cars == [car] and len(args.samples) == 2


def test_photo_benchmarks_list_the_photos_training_accepts(tmp_path):
    from benchmarks.photos import list_photos, list_samples
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=1, angles=3, size=(96, 64), write_csv=False)
    first, second, third = sorted((data / "train").glob("*.jpg"))
    car = first.stem.rsplit("_", 1)[0]
    Image.open(second).save(second.with_suffix(".png"))  # a PNG photo whose mask is a PNG too
    second.unlink()
    mask = data / "train_masks" / f"{second.stem}_mask.gif"
    Image.open(mask).save(mask.with_suffix(".png"))
    mask.unlink()
    third.rename(third.with_suffix(".JPG"))  # upper-case extension
    (data / "train" / "notes.txt").write_text("not a photo")
    samples = list_samples(data, [car])
    assert [sample.name for sample in samples] == [first.name, f"{second.stem}.png", f"{third.stem}.JPG"]
    assert [sample.mask.name for sample in samples] == [
        f"{first.stem}_mask.gif",
        f"{second.stem}_mask.png",
        f"{third.stem}_mask.gif",
    ]
    assert [sample.name for sample in list_photos(data, [], every=2)] == [first.name, f"{third.stem}.JPG"]
    (data / "train_masks" / f"{third.stem}_mask.gif").unlink()
    with pytest.raises(FileNotFoundError, match=f"{third.stem}.JPG has no mask {third.stem}_mask.gif"):
        list_samples(data, [car])


def test_bench_small_photos_refuses_widths_above_the_photos(tmp_path, capsys):
    from benchmarks import bench_small_photos
    from tests.fixture import make_carvana_fixture

    data = make_carvana_fixture(tmp_path / "data", num_cars=1, angles=1, size=(96, 64), write_csv=False)
    with pytest.raises(SystemExit) as exit_info:
        bench_small_photos.parse_args(["--data", str(data), "--widths", "4000,96"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--widths 4000 is wider than the photos" in err and "96 pixels wide" in err
    assert bench_small_photos.parse_args(["--data", str(data), "--widths", "96,48"]).widths == [96, 48]


def test_bench_train_refuses_bad_values_before_generating_data(capsys):
    from benchmarks import bench_train

    bad = [
        (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["--workers", "-1"], "argument --workers: must be >= 0, got -1"),
        (["--cars", "0"], "argument --cars: must be >= 1, got 0"),
        (["--warmup", "x"], "expected a whole number >= 0, got 'x'"),
        (["--resolution", "0x0"], "at least 32"),
        (["--device", "cuda:1"], "give --device cuda and choose the GPU with CUDA_VISIBLE_DEVICES=1"),
    ]
    if not torch.cuda.is_available():
        bad.append((["--device", "cuda"], "CUDA is not available"))
    for argv, message in bad:
        with pytest.raises(SystemExit) as exit_info:
            bench_train.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    args = bench_train.parse_args(["--device", "cpu", "--workers", "0", "--resolution", "64x96"])
    assert (args.device, args.workers, args.resolution) == ("cpu", 0, (64, 96))


def test_encoder_check_and_load_test_exit_2_on_bad_input(tmp_path, capsys):
    from benchmarks import check_encoder_imagenet, load_space

    Image.new("L", (8, 8)).save(tmp_path / "a_mask.png")  # a mask is not a photo
    for argv, message in (
        (["--images", str(tmp_path)], "holds no photos (.jpg, .jpeg, .png"),
        (["--images", str(tmp_path / "nosuch")], "is not a folder"),
        (["--images", str(tmp_path), "--limit", "0"], "argument --limit: must be >= 1"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            check_encoder_imagenet.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    for option in ("--callers", "--requests", "--server-threads", "--concurrency"):
        with pytest.raises(SystemExit) as exit_info:
            load_space.parse_args([option, "0"])
        assert exit_info.value.code == 2 and f"argument {option}: must be >= 1, got 0" in capsys.readouterr().err


def test_benchmark_arguments_import_neither_torch_nor_transformers():
    import subprocess
    import sys

    code = (
        "import sys; import benchmarks.arguments, benchmarks.load_space; "
        "print(sorted(name for name in ('torch', 'transformers', 'datasets') if name in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1], check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
