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
