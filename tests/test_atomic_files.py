import pytest

from carseg_hf.atomic_files import write_atomic, write_files_atomically


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


def test_files_written_together_are_all_left_as_they_were_when_one_fails(tmp_path):
    first, second = tmp_path / "config.json", tmp_path / "model.safetensors"
    first.write_text("old config")
    second.write_text("old weights")

    def fail(tmp):
        tmp.write_text("half the new weights")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_files_atomically({first: lambda tmp: tmp.write_text("new config"), second: fail})
    assert (first.read_text(), second.read_text()) == ("old config", "old weights")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    write_files_atomically({first: lambda tmp: tmp.write_text("new config"), second: lambda tmp: tmp.write_text("w")})
    assert (first.read_text(), second.read_text()) == ("new config", "w")
