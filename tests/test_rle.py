"""Kaggle run-length encoding: known vectors, round trips, the torch encoder and the submission writer."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from carseg_hf.predict.async_copy import rle_encode_torch_async
from carseg_hf.rle import rle_decode, rle_encode, rle_encode_torch, rle_problem
from carseg_hf.submission import SubmissionWriter, read_rle_csv


def naive_encode(mask: np.ndarray) -> str:
    """A deliberately simple pixel-by-pixel reference encoder."""
    out, start = [], None
    flat = (mask != 0).reshape(-1).tolist()
    for index, value in enumerate(flat + [False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            out += [start + 1, index - start]
            start = None
    return " ".join(map(str, out))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[0, 0, 0], [0, 0, 0]], ""),
        ([[1, 1, 1], [1, 1, 1]], "1 6"),
        ([[1, 0, 0], [0, 0, 0]], "1 1"),
        ([[0, 0, 0], [0, 0, 1]], "6 1"),
        ([[1, 1, 0], [0, 1, 1]], "1 2 5 2"),
        ([[0, 1, 1], [1, 0, 0]], "2 3"),  # a run wraps from the end of one row to the next (row-major)
        ([[1, 0, 1], [0, 1, 0]], "1 1 3 1 5 1"),
    ],
)
def test_known_vectors(rows, expected):
    mask = np.array(rows, dtype=np.uint8)
    assert rle_encode(mask) == expected
    np.testing.assert_array_equal(rle_decode(expected, mask.shape), mask)
    assert rle_encode_torch(torch.from_numpy(mask)) == [expected]


def test_any_nonzero_is_car():
    mask = np.array([[0, 255, 7], [0, 0, -1]], dtype=np.int16)
    assert rle_encode(mask) == "2 2 6 1"
    assert rle_encode(mask.astype(bool)) == "2 2 6 1"


def test_column_vs_row_order():
    mask = np.zeros((3, 4), dtype=np.uint8)
    mask[:, 0] = 1  # a vertical line: three separate runs in row-major order
    assert rle_encode(mask) == "1 1 5 1 9 1"


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 96), (1280, 1918)])
def test_round_trip_random(shape):
    rng = np.random.default_rng(sum(shape))
    mask = (rng.random(shape) < 0.5).astype(np.uint8)
    if shape == (1280, 1918):
        mask[:, :] = 0
        mask[100:900, 200:1700] = 1  # blocky like a car, plus noise and the corner pixels
        mask[rng.random(shape) < 0.01] ^= 1
        mask[0, 0] = mask[-1, -1] = 1
    encoded = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(encoded, shape), mask)
    if mask.size < 10_000:
        assert encoded == naive_encode(mask)


def test_torch_matches_numpy_batch():
    rng = np.random.default_rng(3)
    masks = rng.random((5, 17, 23)) < 0.4
    masks[1] = False
    masks[2] = True
    masks[3, 0, 0] = masks[3, -1, -1] = True
    expected = [rle_encode(m) for m in masks]
    assert rle_encode_torch(torch.from_numpy(masks)) == expected
    assert rle_encode_torch(torch.from_numpy(masks.astype(np.int64))) == expected
    assert expected[1] == "" and expected[2] == f"1 {17 * 23}"


def test_torch_rejects_bad_rank():
    with pytest.raises(ValueError, match="batch, height, width"):
        rle_encode_torch(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="rle_encode_torch_async expects"):
        rle_encode_torch_async(torch.zeros(3))
    with pytest.raises(ValueError, match="boundaries_per_row must be >= 1"):
        rle_encode_torch_async(torch.zeros(2, 3, 3), boundaries_per_row=0)


def test_async_torch_matches_numpy_within_its_buffer():
    masks = np.zeros((4, 30, 40), dtype=bool)
    masks[0, 5:25, 8:33] = True  # a block: two boundaries on 20 of the rows
    masks[1, :, :] = True  # one run over the whole mask
    masks[3, 0, 0] = masks[3, -1, -1] = masks[3, 10, 3:9] = True  # corner pixels and a short run
    pending = rle_encode_torch_async(torch.from_numpy(masks), boundaries_per_row=2)
    assert pending.result() == [rle_encode(m) for m in masks]
    assert pending.overflowed is False  # the strings came from the static buffer, not from the fallback
    single = rle_encode_torch_async(torch.from_numpy(masks[0]))  # a 2-D mask is a batch of one
    assert single.result() == [rle_encode(masks[0])]


def test_async_torch_falls_back_when_the_buffer_overflows():
    rng = np.random.default_rng(5)
    masks = rng.random((3, 16, 20)) < 0.5  # about 10 boundaries per row, above the buffer's 1
    pending = rle_encode_torch_async(torch.from_numpy(masks), boundaries_per_row=1)
    assert pending.result() == [rle_encode(m) for m in masks]
    assert pending.overflowed is True


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 2 3", "even count"),
        ("1 a", "only digits"),
        ("1 -2", "only digits"),
        ("0 2", "below 1"),
        ("1 0", "length 0 is below 1"),
        ("5 3", "past the last pixel"),
        ("4 2 1 1", "not sorted"),
        ("1 3 3 1", "overlap"),
        ("1 2\n", r"found '\\n'"),  # a trailing newline is not a digit or a space
        ("99999999999999999999 1", "number 99999999999999999999 is too large"),  # past int64
        ("9223372036854775807 9223372036854775807", "too large"),  # fits int64, but start + length would not
        ("0" * 5000 + "1 1", r"\(5001 digits\) is too large"),  # past Python's digit limit for int()
    ],
)
def test_malformed_strings(rle, message):
    with pytest.raises(ValueError, match=message):
        rle_decode(rle, (2, 3))


def test_rle_problem_says_what_is_wrong_or_none():
    assert rle_problem("1 2 4 1") is None and rle_problem("") is None
    assert rle_problem("1 2 3") == "malformed RLE string: 3 numbers, expected an even count of start/length pairs"
    assert rle_problem(12) == "an RLE mask must be a string, got int"


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), 6, ("a", 3)])
def test_decode_names_a_shape_that_is_not_height_width(shape):
    with pytest.raises(ValueError, match=r"shape=\(height, width\), two integers"):
        rle_decode("1 2", shape)


def test_an_empty_torch_batch_encodes_to_no_strings():
    assert rle_encode_torch(torch.zeros(0, 4, 4)) == []
    assert rle_encode_torch(torch.zeros(0, 4, 4, dtype=torch.bool)) == []


def test_nan_is_refused_not_counted_as_car():
    mask = np.array([[np.nan, 0.0], [1.0, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="rle_encode: the mask holds NaN"):
        rle_encode(mask)
    with pytest.raises(ValueError, match="rle_encode_torch: the mask holds NaN"):
        rle_encode_torch(torch.from_numpy(mask))
    assert rle_encode(np.nan_to_num(mask)) == rle_encode_torch(torch.from_numpy(np.nan_to_num(mask)))[0] == "3 1"


def test_decode_blank_and_adjacent_runs():
    assert rle_decode("  ", (2, 2)).sum() == 0
    np.testing.assert_array_equal(rle_decode("1 1 2 1", (1, 3)), [[1, 1, 0]])  # adjacent runs are accepted


@pytest.mark.parametrize("name", ["sub.csv", "sub.csv.gz"])
def test_submission_writer_round_trip(tmp_path, name):
    path = tmp_path / "out" / name
    with SubmissionWriter(path) as writer:
        writer.write("abc_01", "1 2 5 3")
        writer.write("abc_02.jpg", "")
        with pytest.warns(UserWarning, match=r"'abc_03\.png', which does not end in '\.jpg'"):
            writer.write("dir/abc_03.png", "7 1")  # kept as given, but Kaggle's ids would not match it
    assert writer.count == 3
    assert read_rle_csv(path) == {"abc_01.jpg": "1 2 5 3", "abc_02.jpg": "", "abc_03.png": "7 1"}
    raw = path.read_bytes()
    if name.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw.decode().splitlines()[:2] == ["img,rle_mask", "abc_01.jpg,1 2 5 3"]
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind


def test_submission_writer_is_atomic(tmp_path):
    path = tmp_path / "sub.csv"
    with SubmissionWriter(path) as writer:
        writer.write("old_01", "1 1")
    with pytest.raises(RuntimeError, match="crash"), SubmissionWriter(path) as writer:
        writer.write("new_01", "1 1")
        assert not path.read_text().count("new_01")  # nothing visible at the final path while writing
        raise RuntimeError("crash")
    assert read_rle_csv(path) == {"old_01.jpg": "1 1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv"]


def test_submission_writer_rejects_duplicates_and_bad_rle(tmp_path):
    with SubmissionWriter(tmp_path / "sub.csv") as writer:
        writer.write("a_01", "1 1")
        with pytest.raises(ValueError, match="already written"):
            writer.write("a_01.jpg", "1 1")
        with pytest.raises(ValueError, match="digits and spaces"):
            writer.write("a_02", "1,1")
        for bad, message in [
            ("1 2 3", "3 numbers, expected an even count"),
            ("5 0 1 1", "run length 0 is below 1"),
            ("0 2", "run start 0 is below 1"),
            ("4 2 1 1", "not sorted"),
            ("1 2\n", r"found '\\n'"),  # would be written as a quoted field spanning two lines
            ("99999999999999999999 1", "too large"),
        ]:
            with pytest.raises(ValueError, match=rf"RLE for 'a_02': .*{message}"):
                writer.write("a_02", bad)
        writer.write("a_02", "1 1 2 1")  # adjacent runs are well formed
    assert read_rle_csv(tmp_path / "sub.csv") == {"a_01.jpg": "1 1", "a_02.jpg": "1 1 2 1"}


def test_read_rle_csv_keeps_a_last_row_without_its_line_break_and_leaves_rle_strings_unchecked(tmp_path):
    path = tmp_path / "train_masks.csv"
    path.write_text("img,rle_mask\na_01.jpg,1 2 3\na_02.jpg,4 1")  # saved without a final line break
    assert read_rle_csv(path) == {"a_01.jpg": "1 2 3", "a_02.jpg": "4 1"}


def test_read_rle_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,mask\nx.jpg,1 1\n")
    with pytest.raises(ValueError, match="img.*rle_mask"):
        read_rle_csv(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("img,rle_mask\nx.jpg,1 1\nx.jpg,2 1\n")
    with pytest.raises(ValueError, match="appears twice"):
        read_rle_csv(dup)
    with pytest.raises(FileNotFoundError):
        read_rle_csv(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"img,rle_mask\na_01.jpg,1 1\n\na_02.jpg\n", r"line 4: expected 2 fields img,rle_mask, got 1 .*`name,`"),
        (b"img,rle_mask\na_01.jpg\n", "line 2: expected 2 fields"),  # once read as an empty mask
        (b"img,rle_mask\na_01.jpg,1 1,extra\n", "line 2: expected 2 fields img,rle_mask, got 3"),
        (b"img,rle_mask\na_01.jpg,1 1\na_02.jpg,1 2\xff\n", "line 3: byte 13 is not UTF-8"),
        (b"img,rle_mask\n,1 1\n", "line 2: empty image name"),
    ],
)
def test_read_rle_csv_names_the_file_and_line_of_a_bad_row(tmp_path, content, message):
    path = tmp_path / "train_masks.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"train_masks\.csv, {message}"):
        read_rle_csv(path)
    (tmp_path / "gz.csv.gz").write_bytes(gzip.compress(content))
    with pytest.raises(ValueError, match=rf"gz\.csv\.gz, {message}"):
        read_rle_csv(tmp_path / "gz.csv.gz")


def test_read_rle_csv_refuses_a_truncated_or_corrupt_gzip_file(tmp_path):
    rows = "".join(f"a_{i:02d}.jpg,{i + 1} {i + 2}\n" for i in range(2000))
    data = gzip.compress(("img,rle_mask\n" + rows).encode())
    path = tmp_path / "sub.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"sub\.csv\.gz is a truncated gzip file"):
        read_rle_csv(path)
    path.write_bytes(data[:-8] + bytes(8))  # the checksum and length at the end are wrong
    with pytest.raises(ValueError, match=r"sub\.csv\.gz is not a valid gzip file \(CRC check failed"):
        read_rle_csv(path)
    path.write_bytes(data)
    assert len(read_rle_csv(path)) == 2000


def test_read_rle_csv_accepts_fields_longer_than_the_csv_default(tmp_path):
    import numpy as np

    from carseg_hf.rle import rle_decode, rle_encode
    from carseg_hf.submission import SubmissionWriter, read_rle_csv

    checkerboard = (np.indices((256, 512)).sum(axis=0) % 2).astype(np.uint8)  # 65,536 runs
    rle = rle_encode(checkerboard)
    assert len(rle) > 131072
    path = tmp_path / "noisy.csv"
    with SubmissionWriter(path) as writer:
        writer.write("noisy_01.jpg", rle)
    assert np.array_equal(rle_decode(read_rle_csv(path)["noisy_01.jpg"], (256, 512)), checkerboard)


def test_submission_writer_refuses_a_read_only_submission(tmp_path):
    path = tmp_path / "sub.csv"
    path.write_text("img,rle_mask\nold_01.jpg,1 1\n")
    path.chmod(0o444)
    with pytest.raises(ValueError, match=r"sub\.csv.*read-only.*chmod u\+w"), SubmissionWriter(path) as writer:
        writer.write("new_01", "1 1")
    assert read_rle_csv(path) == {"old_01.jpg": "1 1"}  # not replaced, even by root
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv"]


def test_submission_writer_removes_its_temporary_file_when_the_final_rename_fails(tmp_path):
    path = tmp_path / "sub.csv"
    with pytest.raises(OSError, match=r"could not move the finished submission into place at .*sub\.csv"):
        with SubmissionWriter(path) as writer:
            writer.write("a_01", "1 1")
            path.mkdir()  # something takes the path while the rows are written: the rename cannot replace it
            (path / "keep.txt").write_text("")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv"]  # no .sub.csv.<pid>.tmp left behind


def test_submission_under_a_file_is_refused_with_a_clear_message(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with (
        pytest.raises(ValueError, match=r"taken is a file, not a folder"),
        SubmissionWriter(tmp_path / "taken" / "deeper" / "sub.csv"),
    ):
        pass
    with pytest.raises(ValueError, match="it is a folder"), SubmissionWriter(tmp_path):
        pass
