"""`carseg predict` never loses a photo nor keeps a result that is not this run's.

- Outputs may not land on the input photos, nor in a folder the run reads photos from.
- An output holding the result of another photo of the same name is refused; a copy of the same photo is done.
- `--overwrite` leaves no result of the earlier run behind.
- A network input larger than any photo carseg reads is refused before anything runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carseg_hf.predict import BatchPredictor, PredictOptions
from carseg_hf.predict.sources import SourceChangedError


def _photo(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((48, 72, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _run(model, processor, inputs, **options) -> object:
    options = dict(progress=False, workers=1, **options)
    return BatchPredictor(model, processor, "cpu", PredictOptions(**options)).run([str(i) for i in inputs])


def test_outputs_never_land_on_input_photos_or_in_an_input_folder(tiny_model, tiny_processor, tmp_path):
    photo = _photo(tmp_path / "shots" / "car.png", seed=0)
    before = photo.read_bytes()
    with pytest.raises(ValueError, match=r"--out .*shots' is also an input folder"):
        _run(tiny_model, tiny_processor, [tmp_path / "shots"], out_dir=tmp_path / "shots")
    with pytest.raises(ValueError, match=r"the output of .*car.png' would overwrite the input photo"):
        _run(tiny_model, tiny_processor, [photo], out_dir=tmp_path / "shots")
    with pytest.raises(ValueError, match=r"--overlay .*shots' is also an input folder"):
        _run(tiny_model, tiny_processor, [tmp_path / "shots"], overlay_dir=tmp_path / "shots")
    assert photo.read_bytes() == before and sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["car.png"]


def test_a_photo_of_the_same_name_is_refused_and_a_copy_of_the_same_one_is_done(tiny_model, tiny_processor, tmp_path):
    first, other = _photo(tmp_path / "a" / "x.jpg", seed=1), _photo(tmp_path / "b" / "x.jpg", seed=2)
    outputs = dict(out_dir=tmp_path / "masks", submission=tmp_path / "sub.csv")
    assert _run(tiny_model, tiny_processor, [first], **outputs).processed == 1
    mask = (tmp_path / "masks" / "x.png").read_bytes()
    with pytest.raises(
        SourceChangedError, match=r"(?s)masks folder .* x.png: made from .*a/x.jpg .*this run has .*b/x"
    ):
        _run(tiny_model, tiny_processor, [other], **outputs)
    with pytest.raises(SourceChangedError, match=r"the submission .*sub.csv holds results of other photos"):
        _run(tiny_model, tiny_processor, [other], submission=tmp_path / "sub.csv")
    assert (tmp_path / "masks" / "x.png").read_bytes() == mask  # nothing was written
    copy = tmp_path / "c" / "x.jpg"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    summary = _run(tiny_model, tiny_processor, [copy], **outputs)
    assert summary.processed == 0 and summary.skipped == 1  # the same photo, moved: nothing to redo
    first.write_bytes(other.read_bytes())  # the photo replaced in place
    with pytest.raises(SourceChangedError, match="x.png: made from"):
        _run(tiny_model, tiny_processor, [first], **outputs)
    assert _run(tiny_model, tiny_processor, [other], overwrite=True, **outputs).processed == 1
    assert (tmp_path / "masks" / "x.png").read_bytes() != mask


def test_a_sources_journal_cut_off_by_a_killed_run_is_mended(tiny_model, tiny_processor, tmp_path):
    photos = [_photo(tmp_path / "in" / f"car_{i}.jpg", seed=i) for i in range(2)]
    _run(tiny_model, tiny_processor, photos, out_dir=tmp_path / "masks")
    journal = tmp_path / "masks" / ".carseg-masks-sources.jsonl"
    lines = journal.read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["car_0.png", "car_1.png"]
    journal.write_text(lines[0] + "\n" + lines[1][:20])  # the process died while writing the second line
    assert _run(tiny_model, tiny_processor, photos, out_dir=tmp_path / "masks").skipped == 2
    assert journal.read_text().endswith("\n") and len(journal.read_text().splitlines()) == 1


def test_overwrite_leaves_no_result_of_the_earlier_run(tiny_model, tiny_processor, tmp_path):
    photos = [_photo(tmp_path / "in" / f"car_{i}.jpg", seed=i) for i in range(3)]
    _run(tiny_model, tiny_processor, photos, out_dir=tmp_path / "out", mask_format="gif")
    (tmp_path / "out" / "notes.txt").write_text("the user's own file")
    _run(tiny_model, tiny_processor, photos[:1], out_dir=tmp_path / "out", threshold=0.9, overwrite=True)
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert names == ["car_0.png", "notes.txt"]  # the earlier GIFs are gone; what carseg did not write stays


def test_a_network_input_larger_than_any_photo_is_refused():
    with pytest.raises(ValueError, match=r"--resolution 100000x100000 is 10,000,000,000 pixels, over the limit"):
        PredictOptions(out_dir="masks", resolution=(100000, 100000)).validate()
    PredictOptions(out_dir="masks", resolution=(1280, 1920)).validate()


def test_an_output_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / "afile").write_text("")
    for option, field in (("--out", "out_dir"), ("--overlay", "overlay_dir")):
        with pytest.raises(ValueError, match=rf"{option} '.*afile' is a file; expected a folder"):
            PredictOptions(**{field: tmp_path / "afile"}).validate_outputs()


def test_a_corrupt_journal_line_is_named_by_its_number(tiny_model, tiny_processor, tmp_path):
    photos = [_photo(tmp_path / "in" / f"car_{i}.jpg", seed=i) for i in range(2)]
    _run(tiny_model, tiny_processor, photos, out_dir=tmp_path / "masks")
    journal = tmp_path / "masks" / ".carseg-masks.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], lines[1], "{oops", *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=r"\.carseg-masks\.jsonl, line 3: not a carseg journal .*--overwrite"):
        _run(tiny_model, tiny_processor, photos, out_dir=tmp_path / "masks")


@pytest.mark.filterwarnings("ignore:the submission .* does not end in '.jpg'")  # .png inputs on purpose
def test_every_pair_of_inputs_that_would_share_an_output_name_is_listed(tiny_model, tiny_processor, tmp_path):
    photos = [
        _photo(tmp_path / folder / name, seed=i)
        for i, (folder, name) in enumerate([("a", "x.jpg"), ("b", "x.jpg"), ("a", "y.jpg"), ("a", "y.png")])
    ]
    with pytest.raises(ValueError, match="predict them in separate runs") as error:
        _run(tiny_model, tiny_processor, photos, out_dir=tmp_path / "masks")
    assert re.search(r"a/x.jpg' and '[^']*b/x.jpg' would write the same output name 'x'", str(error.value))
    assert re.search(r"a/y.jpg' and '[^']*a/y.png' would write the same output name 'y'", str(error.value))
    assert not (tmp_path / "masks").exists()
    _run(tiny_model, tiny_processor, photos[2:], submission=tmp_path / "sub.csv")  # rows are named by file name
