import pytest

from carseg_hf.atomic_files import write_atomic


def test_the_file_appears_whole_and_no_temporary_file_stays(tmp_path):
    target = tmp_path / "out.json"
    seen = []

    def save(tmp):
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp != target and not target.exists()
        tmp.write_text("{}")

    write_atomic(target, save)
    assert target.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert seen[0].name.startswith(".out.json.") and seen[0].name.endswith(".tmp")


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "mask.png"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        tmp.write_bytes(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail, tmp_name=".carseg-tmp-1-mask.png")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png"]
