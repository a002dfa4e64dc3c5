"""Distractor objects in composites: pasted into the scene, never into the mask; a missing cache says how to get it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_composite import PLAIN, _background, _car, cars_and_backgrounds

from training.synthetic.composite import compose, write_composites
from training.synthetic.distractors import (
    PACKAGE,
    STAMPS_DIR,
    StampsNotFoundError,
    load_stamp,
    load_stamps,
    paste_distractors,
    stamp_paths,
)


def _stamp(size: int = 40, colour: tuple[int, int, int] = (20, 20, 230)) -> np.ndarray:
    """A blue disc on a transparent square."""
    ys, xs = np.mgrid[0:size, 0:size]
    disc = (ys - size / 2) ** 2 + (xs - size / 2) ** 2 <= (size / 2 - 1) ** 2
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[disc] = (*colour, 255)
    return rgba


def _fake_stamps(root, folders=("animals", "town", "vehicles")) -> None:
    for index, folder in enumerate(folders):
        path = root / PACKAGE / STAMPS_DIR / folder / f"thing{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_stamp(colour=(20, 20 + 50 * index, 230))).save(path)
    opaque = root / PACKAGE / STAMPS_DIR / "food" / "square.png"
    opaque.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (30, 30), (200, 0, 0, 255)).save(opaque)


def test_distractors_change_the_scene_but_never_the_mask():
    image, mask = _car()
    background = _background()
    plain, plain_label = compose(image, mask, background, PLAIN, np.random.default_rng(0))
    busy, busy_label = compose(image, mask, background, PLAIN, np.random.default_rng(0), distractors=[_stamp()] * 6)
    np.testing.assert_array_equal(busy_label, plain_label)
    outside = plain_label == 0
    changed = np.abs(busy.astype(int) - plain.astype(int)).max(axis=-1) > 30
    assert changed[outside].mean() > 0.005  # the objects are in the scene...
    assert (busy[outside][:, 2] > 200).sum() > 50  # ...in their own colour
    inside = plain_label == 1
    assert np.abs(busy[inside].astype(int) - plain[inside].astype(int)).max() <= 2  # ...and never over the car


def test_transparent_pixels_leave_the_frame_alone():
    frame = np.full((60, 80, 3), 100.0, dtype=np.float32)
    empty = np.zeros((20, 20, 4), dtype=np.uint8)
    np.testing.assert_array_equal(paste_distractors(frame, [empty] * 3, np.random.default_rng(1)), frame)
    pasted = paste_distractors(frame, [_stamp()], np.random.default_rng(1))
    assert pasted.shape == frame.shape and np.array_equal(frame, np.full((60, 80, 3), 100.0))  # input untouched


def test_stamps_come_from_the_allowed_folders_and_opaque_ones_are_skipped(tmp_path):
    _fake_stamps(tmp_path)
    names = [p.name for p in stamp_paths(tmp_path)]
    assert names == ["thing0.png", "square.png", "thing1.png"]  # vehicles/ is not a distractor folder
    with pytest.raises(ValueError, match="square.png: the stamp has no transparent pixel"):
        load_stamp(tmp_path / PACKAGE / STAMPS_DIR / "food" / "square.png")
    stamps = load_stamps(tmp_path, max_side=16)
    assert len(stamps) == 2 and all(s.shape == (16, 16, 4) for s in stamps)


def test_a_missing_cache_says_how_to_fetch_it(tmp_path):
    with pytest.raises(StampsNotFoundError, match="python -m training.synthetic.distractors"):
        stamp_paths(tmp_path)


def test_write_composites_with_distractors_needs_the_stamps_only_when_asked(tmp_path):
    cars, backgrounds = cars_and_backgrounds(tmp_path, ("01",))
    with pytest.raises(StampsNotFoundError, match=PACKAGE):
        write_composites(cars, ["abc123"], tmp_path / "a", 1, (64, 96), 0, "train", backgrounds, distractors=2)
    assert write_composites(cars, ["abc123"], tmp_path / "b", 2, (64, 96), 0, "train", backgrounds) == 2
    _fake_stamps(backgrounds)
    assert write_composites(cars, ["abc123"], tmp_path / "c", 4, (64, 96), 0, "train", backgrounds, distractors=3) == 4
    for k in range(4):
        label = np.asarray(Image.open(tmp_path / "c" / "train_masks" / f"abc123c{k}_01_mask.gif"))
        assert set(np.unique(label)) <= {0, 1} and label.sum() > 0


def _save_stamp(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_stamp()).save(path)


def test_a_partial_unpack_of_the_stamps_says_what_to_delete(tmp_path, capsys):
    from training.synthetic.distractors import FOLDERS, main

    package = tmp_path / PACKAGE
    (package / STAMPS_DIR / "animals").mkdir(parents=True)  # an unpack that stopped early: no stamps yet
    assert main(["--root", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"has no stamps in {', '.join(FOLDERS)}: a partial unpack" in error
    assert f"delete {package} and run" in error and "Traceback" not in error
    for folder in FOLDERS[:-1]:  # some stamps, but the last folder never arrived
        _save_stamp(package / STAMPS_DIR / folder / "thing.png")
    assert main(["--root", str(tmp_path)]) == 2
    assert f"has no stamps in {FOLDERS[-1]}: a partial unpack" in capsys.readouterr().err
    _save_stamp(package / STAMPS_DIR / FOLDERS[-1] / "thing.png")
    assert main(["--root", str(tmp_path)]) == 0
    assert f"found {PACKAGE}: {len(FOLDERS)} stamps" in capsys.readouterr().out
    (tmp_path / "afile").write_text("x")
    assert main(["--root", str(tmp_path / "afile")]) == 2
    assert f"error: --root '{tmp_path / 'afile'}' is a file; expected a folder" in capsys.readouterr().err


def test_the_cache_option_has_both_names_and_expands_the_home_folder(tmp_path, monkeypatch, capsys):
    from training.synthetic.distractors import FOLDERS, main

    for folder in FOLDERS:
        _save_stamp(tmp_path / PACKAGE / STAMPS_DIR / folder / "thing.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    for option in ("--root", "--dir"):
        assert main([option, "~"]) == 0
        out = capsys.readouterr().out
        assert f"found {PACKAGE}: {len(FOLDERS)} stamps" in out and f"CARSEG_BACKGROUNDS_DIR={tmp_path}" in out
    (tmp_path / "afile").write_text("x")
    assert main(["--dir", "~/afile"]) == 2
    assert f"error: --dir '{tmp_path / 'afile'}' is a file" in capsys.readouterr().err
