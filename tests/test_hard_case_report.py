import json

import pytest

from training.synthetic.hard_case_report import hard_case_table, main


def _write(tmp_path, dice, cases):
    per_image = tmp_path / "per_image.csv"
    per_image.write_text("image,car_id,angle,dice\n" + "".join(f"{n},c,1,{d}\n" for n, d in dice.items()))
    metadata = tmp_path / "metadata.jsonl"
    metadata.write_text("".join(json.dumps({"img": n, "hard_cases": c}) + "\n" for n, c in cases.items()))
    return per_image, metadata


def test_groups_by_hard_case():
    dice = {"a.jpg": 1.0, "b.jpg": 0.5, "c.jpg": 0.8}
    cases = {"a.jpg": [], "b.jpg": ["antenna", "roof_rack"], "c.jpg": ["antenna"]}
    rows = {row["case"]: row for row in hard_case_table(dice, cases)}
    assert rows["(all)"]["images"] == 3 and rows["(all)"]["mean_dice"] == pytest.approx(2.3 / 3)
    assert rows["(none)"]["images"] == 1 and rows["(none)"]["mean_dice"] == 1.0
    assert rows["antenna"]["images"] == 2 and rows["antenna"]["mean_dice"] == pytest.approx(0.65)
    assert rows["antenna"]["min_dice"] == 0.5
    assert rows["roof_rack"]["images"] == 1


def test_missing_metadata_is_refused(tmp_path, capsys):
    per_image, metadata = _write(tmp_path, {"a.jpg": 1.0, "b.jpg": 0.9}, {"a.jpg": []})
    assert main(["--per-image", str(per_image), "--metadata", str(metadata)]) == 2
    assert "no metadata record" in capsys.readouterr().err


def test_cli_prints_markdown_and_json(tmp_path, capsys):
    per_image, metadata = _write(tmp_path, {"a.jpg": 0.9, "b.jpg": 0.7}, {"a.jpg": ["dark_paint"], "b.jpg": []})
    out = tmp_path / "rows.json"
    assert main(["--per-image", str(per_image), "--metadata", str(metadata), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| dark_paint | 1 | 0.9000 |" in printed
    assert [row["case"] for row in json.loads(out.read_text())] == ["(all)", "(none)", "dark_paint"]


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        (
            "image,dice\na.jpg,nan\nb.jpg,0.5\n",
            "per_image.csv, line 2, image a.jpg: dice 'nan' is not a number from 0",
        ),
        ("image,dice\na.jpg,0.9\nb.jpg,inf\n", "line 3, image b.jpg: dice 'inf' is not a number from 0 to 1"),
        ("image,dice\na.jpg,7\nb.jpg,-3\n", "line 2, image a.jpg: dice '7' is not a number from 0 to 1"),
        ("image,dice\na.jpg,x\n", "per_image.csv, line 2, image a.jpg: dice 'x' is not a number"),
        ("image,dice\na.jpg,0.9\na.jpg,0.1\nb.jpg,0.5\n", "line 3: image a.jpg is listed again (first on line 2)"),
        ("image,dice\n", "per_image.csv lists no scored image"),
        ("image,dice\n,0.5\n", "line 2: the row names no image"),
    ],
)
def test_a_wrong_dice_file_is_refused_by_file_and_line(tmp_path, capsys, csv_text, message):
    per_image, metadata = _write(tmp_path, {}, {"a.jpg": ["antenna"], "b.jpg": []})
    per_image.write_text(csv_text)
    assert main(["--per-image", str(per_image), "--metadata", str(metadata)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""  # no table at all


def test_a_dice_file_that_is_not_utf8_is_named(tmp_path, capsys):
    per_image, metadata = _write(tmp_path, {"a.jpg": 0.9}, {"a.jpg": []})
    per_image.write_bytes(b"\xff\xfe image,dice\n")
    assert main(["--per-image", str(per_image), "--metadata", str(metadata)]) == 2
    assert f"{per_image} is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"img": "a.jpg", "hard_cases": "antenna"}', "line 1: 'hard_cases' is 'antenna'; expected a list"),
        ("[1, 2]", "line 1: not a metadata record; expected a JSON object"),
        ('{"hard_cases": []}', "line 1: not a metadata record; expected a JSON object with an image name"),
        ("{bad", "line 1: not a metadata record (Expecting property name"),
    ],
)
def test_a_wrong_metadata_record_is_refused_by_file_and_line(tmp_path, capsys, line, message):
    per_image, metadata = _write(tmp_path, {"a.jpg": 0.9}, {})
    metadata.write_text(line + "\n")
    assert main(["--per-image", str(per_image), "--metadata", str(metadata)]) == 2
    assert f"metadata.jsonl, {message}" in capsys.readouterr().err


def test_an_image_recorded_twice_in_the_metadata_is_refused(tmp_path, capsys):
    per_image, metadata = _write(tmp_path, {"a.jpg": 0.9}, {"a.jpg": []})
    metadata.write_text(metadata.read_text() + json.dumps({"img": "a.jpg", "hard_cases": ["antenna"]}) + "\n")
    assert main(["--per-image", str(per_image), "--metadata", str(metadata)]) == 2
    assert "metadata.jsonl, line 2: image a.jpg is recorded again (first on line 1)" in capsys.readouterr().err


def test_out_is_checked_before_anything_is_printed_and_its_folder_is_created(tmp_path, capsys):
    per_image, metadata = _write(tmp_path, {"a.jpg": 0.9}, {"a.jpg": []})
    (tmp_path / "afile").write_text("")
    for out, message in (
        (tmp_path, "is a folder; expected the name of a JSON file"),
        (tmp_path / "afile" / "x.json", "is a file"),
    ):
        assert main(["--per-image", str(per_image), "--metadata", str(metadata), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == ""
    out = tmp_path / "new" / "rows.json"
    assert main(["--per-image", str(per_image), "--metadata", str(metadata), "--out", str(out)]) == 0
    assert [row["case"] for row in json.loads(out.read_text())] == ["(all)", "(none)"]


def test_an_empty_table_is_refused():
    with pytest.raises(ValueError, match="no scored images"):
        hard_case_table({}, {})
