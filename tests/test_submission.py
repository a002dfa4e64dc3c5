"""The resumable use of `carseg_hf.submission.SubmissionWriter` (its plain use is tested in test_rle.py)."""

from __future__ import annotations

import gzip

import pytest

from carseg_hf.predict_record import SettingsChangedError, read_record, submission_record_path
from carseg_hf.submission import SubmissionWriter, read_rle_csv

SETTINGS = {"record_version": 1, "threshold": 0.5, "format": "rle"}


def test_rows_go_to_a_durable_journal_until_finalize(tmp_path):
    path = tmp_path / "out" / "sub.csv.gz"
    writer = SubmissionWriter(path, SETTINGS)
    writer.write_rows([("a_01.jpg", "1 2"), ("a_02", "")])
    journal = tmp_path / "out" / "sub.csv.gz.partial"
    assert journal.read_text() == "img,rle_mask\na_01.jpg,1 2\na_02.jpg,\n"  # plain CSV, names as in the submission
    assert not path.exists() and read_record(submission_record_path(path)) == SETTINGS
    with pytest.raises(ValueError, match="already written"):
        writer.write_rows([("a_03.jpg", "1 1"), ("a_01.jpg", "1 1")])
    assert journal.read_text().count("\n") == 3  # nothing of the refused rows
    assert writer.finalize({"a_01.jpg"}) == (2, 1)  # a_02 is not among this run's inputs: kept
    assert gzip.decompress(path.read_bytes()).decode() == "img,rle_mask\na_01.jpg,1 2\na_02.jpg,\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["sub.csv.gz", "sub.csv.gz.carseg.json"]
    with pytest.raises(ValueError, match="after close"):
        writer.write("a_04", "1 1")


def test_a_new_writer_continues_the_journal_or_the_finished_submission(tmp_path):
    path = tmp_path / "sub.csv"
    with pytest.raises(RuntimeError, match="crash"), SubmissionWriter(path, SETTINGS) as writer:
        writer.write("a_01", "1 1")
        raise RuntimeError("crash")
    assert not path.exists()  # an exception keeps the journal for the next run
    with open(tmp_path / "sub.csv.partial", "a") as handle:
        handle.write("a_02.jpg,3 4")  # cut off mid-write, without its newline
    with SubmissionWriter(path, SETTINGS) as writer:
        assert writer.done == {"a_01.jpg"}
        writer.write("a_02", "5 1")
    assert read_rle_csv(path) == {"a_01.jpg": "1 1", "a_02.jpg": "5 1"}
    assert not (tmp_path / "sub.csv.partial").exists()
    again = SubmissionWriter(path, SETTINGS)  # no journal: the finished submission's rows count as done
    assert again.done == {"a_01.jpg", "a_02.jpg"}
    again.close()


def test_other_settings_are_refused_unless_overwrite(tmp_path):
    path = tmp_path / "sub.csv"
    SubmissionWriter(path, SETTINGS).close()
    with pytest.raises(SettingsChangedError, match=r"--threshold: 0\.5 -> 0\.9"):
        SubmissionWriter(path, {**SETTINGS, "threshold": 0.9})
    fresh = SubmissionWriter(path, {**SETTINGS, "threshold": 0.9}, overwrite=True)
    assert fresh.done == set() and read_record(submission_record_path(path))["threshold"] == 0.9
    fresh.close()


def test_a_csv_saved_with_a_byte_order_mark_reads_like_one_without(tmp_path):
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_text("img,rle_mask\na_01.jpg,1 3\n", encoding="utf-8")
    marked.write_text("img,rle_mask\na_01.jpg,1 3\n", encoding="utf-8-sig")  # as spreadsheet programs save it
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_rle_csv(marked) == read_rle_csv(plain) == {"a_01.jpg": "1 3"}


def test_a_gzipped_submission_names_itself_in_its_gzip_header(tmp_path):
    path = tmp_path / "sub.csv.gz"
    with SubmissionWriter(path) as writer:
        writer.write_rows([("a_01.jpg", "1 3")])
    data = path.read_bytes()
    assert data[3] & 0x08  # FNAME is set: the name follows the 10-byte header
    assert data[10 : data.index(b"\0", 10)] == b"sub.csv"  # not the temporary file's name
    assert read_rle_csv(path) == {"a_01.jpg": "1 3"}


def test_a_finished_submission_cut_mid_row_is_continued_without_the_cut_row(tmp_path):
    path = tmp_path / "sub.csv"
    with SubmissionWriter(path, SETTINGS) as writer:
        writer.write_rows([("a_01.jpg", "1 2"), ("a_02.jpg", "1 3 10 5 20 4")])
    path.write_bytes(path.read_bytes()[:-4])  # an interrupted copy: "a_02.jpg,1 3 10 5 2", still an even count
    with pytest.warns(
        UserWarning, match=r"sub\.csv ends in a row cut off mid-line \(line 3, image 'a_02\.jpg'\)"
    ) as caught:
        writer = SubmissionWriter(path, SETTINGS)
    assert [w.filename for w in caught] == [__file__]  # the warning points at the line that made the writer
    assert writer.done == {"a_01.jpg"}  # the cut row is segmented again, not kept as done
    writer.write("a_02.jpg", "1 3 10 5 20 4")
    writer.finalize({"a_01.jpg", "a_02.jpg"})
    assert read_rle_csv(path) == {"a_01.jpg": "1 2", "a_02.jpg": "1 3 10 5 20 4"}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("a_02.jpg,1 2 3", "3 numbers, expected an even count"),
        ("a_02.jpg,5 1 1 1", "not sorted"),
        ("a_02.jpg", "expected 2 fields img,rle_mask, got 1"),
        ("a_01.jpg,3 1", "appears twice"),
    ],
)
def test_a_finished_submission_with_a_bad_row_is_refused_by_file_and_line(tmp_path, row, problem):
    path = tmp_path / "sub.csv"
    with SubmissionWriter(path, SETTINGS) as writer:
        writer.write("a_01.jpg", "1 2")
    path.write_text(f"img,rle_mask\na_01.jpg,1 2\n{row}\na_03.jpg,1 1\n")
    with pytest.raises(
        ValueError, match=rf"continue the finished submission: .*sub\.csv, line 3: .*{problem}.*--overwrite"
    ):
        SubmissionWriter(path, SETTINGS)
    assert not (tmp_path / "sub.csv.partial").exists()  # nothing seeded from it
    SubmissionWriter(path, SETTINGS, overwrite=True).close()  # the way out the message names


def test_a_truncated_gzip_submission_is_refused_with_its_name(tmp_path):
    path = tmp_path / "sub.csv.gz"
    with SubmissionWriter(path, SETTINGS) as writer:
        writer.write_rows([(f"a_{i:02d}.jpg", f"{i + 1} 2 {i + 20} 3") for i in range(1000)])
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"sub\.csv\.gz is a truncated gzip file.*delete it or pass --overwrite"):
        SubmissionWriter(path, SETTINGS)


def test_a_name_warning_points_at_the_callers_line_from_every_method(tmp_path):
    not_jpg = r"names an image 'a_01\.png', which does not end in '\.jpg'"
    with SubmissionWriter(tmp_path / "plain.csv") as plain, pytest.warns(UserWarning, match=not_jpg) as by_write_rows:
        plain.write_rows([("a_01.png", "1 1")])
    resumable = SubmissionWriter(tmp_path / "sub.csv", SETTINGS)
    with pytest.warns(UserWarning, match=not_jpg) as by_write:
        resumable.write("a_01.png", "1 1")
    resumable.close()
    with pytest.warns(UserWarning, match=not_jpg) as by_finalize:
        SubmissionWriter(tmp_path / "sub.csv", SETTINGS).finalize({"a_01.png"})  # the journal's row, checked again
    with pytest.warns(UserWarning, match=not_jpg) as by_block_end:
        with SubmissionWriter(tmp_path / "sub.csv", SETTINGS):  # continues the finished submission
            pass
    caught = [*by_write_rows, *by_write, *by_finalize, *by_block_end]
    assert [w.filename for w in caught] == [__file__] * 4
