"""Data loading: Carvana folders (GIF and CSV masks), pair folders, the Hub offline, splits and bad input."""

from __future__ import annotations

import shutil
import time

import datasets
import huggingface_hub.constants
import numpy as np
import pytest
from PIL import Image

from carseg_hf.data import (
    load_carvana,
    load_hub_dataset,
    load_pair_folder,
    load_segmentation_dataset,
    read_image,
    read_mask,
    split_by_car,
)
from carseg_hf.image_io import ImageDecodeError
from tests.fixture import make_carvana_fixture


@pytest.fixture(scope="module")
def carvana(tmp_path_factory):
    return make_carvana_fixture(tmp_path_factory.mktemp("carvana"), num_cars=5, angles=4, size=(64, 48), num_test=3)


@pytest.fixture
def carvana_copy(carvana, tmp_path):
    return shutil.copytree(carvana, tmp_path / "copy")


def test_load_carvana_splits_by_car(carvana):
    data = load_carvana(carvana, validation_fraction=0.4, seed=1)
    assert set(data) == {"train", "validation", "test"}
    train_ids, val_ids = set(data["train"]["car_id"]), set(data["validation"]["car_id"])
    assert not train_ids & val_ids
    assert len(train_ids) == 3 and len(val_ids) == 2
    assert len(data["train"]) == 12 and len(data["validation"]) == 8 and len(data["test"]) == 3
    assert "mask" not in data["test"].column_names
    example = data["train"][0]
    assert example["image"].size == (64, 48) and example["mask"].mode == "P"
    assert example["name"] == f"{example['car_id']}_{example['angle']:02d}.jpg"
    assert sorted(set(data["train"]["angle"])) == [1, 2, 3, 4]
    mask = read_mask(example["mask"])
    assert mask.dtype == np.uint8 and set(np.unique(mask).tolist()) == {0, 1}
    undecoded = data["train"].cast_column("image", datasets.Image(decode=False))[0]["image"]
    assert read_image(undecoded).shape == (48, 64, 3)
    with pytest.raises(ImageDecodeError, match=r"64x48 = 3,072 pixels, over the limit of 3,000"):
        read_image(undecoded, max_pixels=3000)  # refused from the file's header


def test_split_is_deterministic_by_seed(carvana):
    first = load_carvana(carvana, seed=3)["validation"]["car_id"]
    assert load_carvana(carvana, seed=3)["validation"]["car_id"] == first
    seeds = {tuple(sorted(set(load_carvana(carvana, seed=s)["validation"]["car_id"]))) for s in range(6)}
    assert len(seeds) > 1


def test_split_by_car():
    ids = [f"car{i}" for i in range(10) for _ in range(16)]
    train, val = split_by_car(ids, 0.2, seed=0)
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)
    assert split_by_car(list(reversed(ids)), 0.2, seed=0) == (train, val)  # independent of order
    assert split_by_car(["a", "b"], 0.01, seed=0)[1] != []  # at least one car on each side
    assert len(split_by_car(["a", "b"], 0.99, seed=0)[0]) == 1
    assert split_by_car(["a", "b"], 0.0, seed=0) == (["a", "b"], [])
    with pytest.raises(ValueError, match="validation_fraction"):
        split_by_car(ids, 1.0)


def test_csv_fallback_matches_gifs(carvana_copy):
    from_gifs = load_carvana(carvana_copy, seed=0)
    gif_masks = [read_mask(row["mask"]) for row in from_gifs["train"].select(range(4))]
    shutil.rmtree(carvana_copy / "train_masks")
    from_csv = load_carvana(carvana_copy, seed=0)
    assert from_csv["train"]["name"] == from_gifs["train"]["name"]
    for expected, b in zip(gif_masks, from_csv["train"].select(range(4))):
        assert b["mask"].mode == "L"
        np.testing.assert_array_equal(read_mask(b["mask"]), expected)
        assert set(np.unique(np.asarray(b["mask"])).tolist()) <= {0, 255}


def test_pair_folder(tmp_path):
    rng = np.random.default_rng(0)
    for car in ("red", "blue", "green"):
        for angle in (1, 2):
            Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
                tmp_path / f"{car}_{angle:02d}.png"
            )
            Image.fromarray(((rng.random((20, 30)) > 0.5) * 255).astype(np.uint8)).save(
                tmp_path / f"{car}_{angle:02d}_mask.png"
            )
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "lonely.jpg")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "lonely_mask.png")
    data = load_pair_folder(tmp_path, validation_fraction=0.34, seed=0)
    assert len(data["train"]) + len(data["validation"]) == 7
    assert set(data["train"]["car_id"]) | set(data["validation"]["car_id"]) == {"red", "blue", "green", "lonely"}
    assert not set(data["train"]["car_id"]) & set(data["validation"]["car_id"])
    row = next(r for r in data["train"].select_columns(["car_id", "angle"]) if r["car_id"] != "lonely")
    assert row["angle"] in (1, 2)
    assert load_segmentation_dataset(data_dir=tmp_path, seed=0)["train"]["name"] == data["train"]["name"]


def test_pair_folder_refuses_two_files_of_one_name(tmp_path):
    photo = np.zeros((20, 30, 3), np.uint8)
    Image.fromarray(photo).save(tmp_path / "car_01.jpg")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "car_01_mask.png")
    load_pair_folder(tmp_path, validation_fraction=0.0)
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tmp_path / "car_01_mask.gif")  # which mask is it?
    with pytest.raises(ImageDecodeError, match=r"1 name\(s\) .* ambiguous: car_01_mask.gif and car_01_mask.png"):
        load_pair_folder(tmp_path, validation_fraction=0.0)
    (tmp_path / "car_01_mask.gif").unlink()
    Image.fromarray(photo).save(tmp_path / "car_01.png")  # which photo goes with the mask?
    with pytest.raises(ImageDecodeError, match=r"ambiguous: car_01.jpg and car_01.png"):
        load_pair_folder(tmp_path, validation_fraction=0.0)


def test_dispatcher_detects_carvana_and_refuses_both(carvana):
    assert "test" in load_segmentation_dataset(data_dir=carvana)
    with pytest.raises(ValueError, match="exactly one"):
        load_segmentation_dataset(data_dir=carvana, dataset_name="org/name")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_segmentation_dataset(data_dir=carvana / "nope")


def test_image_without_mask_lists_files(carvana_copy):
    masks = sorted((carvana_copy / "train_masks").iterdir())
    for mask in masks[:7]:
        mask.unlink()
    with pytest.raises(ImageDecodeError, match=r"7 image\(s\) have no mask.*\(7 in all\)") as info:
        load_carvana(carvana_copy)
    assert masks[0].name.replace("_mask.gif", ".jpg") in str(info.value)


def test_image_without_csv_row(carvana_copy):
    shutil.rmtree(carvana_copy / "train_masks")
    lines = (carvana_copy / "train_masks.csv").read_text().splitlines()
    (carvana_copy / "train_masks.csv").write_text("\n".join(lines[:-1]) + "\n")
    missing = lines[-1].split(",")[0]
    with pytest.raises(ImageDecodeError, match=f"1 image.*no row.*{missing}"):
        load_carvana(carvana_copy)


def test_every_malformed_csv_row_is_named_at_once(carvana_copy):
    shutil.rmtree(carvana_copy / "train_masks")
    lines = (carvana_copy / "train_masks.csv").read_text().splitlines()
    bad = [lines[1].split(",")[0], lines[2].split(",")[0]]
    lines[1], lines[2] = f"{bad[0]},1 2 3", f"{bad[1]},0 5"  # an odd count; a start of 0
    (carvana_copy / "train_masks.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"train_masks.csv: 2 malformed mask row\(s\): {bad[0]}: .*, {bad[1]}: "):
        load_carvana(carvana_copy)


def test_mask_size_mismatch_names_both_files(carvana_copy):
    mask_path = sorted((carvana_copy / "train_masks").iterdir())[0]
    Image.fromarray(np.zeros((10, 10), np.uint8)).convert("P").save(mask_path, format="GIF")
    image_name = mask_path.name.replace("_mask.gif", ".jpg")
    with pytest.raises(ImageDecodeError, match=rf"{mask_path.name}' is 10x10 but its image .*{image_name}' is 64x48"):
        load_carvana(carvana_copy)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_image_names_file(carvana_copy, damage):
    path = sorted((carvana_copy / "train").iterdir())[2]
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not an image" * 10, "empty": b""}[damage])
    with pytest.raises(ImageDecodeError, match=path.name):
        load_carvana(carvana_copy)


def test_non_binary_mask_normalised_or_refused(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "a_01.png")
    Image.fromarray(image).save(tmp_path / "b_01.png")
    Image.fromarray(np.array([[0, 250] * 4] * 8, np.uint8)).save(tmp_path / "a_01_mask.png")  # near 0/255
    Image.fromarray(np.array([[0, 128] * 4] * 8, np.uint8)).save(tmp_path / "b_01_mask.png")  # ambiguous
    data = load_pair_folder(tmp_path, validation_fraction=0.0)["train"].cast_column(
        "mask", datasets.Image(decode=False)
    )
    by_name = {row["name"]: row["mask"] for row in data}
    assert read_mask(by_name["a_01.png"]).sum() == 32
    with pytest.raises(ImageDecodeError, match="b_01_mask.png.*ambiguous"):
        read_mask(by_name["b_01.png"])


def test_unknown_names_are_ignored_with_warning(carvana_copy):
    (carvana_copy / "train" / "notes.txt").write_text("hello")
    (carvana_copy / "train" / "holiday.jpg").write_bytes((carvana_copy / "test").iterdir().__next__().read_bytes())
    with pytest.warns(UserWarning, match=r"ignoring 2 file\(s\).*holiday.jpg, notes.txt"):
        data = load_carvana(carvana_copy)
    assert len(data["train"]) + len(data["validation"]) == 20


def test_carvana_photo_rule_is_public(tmp_path):
    from carseg_hf.data.carvana import carvana_images, carvana_mask_file, non_carvana_names

    (tmp_path / "train").mkdir()
    (tmp_path / "train_masks").mkdir()
    for name in ("a_02.JPG", "a_01.jpeg", "b_01.png", "a_1.jpg", "notes.txt", ".hidden_01.jpg"):
        (tmp_path / "train" / name).write_bytes(b"")
    for name in ("a_01_mask.gif", "a_01_mask.png", "b_01_mask.png"):
        (tmp_path / "train_masks" / name).write_bytes(b"")
    images = carvana_images(tmp_path / "train")
    assert [(path.name, car, angle) for path, car, angle in images] == [
        ("a_01.jpeg", "a", 1),
        ("a_02.JPG", "a", 2),
        ("b_01.png", "b", 1),
    ]
    assert non_carvana_names(tmp_path / "train") == ["a_1.jpg", "notes.txt"]
    masks = tmp_path / "train_masks"
    assert carvana_mask_file(masks, "a_01") == masks / "a_01_mask.gif"  # the GIF first, as the loader looks
    assert carvana_mask_file(masks, "b_01") == masks / "b_01_mask.png"
    assert carvana_mask_file(masks, "a_02") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", []), (" a , b,", ["a", "b"]), ("a_b", "'a_b' is not a car id"), ("a/b", "'a/b' is not a car id"),
     ("a,b,a,b", "a, b named twice; name each car once")],
)  # fmt: skip
def test_parse_car_ids_checks_the_format_and_refuses_repeats(text, expected):
    from carseg_hf.data.carvana import parse_car_ids

    if isinstance(expected, list):
        assert parse_car_ids(text) == expected
    else:
        with pytest.raises(ValueError, match=f"^--cars: {expected}"):
            parse_car_ids(text, option="--cars")


def test_missing_masks_entirely(carvana_copy):
    shutil.rmtree(carvana_copy / "train_masks")
    (carvana_copy / "train_masks.csv").unlink()
    with pytest.raises(FileNotFoundError, match="train_masks"):
        load_carvana(carvana_copy)


def test_hub_offline_error_is_immediate(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="not in the local cache and HF_HUB_OFFLINE.*--data-dir DIR"):
        load_hub_dataset("someone/carvana-masks")
    with pytest.raises(ConnectionError, match="someone/carvana-masks"):
        load_segmentation_dataset(dataset_name="someone/carvana-masks")
    assert time.perf_counter() - start < 5.0


def test_splits_json_fixes_the_split_by_car(tmp_path):
    import json

    from carseg_hf.data import load_carvana
    from tests.fixture import make_carvana_fixture

    root = make_carvana_fixture(tmp_path / "d", num_cars=3, angles=2, size=(64, 48), seed=3, num_test=0)
    cars = sorted({p.name.rsplit("_", 1)[0] for p in (root / "train").iterdir()})
    (root / "splits.json").write_text(json.dumps({cars[0]: "train", cars[1]: "val", cars[2]: "test"}))
    loaded = load_carvana(root)
    assert set(loaded["train"]["car_id"]) == {cars[0]}
    assert set(loaded["validation"]["car_id"]) == {cars[1]}
    assert set(loaded["heldout"]["car_id"]) == {cars[2]}
    (root / "splits.json").write_text(json.dumps({cars[0]: "train", cars[1]: "val"}))
    with pytest.raises(ValueError, match="have no split"):
        load_carvana(root)
    (root / "splits.json").write_text(json.dumps({cars[0]: "train", cars[1]: "val", cars[2]: "dev"}))
    with pytest.raises(ValueError, match="unknown split names"):
        load_carvana(root)


def test_an_exif_rotated_photo_is_checked_at_its_displayed_size(tmp_path):
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x20 (width x height), displayed rotated by 90 degrees: 20x30
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "car_01.jpg", exif=exif)
    displayed = Image.fromarray(((rng.random((30, 20)) > 0.5) * 255).astype(np.uint8))  # (height 30, width 20)
    displayed.save(tmp_path / "car_01_mask.png")
    data = load_pair_folder(tmp_path, validation_fraction=0.0)
    row = data["train"].cast_column("image", datasets.Image(decode=False))[0]
    assert read_image(row["image"]).shape[:2] == read_mask(row["mask"]).shape == (30, 20)  # trains and evaluates

    displayed.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "car_01_mask.png")  # a mask at the stored size
    with pytest.raises(ImageDecodeError) as info:
        load_pair_folder(tmp_path, validation_fraction=0.0)
    message = str(info.value)
    assert "car_01_mask.png' is 30x20 but its image" in message and "car_01.jpg' is 20x30 as displayed" in message
    assert "stored as 30x20, rotated by its EXIF orientation tag" in message
    assert "the mask has the stored size" in message and "rotate the mask the same way, to 20x30" in message


def test_public_names_are_importable_from_carseg_hf_data():
    import carseg_hf.data

    assert sorted(carseg_hf.data.__all__) == [
        "entry_source",
        "load_carvana",
        "load_hub_dataset",
        "load_pair_folder",
        "load_segmentation_dataset",
        "read_image",
        "read_mask",
        "split_by_car",
    ]
    for name in carseg_hf.data.__all__:
        assert getattr(carseg_hf.data, name).__module__.startswith("carseg_hf.data."), name


def test_loader_warnings_point_at_the_callers_line(carvana_copy, tmp_path):
    (carvana_copy / "train" / "notes.txt").write_text("hello")
    (carvana_copy / "test" / "notes.txt").write_text("hello")
    (carvana_copy / "train_masks" / "nocar_01_mask.gif").write_bytes(
        next((carvana_copy / "train_masks").iterdir()).read_bytes()
    )
    with pytest.warns(UserWarning) as carvana_warnings:
        load_carvana(carvana_copy)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "one_01.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one_01_mask.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "orphan_mask.png")
    with pytest.warns(UserWarning) as pair_warnings:
        load_pair_folder(tmp_path)
    messages = [str(w.message) for w in [*carvana_warnings, *pair_warnings]]
    assert len(messages) == 5, messages
    assert "train whose names are not" in messages[0] and "train_masks without an image" in messages[1]
    assert "test whose names are not" in messages[2]
    assert "mask(s)" in messages[3] and "validation split is empty" in messages[4]
    assert {w.filename for w in [*carvana_warnings, *pair_warnings]} == {__file__}


def test_hub_dataset_columns_are_filled_in_and_train_is_split(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    masks = []
    for index in range(10):
        Image.fromarray(np.full((4, 6), 255 * (index % 2), np.uint8)).save(tmp_path / f"m{index}.png")
        masks.append(str(tmp_path / f"m{index}.png"))
    images = [Image.fromarray(np.full((4, 6, 3), index, np.uint8)) for index in range(10)]
    train = datasets.Dataset.from_dict({"image": images, "mask": masks})  # mask: file paths, cast to images
    requests = []

    def fake_load_dataset(name, revision=None, token=None):
        requests.append((name, revision, token))
        return loaded

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = datasets.DatasetDict({"train": train})
    data = load_hub_dataset("org/cars", validation_fraction=0.3, seed=0, revision="v1", token="t")
    assert requests == [("org/cars", "v1", "t")]
    assert list(data) == ["train", "validation"] and len(data["train"]) == 7 and len(data["validation"]) == 3
    assert not set(data["train"]["car_id"]) & set(data["validation"]["car_id"])
    assert set(data["train"]["car_id"]) | set(data["validation"]["car_id"]) == {f"train-{i}" for i in range(10)}
    assert isinstance(data["train"].features["mask"], datasets.Image)
    assert sorted([*data["train"]["name"], *data["validation"]["name"]]) == [f"train-{i:06d}.png" for i in range(10)]
    assert set(data["train"]["angle"]) == {0}
    assert read_mask(data["train"][0]["mask"]).max() <= 1

    loaded = datasets.DatasetDict({"train": train, "validation": train.select([0, 1])})  # used as it is
    data = load_hub_dataset("org/cars")
    assert len(data["train"]) == 10 and list(data["validation"]["name"]) == [
        "validation-000000.png",
        "validation-000001.png",
    ]
    loaded = datasets.DatasetDict({"train": train.remove_columns("mask")})
    with pytest.raises(ValueError, match=r"split 'train' lacks column\(s\) \['mask'\].*'image' and a 'mask'"):
        load_hub_dataset("org/cars")
    loaded = datasets.DatasetDict({"test": train})
    with pytest.raises(ValueError, match=r"has no 'train' split \(splits: \['test'\]\)"):
        load_hub_dataset("org/cars")
