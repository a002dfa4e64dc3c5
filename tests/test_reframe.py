"""`training.synthetic.reframe`: photos and masks cropped together to portrait, square and wide frames."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from carseg_hf.image_io import load_mask, load_rgb
from tests.fixture import make_carvana_fixture
from tests.test_synthetic_sources import write_photo
from training.synthetic.carvana_pairs import write_pair
from training.synthetic.reframe import ASPECTS, REFRAME_ASPECTS, crop_close_up, crop_to_aspect, main, reframe_folder


def car_photo() -> tuple[np.ndarray, np.ndarray]:
    """A 60x90 photo with a 20x30 car box at rows 20-39, columns 10-39 (centre column 24).

    Each pixel's value encodes its column.
    """
    image = np.repeat(np.arange(90, dtype=np.uint8)[None, :, None], 60, axis=0).repeat(3, axis=2)
    mask = np.zeros((60, 90), np.uint8)
    mask[20:40, 10:40] = 1
    return image, mask


@pytest.mark.parametrize(("ratio", "shape"), [(1.0, (60, 60)), (16 / 9, (60, 34)), (9 / 16, (51, 90))])
def test_the_window_has_the_ratio_and_centres_the_car(ratio, shape):
    image, mask = car_photo()
    frame, label = crop_to_aspect(image, mask, ratio)
    assert frame.shape[:2] == label.shape == shape
    left = int(frame[0, 0, 0])  # the column the window starts at
    assert left == max(0, 24 - shape[1] // 2) and int(label.sum()) == int(mask[:, left : left + shape[1]].sum())


def test_a_shift_moves_the_window_and_it_stays_inside_the_photo():
    image, mask = car_photo()
    centred, _ = crop_to_aspect(image, mask, 16 / 9)
    moved, _ = crop_to_aspect(image, mask, 16 / 9, shift=(0.0, 0.5))
    assert int(moved[0, 0, 0]) == int(centred[0, 0, 0]) + 17
    far, _ = crop_to_aspect(image, mask, 16 / 9, shift=(0.0, 5.0))
    assert int(far[0, -1, 0]) == 89  # clipped at the right edge
    with pytest.raises(ValueError, match="no car pixel"):
        crop_to_aspect(image, np.zeros_like(mask), 1.0)


def test_reframe_folder_writes_matching_pairs_and_merges_the_splits(tmp_path):
    data = make_carvana_fixture(tmp_path / "data", num_cars=2, angles=2, size=(96, 64), write_csv=False)
    (data / "splits.json").write_text(json.dumps({"kept": "val"}))
    cars = sorted({path.stem.rsplit("_", 1)[0] for path in (data / "train").glob("*.jpg")})
    assert reframe_folder(data, cars, data, per_image=2, seed=1) == 8
    splits = json.loads((data / "splits.json").read_text())
    assert splits == {"kept": "val", **{f"{car}r{k}": "train" for car in cars for k in (0, 1)}}
    shapes = set()
    for photo in sorted((data / "train").glob(f"{cars[0]}r*_*.jpg")):
        frame, label = load_rgb(photo), load_mask(data / "train_masks" / f"{photo.stem}_mask.gif")
        assert frame.shape[:2] == label.shape and label.any() and set(np.unique(label)) <= {0, 1}
        height, width = label.shape
        assert any(abs(height / width - dict(ASPECTS)[name]) < 0.05 for name in REFRAME_ASPECTS)
        shapes.add((height, width))
        source = load_mask(data / "train_masks" / f"{cars[0]}_{photo.stem.rsplit('_', 1)[1]}_mask.gif")
        assert label.sum() <= source.sum()  # a crop of the source's mask, never more car
    assert len(shapes) >= 2  # shapes are drawn per frame


def test_reframing_your_own_folder_keeps_it_trainable_and_each_car_on_one_side(tmp_path):
    from carseg_hf.data import load_carvana

    data = make_carvana_fixture(tmp_path / "data", num_cars=5, angles=2, size=(96, 64), write_csv=False)
    cars = sorted({path.stem.rsplit("_", 1)[0] for path in (data / "train").glob("*.jpg")})
    assert not (data / "splits.json").exists()  # the user's own photos: no split file yet
    reframe_folder(data, cars, data, per_image=1, seed=1)
    splits = json.loads((data / "splits.json").read_text())
    assert set(splits) == set(cars) | {f"{car}r0" for car in cars}  # every car has a split, the user's own too
    assert {splits[f"{car}r0"] for car in cars} == {"train", "val"}  # not all "train"
    for car in cars:
        assert splits[f"{car}r0"] == splits[car]  # a reframed car is on the side of the car it shows
    loaded = load_carvana(data)  # and the folder trains
    assert set(loaded["train"]["car_id"]).isdisjoint(loaded["validation"]["car_id"])


def test_reframe_names_what_is_wrong(tmp_path, capsys):
    data = make_carvana_fixture(tmp_path / "data", num_cars=1, angles=1, size=(96, 64), write_csv=False)
    with pytest.raises(ValueError, match="unknown aspect"):
        reframe_folder(data, [], tmp_path / "out", aspects=["2:1 banner"])
    with pytest.raises(FileNotFoundError, match="no <car_id>_<NN>.jpg photos of nocar"):
        reframe_folder(data, ["nocar"], tmp_path / "out")
    with pytest.raises(SystemExit):
        main(["--cars-dir", str(tmp_path), "--out", str(tmp_path / "out")])
    assert "no train/ folder" in capsys.readouterr().err


def test_a_close_up_is_narrower_than_the_car_and_centred_on_the_anchor():
    image, mask = car_photo()  # car box: rows 20-39, columns 10-39 (30 wide)
    frame, label = crop_close_up(image, mask, 1.0, factor=2.0)  # a square window half the box's width
    assert frame.shape[:2] == label.shape == (15, 15)
    left = int(frame[0, 0, 0])
    assert left == round(10 + 0.5 * 29 - 7.5) and label.all()  # inside the car box: all car
    _, high = crop_close_up(image, mask, 1.0, factor=2.0, anchor=(0.0, 0.5))  # centred on the box's top edge
    assert 0 < high.mean() < 1  # half car, half the background above it
    frame, _ = crop_close_up(image, mask, 1.0, factor=2.0, anchor=(0.5, 0.0))
    assert int(frame[0, 0, 0]) == round(10 - 7.5)  # centred on the box's left edge
    tall, _ = crop_close_up(image, mask, 16 / 9, factor=0.5)  # would be 60x107: shrunk to fit, ratio kept
    assert tall.shape[:2] == (60, 34)
    with pytest.raises(ValueError, match="positive"):
        crop_close_up(image, mask, 1.0, factor=0.0)
    with pytest.raises(ValueError, match="no car pixel"):
        crop_close_up(image, np.zeros_like(mask), 1.0, factor=2.0)


def test_reframe_folder_writes_close_ups_with_car_and_background(tmp_path):
    data = make_carvana_fixture(tmp_path / "data", num_cars=2, angles=2, size=(768, 512), write_csv=False)
    cars = sorted({path.stem.rsplit("_", 1)[0] for path in (data / "train").glob("*.jpg")})
    assert reframe_folder(data, cars, tmp_path / "out", seed=3, close_up=(1.2, 2.5)) == 4
    splits = json.loads((tmp_path / "out" / "splits.json").read_text())
    assert splits == {f"{car}z0": "train" for car in cars}
    for photo in sorted((tmp_path / "out" / "train").glob("*z0_*.jpg")):
        label = load_mask(tmp_path / "out" / "train_masks" / f"{photo.stem}_mask.gif")
        source = load_mask(data / "train_masks" / f"{photo.stem.replace('z0_', '_')}_mask.gif")
        cols = np.nonzero(source.any(axis=0))[0]
        assert label.shape[1] < (cols[-1] - cols[0] + 1) / 1.19  # narrower than the car
        assert label.any() and not label.all()


@pytest.mark.parametrize("bad", ["2,1", "1000,1000", "inf,inf", "0.001,0.001", "nan,2", "0.5,2", "2,11"])
def test_close_up_range_is_checked_on_the_command_line(tmp_path, capsys, bad):
    data = make_carvana_fixture(tmp_path / "data", num_cars=1, angles=1, size=(96, 64), write_csv=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--cars-dir", str(data), "--out", str(tmp_path / "out"), "--close-up", bad])
    assert exit_info.value.code == 2 and "1 <= low <= high <= 10" in capsys.readouterr().err
    with pytest.raises(ValueError, match="1 <= low <= high <= 10"):
        reframe_folder(data, [], tmp_path / "out", close_up=(0.5, 2.0))
    assert not (tmp_path / "out").exists()


def test_a_close_up_too_small_to_write_is_refused_before_anything_is_written(tmp_path):
    data = make_carvana_fixture(tmp_path / "data", num_cars=2, angles=1, size=(192, 128), write_csv=False)
    cars = sorted({path.stem.rsplit("_", 1)[0] for path in (data / "train").glob("*.jpg")})
    with pytest.raises(
        ValueError, match=r"_01.jpg: its close-ups .* could be as small as \d+x\d+ pixels, under the 32"
    ):
        reframe_folder(data, cars, tmp_path / "out", close_up=(1.2, 9.0))
    assert not (tmp_path / "out").exists()


def _folder(tmp_path: Path, *names: str, **kwargs) -> Path:
    """A Carvana-layout folder `tmp_path/cars` of plain photos named `names` (see `write_photo`)."""
    for name in names:
        write_photo(tmp_path / "cars", name, **kwargs)
    return tmp_path / "cars"


def test_every_source_pair_is_checked_before_anything_is_written(tmp_path, capsys):
    cars = _folder(tmp_path, "aaaa_01.jpg", "aaaa_02.jpg")
    write_photo(cars, "bbbb_01.jpg", mask_size=(48, 32))  # a mask of half the photo's size
    write_photo(cars, "cccc_01.jpg", car=False)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["--cars-dir", str(cars), "--out", str(out), "--cars", "aaaa,bbbb"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "bbbb_01_mask.gif' is 48x32 but its image" in error and "is 96x64" in error
    with pytest.raises(ValueError, match="cccc_01_mask.gif: the mask marks no car pixel"):
        reframe_folder(cars, ["aaaa", "cccc"], out)
    (out / "train").mkdir(parents=True)
    (out / "splits.json").write_text('["x"]')
    with pytest.raises(ValueError, match=re.escape(f"{out / 'splits.json'}: expected a JSON object")):
        reframe_folder(cars, ["aaaa"], out)
    assert not any((out / "train").iterdir()) and not (out / "train_masks").exists()


def test_photos_are_found_by_the_loaders_rule(tmp_path):
    from carseg_hf.data import load_carvana

    cars = _folder(tmp_path, "aaaa_01.JPG", "aaaa_02.png", "aaaa_03_v2.jpg")
    write_photo(cars, "aaaa_04.jpg", mask_name="aaaa_04_mask.png")
    with pytest.warns(UserWarning, match="ignoring 1 file.*aaaa_03_v2.jpg"):
        assert reframe_folder(cars, ["aaaa"], tmp_path / "out") == 3
    written = sorted(path.name for path in (tmp_path / "out" / "train").iterdir())
    assert written == ["aaaar0_01.jpg", "aaaar0_02.jpg", "aaaar0_04.jpg"]
    assert len(load_carvana(tmp_path / "out")["train"]) == 3  # training reads every frame


def test_the_command_line_refuses_empty_or_repeated_cars_and_bad_options(tmp_path, capsys):
    cars = _folder(tmp_path, "aaaa_01.jpg")
    (tmp_path / "afile").write_text("")
    for extra, reason in (
        (["--cars", "aaaa,aaaa"], "--cars: aaaa named twice"),
        (["--cars", ""], "--cars is empty"),
        (["--cars", ","], "--cars is empty"),
        (["--cars", "aaaa", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
        (["--cars", "aaaa", "--per-image", "0"], "argument --per-image: must be >= 1, got 0"),
        (["--cars", "aaaa", "--max-shift", "0.6"], "--max-shift must lie in [0, 0.5], got 0.6"),
        (["--cars", "aaaa", "--out", str(tmp_path / "afile" / "sub")], "which is a file; expected a folder"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["--cars-dir", str(cars), "--out", str(tmp_path / "out"), *extra])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and reason in error, (extra, error)
    assert not (tmp_path / "out").exists()


def test_reframes_take_the_split_their_source_has_in_its_own_folder(tmp_path):
    cars = _folder(tmp_path, "aaaav0_01.jpg", "bbbb_01.jpg")
    (cars / "splits.json").write_text(json.dumps({"aaaav0": "val", "bbbb": "train"}))
    reframe_folder(cars, ["aaaav0", "bbbb"], tmp_path / "framed")
    assert json.loads((tmp_path / "framed" / "splits.json").read_text()) == {"aaaav0r0": "val", "bbbbr0": "train"}
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "splits.json").write_text(json.dumps({"aaaac0r0": "train", "aaaa": "train"}))
    with pytest.raises(ValueError, match=r"car aaaa would fall on several sides: aaaa 'train', aaaac0r0 'train', "):
        reframe_folder(cars, ["aaaav0"], out)  # validation composites of a car trained on in out


def test_an_interrupted_run_leaves_every_written_frame_with_its_split(tmp_path, monkeypatch, capsys):
    import training.synthetic.reframe as reframe

    cars = _folder(tmp_path, "aaaa_01.jpg", "aaaa_02.jpg", "bbbb_01.jpg")
    calls = []

    def interrupted(*args, **kwargs):  # the real writer, then Ctrl-C after the first frame
        if calls:
            raise KeyboardInterrupt
        calls.append(args[1])
        write_pair(*args, **kwargs)

    monkeypatch.setattr(reframe, "write_pair", interrupted)
    assert main(["--cars-dir", str(cars), "--out", str(tmp_path / "out"), "--cars", "aaaa,bbbb"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert [path.name for path in (tmp_path / "out" / "train").iterdir()] == ["aaaar0_01.jpg"]
    assert json.loads((tmp_path / "out" / "splits.json").read_text()) == {"aaaar0": "train", "bbbbr0": "train"}
