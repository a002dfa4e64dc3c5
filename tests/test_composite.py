"""Copy-paste composites: exact masks, shadows that never enter the mask, and a Carvana-layout writer."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carseg_hf.data import load_carvana
from training.synthetic.background_blur import BackgroundBlur, blur_background, sample_background_blur
from training.synthetic.composite import CompositeParams, compose, sample_params, write_composites

PLAIN = CompositeParams(
    car_width=0.5,
    center_x=0.5,
    bottom_y=0.9,
    contact_strength=0.0,
    cast_strength=0.0,
    cast_offset=0.0,
    cast_blur=1.0,
    car_gain=(1.0, 1.0, 1.0),
    exposure=1.0,
    white_balance=(1.0, 1.0, 1.0),
    blur=0.0,
    noise=0.0,
    jpeg_quality=95,
)


def _car(height: int = 120, width: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A red rounded box (the car) on a white studio, with its 0/1 mask."""
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[30:100, 20:180] = 1
    image[mask == 1] = (200, 20, 20)
    return image, mask


def _background(height: int = 200, width: int = 300) -> np.ndarray:
    return np.full((height, width, 3), (90, 160, 90), dtype=np.uint8)


def test_the_mask_is_the_pasted_car_exactly():
    image, mask = _car()
    out, label = compose(image, mask, _background(), PLAIN, np.random.default_rng(0))
    assert out.shape == (200, 300, 3) and label.shape == (200, 300)
    rows, cols = np.nonzero(label)
    # the car is 160x70 in the source, pasted 150 pixels wide (0.5 of 300), its bottom at 0.9 of 200
    assert cols.max() - cols.min() + 1 == 150 and rows.max() + 1 == 180
    inside = label.astype(bool)
    core = np.zeros_like(inside)
    core[rows.min() + 2 : rows.max() - 1, cols.min() + 2 : cols.max() - 1] = True
    assert np.abs(out[core].astype(int) - (200, 20, 20)).max() <= 2
    assert np.abs(out[~inside][:, 1].astype(int) - 160).max() <= 40  # background stays green outside the car


def test_shadows_darken_the_ground_but_never_enter_the_mask():
    image, mask = _car()
    rng = np.random.default_rng(0)
    plain, plain_label = compose(image, mask, _background(), PLAIN, rng)
    shaded_params = dataclasses.replace(PLAIN, contact_strength=0.7, cast_strength=0.5, cast_offset=0.3)
    shaded, shaded_label = compose(image, mask, _background(), shaded_params, rng)
    assert np.array_equal(plain_label, shaded_label)
    ground = plain_label == 0
    darker = shaded[ground].astype(int).sum(axis=1) < plain[ground].astype(int).sum(axis=1) - 30
    assert darker.sum() > 500  # a visible shadow on the ground ...
    below = np.zeros_like(ground)
    below[181:190, :] = True
    assert shaded[below & ground].mean() < plain[below & ground].mean() - 10  # ... right under the tyres


def test_an_empty_mask_is_refused():
    image, mask = _car()
    with pytest.raises(ValueError, match="empty"):
        compose(image, np.zeros_like(mask), _background(), PLAIN, np.random.default_rng(0))


def test_sampled_params_stay_in_range():
    rng = np.random.default_rng(1)
    for _ in range(50):
        params = sample_params(rng)
        assert 0.35 <= params.car_width <= 0.95 and 60 <= params.jpeg_quality <= 95
        assert 0.0 <= params.cast_strength < 1.0 and 0.0 < params.contact_strength < 1.0


def cars_and_backgrounds(
    tmp_path: Path, angles: tuple[str, ...], cars: tuple[str, ...] = ("abc123",)
) -> tuple[Path, Path]:
    """A Carvana-layout folder of `cars` at `angles` (see `_car`) and a fake background cache, under `tmp_path`.

    Skips the calling test where openexr, which reads the cache's panoramas, is missing.
    """
    openexr = pytest.importorskip("OpenEXR", reason="openexr reads the panoramas of the background cache")
    from test_synthetic_backgrounds import _fake_cache

    backgrounds = tmp_path / "backgrounds"
    _fake_cache(backgrounds, openexr)
    folder = tmp_path / "cars"
    (folder / "train").mkdir(parents=True)
    (folder / "train_masks").mkdir()
    image, mask = _car()
    for car in cars:
        for angle in angles:
            Image.fromarray(image).save(folder / "train" / f"{car}_{angle}.jpg", quality=95)
            Image.fromarray(mask * 255).save(folder / "train_masks" / f"{car}_{angle}_mask.png")
    return folder, backgrounds


def test_write_composites_in_carvana_layout(tmp_path):
    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01", "02"), cars=("abc123", "def456", "fed789"))
    out = tmp_path / "out"
    count = write_composites(cars, ["abc123"], out, 2, (64, 96), seed=0, split="train", backgrounds_root=backgrounds)
    assert count == 4
    assert json.loads((out / "splits.json").read_text()) == {"abc123c0": "train", "abc123c1": "train"}
    write_composites(cars, ["def456"], out, 1, (64, 96), seed=1, split="held_out", backgrounds_root=backgrounds)
    write_composites(cars, ["fed789"], out, 1, (64, 96), seed=2, split="validation", backgrounds_root=backgrounds)
    splits = load_carvana(out)
    assert len(splits["train"]) == 4 and len(splits["heldout"]) == 2 and len(splits["validation"]) == 2
    assert set(splits["heldout"]["car_id"]) == {"def456h0"} and set(splits["validation"]["car_id"]) == {"fed789v0"}
    labels = [np.asarray(mask) for mask in splits["train"]["mask"]]
    assert all(set(np.unique(label)) == {0, 1} for label in labels)


def test_each_split_of_cars_draws_the_backgrounds_of_its_own_split(tmp_path):
    from training.synthetic.background_sources import SOURCES
    from training.synthetic.backgrounds import BackgroundsNotFoundError, cached_path

    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01",))
    validation = [s for s in SOURCES if s.split == "validation" and s.kind == "outdoor"]
    for source in validation:  # without the validation files, only validation composites must fail
        cached_path(source, backgrounds).unlink()
    out = tmp_path / "out"
    with pytest.raises(BackgroundsNotFoundError, match=validation[0].name):
        write_composites(cars, ["abc123"], out, 1, (64, 96), seed=0, split="validation", backgrounds_root=backgrounds)
    assert not out.exists()  # the backgrounds are checked before anything is written
    for split in ("train", "held_out"):
        write_composites(cars, ["abc123"], out / split, 1, (64, 96), seed=0, split=split, backgrounds_root=backgrounds)
    kwargs = {"split": "validation", "backgrounds_root": backgrounds}
    assert write_composites(cars, ["abc123"], out / "val", 1, (64, 96), seed=0, backgrounds="train", **kwargs) == 1
    with pytest.raises(ValueError, match="backgrounds must be one of"):
        write_composites(cars, ["abc123"], out / "val", 1, (64, 96), seed=0, backgrounds="test", **kwargs)


def test_the_command_line_limits_the_background_packages(tmp_path, monkeypatch, capsys):
    from training.synthetic.composite import main

    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01",))
    monkeypatch.setenv("CARSEG_BACKGROUNDS_DIR", str(backgrounds))
    args = ["--cars-dir", str(cars), "--cars", "abc123", "--size", "64x96"]
    assert main([*args, "--out", str(tmp_path / "ok"), "--background-packages", "mate-backgrounds,lxqt-themes"]) == 0
    assert len(list((tmp_path / "ok" / "train").glob("*.jpg"))) == 1
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "bad"), "--background-packages", "mate-backgrounds,nosuch"])
    assert exit_info.value.code == 2 and "nosuch" in capsys.readouterr().err
    assert not list((tmp_path / "bad").glob("train/*.jpg"))


def test_unknown_cars_are_named_instead_of_writing_nothing(tmp_path):
    (tmp_path / "cars" / "train").mkdir(parents=True)
    image, _ = _car()
    Image.fromarray(image).save(tmp_path / "cars" / "train" / "abc123_01.jpg")
    with pytest.raises(ValueError, match="split must be one of"):
        write_composites(tmp_path / "cars", ["abc123"], tmp_path / "out", 1, (64, 96), 0, "test")
    with pytest.raises(FileNotFoundError, match="nosuchcar"):
        write_composites(tmp_path / "cars", ["abc123", "nosuchcar"], tmp_path / "out", 1, (64, 96), 0, "train")
    assert not (tmp_path / "out" / "train").exists() or not any((tmp_path / "out" / "train").iterdir())


def _striped_background(height: int = 200, width: int = 300) -> np.ndarray:
    """Vertical black and white stripes 4 pixels wide: any horizontal blur greys them."""
    background = np.zeros((height, width, 3), dtype=np.uint8)
    background[:, (np.arange(width) // 4) % 2 == 0] = 255
    return background


@pytest.mark.parametrize("blur", [BackgroundBlur("defocus", 0.01), BackgroundBlur("motion", 0.05)])
def test_background_blur_softens_the_scene_and_leaves_the_car_and_mask_alone(blur):
    image, mask = _car()
    sharp, sharp_label = compose(image, mask, _striped_background(), PLAIN, np.random.default_rng(0))
    soft, soft_label = compose(image, mask, _striped_background(), PLAIN, np.random.default_rng(0), (), blur)
    assert np.array_equal(sharp_label, soft_label)
    inside = sharp_label.astype(bool)
    core = np.zeros_like(inside)
    rows, cols = np.nonzero(inside)
    core[rows.min() + 2 : rows.max() - 1, cols.min() + 2 : cols.max() - 1] = True
    assert np.array_equal(sharp[core], soft[core])  # the car is as sharp as before
    far = np.zeros_like(inside)
    far[:40, :] = True  # sky above the car
    contrast = [frame[far].astype(float).std() for frame in (sharp, soft)]
    assert contrast[1] < 0.5 * contrast[0]  # the stripes are washed out


def test_motion_blur_streaks_sideways_only():
    frame = np.zeros((20, 30, 3), dtype=np.float32)
    frame[10, 15] = 255.0  # one bright point
    streak = blur_background(frame, BackgroundBlur("motion", 5 / 30))  # 5 pixels long
    assert np.allclose(streak[10, 13:18, 0], 51.0) and streak[10, :13].max() == 0 and streak[10, 18:].max() == 0
    assert streak[9].max() == 0 and streak[11].max() == 0
    assert np.isclose(streak.sum(), frame.sum())
    with pytest.raises(ValueError, match="blur kind must be one of"):
        blur_background(frame, BackgroundBlur("radial", 0.1))


def test_sampled_background_blur_draws_nothing_at_probability_zero():
    rng = np.random.default_rng(3)
    assert sample_background_blur(rng, 0.0) is None
    assert rng.random() == np.random.default_rng(3).random()  # the stream did not move
    blurs = [sample_background_blur(np.random.default_rng(seed), 1.0) for seed in range(40)]
    assert {blur.kind for blur in blurs} == {"defocus", "motion"}
    assert all(0.002 <= blur.size <= 0.05 for blur in blurs)
    with pytest.raises(ValueError, match="must lie in"):
        sample_background_blur(rng, 1.5)


def test_the_command_line_blurs_backgrounds_and_keeps_old_seeds_reproducible(tmp_path, monkeypatch, capsys):
    from training.synthetic.composite import main

    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01", "02"))
    monkeypatch.setenv("CARSEG_BACKGROUNDS_DIR", str(backgrounds))
    args = ["--cars-dir", str(cars), "--cars", "abc123", "--size", "64x96", "--per-image", "2"]
    before = tmp_path / "before"
    write_composites(cars, ["abc123"], before, 2, (64, 96), seed=0, split="train", backgrounds_root=backgrounds)
    for name, blur in (("zero", "0"), ("all", "1")):
        assert main([*args, "--out", str(tmp_path / name), "--background-blur", blur]) == 0
    files = sorted(path.relative_to(before) for path in before.rglob("*.jpg"))
    assert len(files) == 4
    assert all((before / f).read_bytes() == (tmp_path / "zero" / f).read_bytes() for f in files)
    assert all((before / f).read_bytes() != (tmp_path / "all" / f).read_bytes() for f in files)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "bad"), "--background-blur", "2"])
    assert exit_info.value.code == 2 and "--background-blur must be a probability" in capsys.readouterr().err


def test_car_width_range_sets_the_pasted_width_and_the_default_keeps_old_draws():
    from training.synthetic.composite import CAR_WIDTH_RANGE

    assert sample_params(np.random.default_rng(3)) == sample_params(np.random.default_rng(3), CAR_WIDTH_RANGE)
    rng = np.random.default_rng(4)
    widths = [sample_params(rng, (0.12, 0.2)).car_width for _ in range(50)]
    assert all(0.12 <= width <= 0.2 for width in widths) and max(widths) - min(widths) > 0.04


def test_the_command_line_pastes_small_cars_and_refuses_bad_width_ranges(tmp_path, monkeypatch, capsys):
    from training.synthetic.composite import main

    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01", "02"))
    monkeypatch.setenv("CARSEG_BACKGROUNDS_DIR", str(backgrounds))
    args = ["--cars-dir", str(cars), "--cars", "abc123", "--size", "128x192", "--per-image", "3"]
    assert main([*args, "--out", str(tmp_path / "small"), "--car-width", "0.15,0.2"]) == 0
    masks = sorted((tmp_path / "small" / "train_masks").glob("*.gif"))
    assert len(masks) == 6
    for path in masks:
        columns = np.nonzero(np.asarray(Image.open(path).convert("L")).any(axis=0))[0]
        assert 0.15 * 192 - 2 <= columns.max() + 1 - columns.min() <= 0.2 * 192 + 2, path.name
    for bad, reason in (
        ("0,0.5", "0 < low <= high <= 1"),
        ("0.6,0.5", "0 < low <= high <= 1"),
        ("0.2,1.5", "0 < low <= high <= 1"),
        ("nan,0.5", "0 < low <= high <= 1"),
        ("0.3", "expected LOW,HIGH such as 0.12,0.95"),
        ("a,b", "expected two numbers LOW,HIGH such as 0.12,0.95"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out", str(tmp_path / "bad"), "--car-width", bad])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and "--car-width" in error and reason in error, (bad, error)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="car width range"):
        write_composites(cars, ["abc123"], tmp_path / "bad", 1, (64, 96), seed=0, split="train", car_width=(0.5, 0.4))


def test_every_source_pair_is_checked_before_anything_is_written(tmp_path):
    from tests.test_synthetic_sources import write_photo

    cars, out = tmp_path / "cars", tmp_path / "out"
    for name in ("aaaa_01.jpg", "aaaa_02.jpg"):
        write_photo(cars, name)
    write_photo(cars, "bbbb_01.jpg", mask_size=(192, 128))  # a mask of twice the photo's size
    write_photo(cars, "zzzz_01.jpg", car=False)
    kwargs = {"per_image": 2, "size": (64, 96), "seed": 0, "split": "train", "backgrounds_root": tmp_path / "none"}
    with pytest.raises(ValueError, match=r"bbbb_01_mask.gif' is 192x128 but its image .*bbbb_01.jpg' is 96x64"):
        write_composites(cars, ["aaaa", "bbbb"], out, **kwargs)
    with pytest.raises(ValueError, match=r"zzzz_01_mask.gif: the mask marks no car pixel"):
        write_composites(cars, ["aaaa", "zzzz"], out, **kwargs)
    with pytest.raises(ValueError, match="given twice: aaaa"):
        write_composites(cars, ["aaaa", "aaaa"], out, **kwargs)
    with pytest.raises(ValueError, match="distractors must lie in 0..20"):
        write_composites(cars, ["aaaa"], out, distractors=21, **kwargs)
    assert not out.exists()


def test_a_car_never_falls_on_two_sides_of_the_split(tmp_path):
    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01",))
    kwargs = {"per_image": 1, "size": (64, 96), "seed": 0, "backgrounds_root": backgrounds}
    for split in ("held_out", "validation"):  # into the folder of the source car, which training would train on
        with pytest.raises(ValueError, match=r"car abc123 would fall on several sides: abc123 'train', abc123[hv]0"):
            write_composites(cars, ["abc123"], cars, split=split, **kwargs)
    assert sorted(path.name for path in (cars / "train").iterdir()) == ["abc123_01.jpg"]
    assert not (cars / "splits.json").exists()
    out = tmp_path / "out"
    write_composites(cars, ["abc123"], out, split="train", **kwargs)
    before = (out / "splits.json").read_text()
    with pytest.raises(ValueError, match=r"abc123c0 'train', abc123h0 'test' \(new\)"):
        write_composites(cars, ["abc123"], out, split="held_out", **kwargs)
    assert (out / "splits.json").read_text() == before and not list(out.glob("train/abc123h0_*"))
    (out / "splits.json").write_text("{x")
    with pytest.raises(ValueError, match=re.escape(f"{out / 'splits.json'}: not valid JSON")):
        write_composites(cars, ["abc123"], out, split="train", **kwargs)


def test_the_command_line_refuses_bad_options_before_writing(tmp_path, capsys):
    from tests.test_synthetic_sources import write_photo
    from training.synthetic.composite import main

    write_photo(tmp_path / "cars", "aaaa_01.jpg")
    (tmp_path / "afile").write_text("")
    args = ["--cars-dir", str(tmp_path / "cars"), "--size", "64x96"]
    for extra, reason in (
        (["--cars", "aaaa,aaaa"], "--cars: aaaa named twice"),
        (["--cars", ""], "--cars is empty"),
        (["--cars", " , "], "--cars is empty"),
        (["--cars", "aaaa", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
        (["--cars", "aaaa", "--per-image", "0"], "argument --per-image: must be >= 1, got 0"),
        (["--cars", "aaaa", "--distractors", "21"], "argument --distractors: must lie in 0..20, got 21"),
        (
            ["--cars", "aaaa", "--distractors", "x"],
            "argument --distractors: expected a whole number in 0..20, got 'x'",
        ),
        (["--cars", "aaaa", "--size", "20000x30000"], "height and width must each be at most 4096"),
        (["--cars", "aaaa", "--out", str(tmp_path / "afile")], f"--out '{tmp_path / 'afile'}' is a file"),
        (["--cars", "aaaa", "--out", str(tmp_path / "afile" / "sub")], "which is a file; expected a folder"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out", str(tmp_path / "out"), *extra])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and reason in error, (extra, error)
    assert not (tmp_path / "out").exists()
