"""The procedural Carvana fixture: exact Kaggle layout, determinism, GIF/CSV agreement."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carseg_hf.image_io import load_mask
from carseg_hf.rle import rle_decode
from carseg_hf.submission import read_rle_csv
from tests.fixture import main, make_carvana_fixture


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return make_carvana_fixture(tmp_path_factory.mktemp("carvana"), num_cars=2, angles=16, num_test=4)


def test_layout(fixture_dir):
    train = sorted(p.name for p in (fixture_dir / "train").iterdir())
    masks = sorted(p.name for p in (fixture_dir / "train_masks").iterdir())
    test = sorted(p.name for p in (fixture_dir / "test").iterdir())
    assert len(train) == 32 and len(masks) == 32 and len(test) == 4
    assert all(re.fullmatch(r"[0-9a-f]{12}_(0[1-9]|1[0-6])\.jpg", name) for name in train + test)
    assert masks == [name.replace(".jpg", "_mask.gif") for name in train]
    assert len({name[:12] for name in train}) == 2
    assert not {name[:12] for name in test} & {name[:12] for name in train}
    with Image.open(fixture_dir / "train" / train[0]) as image:
        assert image.format == "JPEG" and image.size == (480, 320) and image.mode == "RGB"


def test_masks_are_palette_gifs_that_match_the_csv(fixture_dir):
    rles = read_rle_csv(fixture_dir / "train_masks.csv")
    assert sorted(rles) == sorted(p.name for p in (fixture_dir / "train").iterdir())
    assert (fixture_dir / "train_masks.csv").read_text().startswith("img,rle_mask\n")
    for gif in sorted((fixture_dir / "train_masks").iterdir())[:6]:
        with Image.open(gif) as image:
            assert image.format == "GIF" and image.mode == "P"
            assert set(np.unique(np.asarray(image)).tolist()) == {0, 1}
        mask = load_mask(gif)
        name = gif.name.replace("_mask.gif", ".jpg")
        np.testing.assert_array_equal(rle_decode(rles[name], mask.shape), mask)
        assert 0.03 < mask.mean() < 0.6  # a car, not an empty or full frame


def test_deterministic_and_seed_dependent(tmp_path):
    a = make_carvana_fixture(tmp_path / "a", num_cars=1, angles=3, size=(96, 64), seed=5, num_test=1)
    b = make_carvana_fixture(tmp_path / "b", num_cars=1, angles=3, size=(96, 64), seed=5, num_test=1)
    c = make_carvana_fixture(tmp_path / "c", num_cars=1, angles=3, size=(96, 64), seed=6, num_test=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "train_masks.csv").read_text() != (c / "train_masks.csv").read_text()


def test_views_differ_by_angle(fixture_dir):
    rles = read_rle_csv(fixture_dir / "train_masks.csv")
    names = sorted(rles)[:16]
    areas = [rle_decode(rles[n], (320, 480)).sum() for n in names]
    assert max(areas) > 1.3 * min(areas)  # front views are narrower than side views


def test_csv_only_and_cli(tmp_path, capsys):
    out = make_carvana_fixture(tmp_path / "csv", num_cars=1, angles=2, size=(64, 48), write_gifs=False, num_test=0)
    assert not (out / "train_masks").exists() and not (out / "test").exists()
    assert len(read_rle_csv(out / "train_masks.csv")) == 2
    assert (
        main(["--out", str(tmp_path / "cli"), "--cars", "1", "--angles", "2", "--width", "64", "--height", "48"]) == 0
    )
    assert len(list((tmp_path / "cli" / "train").iterdir())) == 2
    assert main(["--out", str(tmp_path / "bad"), "--angles", "0"]) == 2
    assert "angles" in capsys.readouterr().err


def test_fixture_is_test_data_run_from_the_repository_root(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "module"
    argv = [
        sys.executable,
        "-m",
        "tests.fixture",
        "--out",
        str(out),
        "--cars",
        "1",
        "--angles",
        "1",
        "--num-test",
        "0",
    ]
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 1 training and 0 test images" in done.stdout and len(list((out / "train").iterdir())) == 1
    assert importlib.util.find_spec("carseg_hf.fixture") is None  # not part of the installed package
