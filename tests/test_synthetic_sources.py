"""The generators' source photos (`carvana_pairs`) and their `splits.json` rules (`split_file`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carseg_hf.image_io import ImageDecodeError
from training.synthetic.carvana_pairs import find_source_photos, parse_car_ids, read_source_pair
from training.synthetic.split_file import derived_from, plan_splits


def write_photo(
    folder: Path,
    name: str,
    size: tuple[int, int] = (96, 64),
    mask_size: tuple[int, int] | None = None,
    mask_name: str | None = None,
    car: bool = True,
) -> None:
    """Write `folder/train/<name>` (a photo of `size`, width first) and its mask (a box of car unless `car` is False).

    The mask is `train_masks/<stem>_mask.gif` unless `mask_name` names another file; `mask_size` defaults to `size`.
    """
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "train_masks").mkdir(exist_ok=True)
    width, height = size
    Image.new("RGB", size, (40, 120, 200)).save(folder / "train" / name)
    mask = np.zeros(((mask_size or size)[1], (mask_size or size)[0]), np.uint8)
    if car:
        mask[mask.shape[0] // 4 : mask.shape[0] * 3 // 4, mask.shape[1] // 8 : mask.shape[1] * 7 // 8] = 255
    Image.fromarray(mask).save(folder / "train_masks" / (mask_name or f"{Path(name).stem}_mask.gif"))


def test_photos_are_found_by_the_loaders_rule_and_other_names_are_named(tmp_path):
    for name in ("aaaa_01.JPG", "aaaa_02.jpg", "aaaa_03.png", "aaaa_04_v2.jpg", "aaaa.jpg", "bbbb_01.jpg"):
        write_photo(tmp_path, name)
    write_photo(tmp_path, "aaaa_05.jpeg", mask_name="aaaa_05_mask.png")
    with pytest.warns(UserWarning, match=r"ignoring 2 file\(s\).*aaaa.jpg, aaaa_04_v2.jpg"):
        photos = find_source_photos(tmp_path, ["aaaa"])
    assert [(p.photo.name, p.mask.name, p.car, p.angle) for p in photos] == [
        ("aaaa_01.JPG", "aaaa_01_mask.gif", "aaaa", "01"),
        ("aaaa_02.jpg", "aaaa_02_mask.gif", "aaaa", "02"),
        ("aaaa_03.png", "aaaa_03_mask.gif", "aaaa", "03"),
        ("aaaa_05.jpeg", "aaaa_05_mask.png", "aaaa", "05"),
    ]


def test_source_photos_name_what_is_missing_or_repeated(tmp_path):
    write_photo(tmp_path, "aaaa_01.jpg")
    write_photo(tmp_path, "aaaa_01.png")
    with pytest.raises(ValueError, match="two photos of one car and angle: aaaa_01"):
        find_source_photos(tmp_path, ["aaaa"])
    (tmp_path / "train" / "aaaa_01.png").unlink()
    (tmp_path / "train" / "bbbb_01.jpg").write_bytes((tmp_path / "train" / "aaaa_01.jpg").read_bytes())
    with pytest.raises(FileNotFoundError, match="no <name>_mask.gif or <name>_mask.png for bbbb_01.jpg"):
        find_source_photos(tmp_path, ["aaaa", "bbbb"])
    with pytest.raises(FileNotFoundError, match="no <car_id>_<NN>.jpg photos of cccc"):
        find_source_photos(tmp_path, ["aaaa", "cccc"])
    with pytest.raises(ValueError, match="given twice: aaaa"):
        find_source_photos(tmp_path, ["aaaa", "aaaa"])


def test_a_pair_is_read_only_when_its_sizes_agree_and_it_shows_a_car(tmp_path):
    write_photo(tmp_path, "good_01.jpg")
    write_photo(tmp_path, "half_01.jpg", mask_size=(48, 32))
    write_photo(tmp_path, "empty_01.jpg", car=False)
    image, mask = read_source_pair(find_source_photos(tmp_path, ["good"])[0])
    assert image.shape == (64, 96, 3) and mask.shape == (64, 96) and set(np.unique(mask)) == {0, 1}
    with pytest.raises(ImageDecodeError, match=r"half_01_mask.gif' is 48x32 but its image .*half_01.jpg' is 96x64"):
        read_source_pair(find_source_photos(tmp_path, ["half"])[0])
    with pytest.raises(ValueError, match=r"empty_01_mask.gif: the mask marks no car pixel"):
        read_source_pair(find_source_photos(tmp_path, ["empty"])[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, ["d1", "d2"]), ("a, b", ["a", "b"]), ("", "--cars is empty"), (" , ", "--cars is empty"),
     ("a,b,a", "--cars: a named twice")],
)  # fmt: skip
def test_car_lists_are_never_empty_or_repeated(text, expected):
    if isinstance(expected, list):
        assert parse_car_ids(text, ["d1", "d2"]) == expected
    else:
        with pytest.raises(ValueError, match=expected):
            parse_car_ids(text, ["d1", "d2"])


def test_derived_ids_are_the_car_followed_by_generator_tags():
    from training.synthetic.composite import SPLITS
    from training.synthetic.split_file import DERIVED_TAGS

    assert set(DERIVED_TAGS) == {tag for tag, _ in SPLITS.values()} | {"r", "z"}  # composites' and reframe's tags
    assert derived_from("abc", "abc") and derived_from("abch0", "abc") and derived_from("abcv1z0r12", "abc")
    assert not derived_from("abcd", "abc") and not derived_from("abch", "abc") and not derived_from("ab", "abc")


def _write_splits(folder: Path, splits: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "splits.json").write_text(json.dumps(splits))


def test_every_image_of_one_car_shares_a_split(tmp_path):
    out = tmp_path / "out"
    _write_splits(out, {"aaaac0": "train", "bbbb": "val"})
    assert plan_splits(out, {"aaaac1": "aaaa"}, "train") == {"aaaac0": "train", "aaaac1": "train", "bbbb": "val"}
    with pytest.raises(ValueError, match=r"aaaa would fall on several sides: aaaac0 'train', aaaah0 'test' \(new\)"):
        plan_splits(out, {"aaaah0": "aaaa"}, "test")
    with pytest.raises(ValueError, match=r"car bbbb .*bbbb 'val', bbbbc0 'train' \(new\)"):
        plan_splits(out, {"bbbbc0": "bbbb"}, "train")
    # a reframe of a composite takes its split, and is checked with the car the composite shows
    assert plan_splits(out, {"aaaac0z0": "aaaac0"})["aaaac0z0"] == "train"
    _write_splits(out, {"aaaa": "val", "aaaac0": "val", "aaaah0r0": "test"})
    with pytest.raises(ValueError, match=r"car aaaa .*aaaa 'val', aaaac0 'val', aaaah0r0 'test', aaaah0r1"):
        plan_splits(out, {"aaaah0r1": "aaaah0"})  # aaaah0 is not in out, but aaaa is


def test_new_ids_take_the_split_of_their_source_folder_and_malformed_files_are_named(tmp_path):
    source, out = tmp_path / "valcomp", tmp_path / "close"
    _write_splits(source, {"aaaav0": "val"})
    assert plan_splits(out, {"aaaav0z0": "aaaav0"}, cars_dir=source) == {"aaaav0z0": "val"}
    assert plan_splits(out, {"bbbbz0": "bbbb"}, cars_dir=source) == {"bbbbz0": "train"}  # unknown: train
    bad = {"{x": "not valid JSON", '["x"]': "expected a JSON object", '{"a": "dev"}': "unknown split names"}
    for folder in (source, out):  # the file the new ids' splits come from, then the one they go to
        for text, reason in bad.items():
            _write_splits(folder, {})
            (folder / "splits.json").write_text(text)
            with pytest.raises(ValueError, match=re.escape(f"{folder / 'splits.json'}: {reason}")):
                plan_splits(out, {"aaaav0z0": "aaaav0"}, cars_dir=source)
        _write_splits(folder, {"aaaav0": "val"})


def test_a_folder_without_split_file_gets_trainings_default_and_lookalike_ids_stay_apart(tmp_path):
    for car in ("car1", "car2", "car3", "car4", "car5"):  # "car1" is "ca" + a tag, but no car "ca" is there
        write_photo(tmp_path, f"{car}_01.jpg")
    planned = plan_splits(tmp_path, {"car1r0": "car1", "car2r0": "car2"})
    assert {planned[car] for car in ("car1", "car2", "car3", "car4", "car5")} == {"train", "val"}
    assert planned["car1r0"] == planned["car1"] and planned["car2r0"] == planned["car2"]
    val_car = next(car for car in ("car1", "car2", "car3", "car4", "car5") if planned[car] == "val")
    with pytest.raises(ValueError, match=r"has no splits.json yet: its own cars take the split that training"):
        plan_splits(tmp_path, {f"{val_car}h0": val_car}, "test")
