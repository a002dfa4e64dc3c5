"""Reading `img,rle_mask` CSVs: Kaggle's `train_masks.csv` and submissions (`.csv` or `.csv.gz`).

Every error names the file, and the line where there is one: a row with fewer or more fields than the header (an
empty mask is written `name,`, with an empty field after the comma), text that is not UTF-8, a truncated or corrupt
gzip file, an image named twice, and on request a malformed RLE string. `read_rle_csv` is the reader; `iter_rle_rows`
gives the same checked rows one at a time, with their lines, and can leave a cut-off last row to its caller
(`carseg_hf.submission.SubmissionWriter` continuing a finished submission).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .rle import rle_problem

#: The columns every `img,rle_mask` CSV has.
RLE_CSV_COLUMNS = ("img", "rle_mask")


@dataclass(frozen=True)
class RleRow:
    """One row of an `img,rle_mask` CSV.

    Attributes:
        line: The line the row starts on (the header is line 1).
        name: The `img` value, stripped of surrounding spaces.
        rle: The `rle_mask` value, stripped of surrounding spaces.
        complete: Whether the row ends with a line break; only the file's last row can lack one (a cut-off file, or
            one saved without a final line break).
    """

    line: int
    name: str
    rle: str
    complete: bool


class _Lines:
    """A text file's lines for `csv.reader`, remembering the last one read."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.last = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._text)
        return self.last


def allow_long_csv_fields() -> None:
    """Let the csv module read RLE strings longer than its default 128 KiB field limit (noisy masks have them)."""
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(2**30)


def _is_gzipped(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _first_non_utf8_line(path: Path, gzipped: bool) -> tuple[int, int] | None:
    """`(line, byte within it)` of the first byte that is not UTF-8, or None if none is found."""
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as raw:
        for number, line in enumerate(raw, start=1):  # a line break is never part of a multi-byte UTF-8 sequence
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, error.start + 1
    return None


def _fields_problem(fields: list[str], header: list[str], name: str) -> str | None:
    """What is wrong with a record's fields (their count, an empty image name), or None."""
    if len(fields) != len(header):
        problem = f"expected {len(header)} fields {','.join(header)}, got {len(fields)}"
        if len(fields) < len(header):
            problem += " (an empty mask is written `name,`, with an empty field after the comma)"
        return problem
    return None if name else "empty image name"


def _records(path: Path) -> Iterator[tuple[int, list[str], list[str], bool]]:
    """`(line, fields, header, ends with a line break)` of each non-blank record of an `img,rle_mask` CSV.

    Raises:
        ValueError: Naming the file: as `iter_rle_rows`, for what is wrong with the file itself.
    """
    allow_long_csv_fields()
    gzipped, line = _is_gzipped(path), 0
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as raw:
            lines = _Lines(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            reader = csv.reader(lines)
            header = next(reader, [])
            if not set(RLE_CSV_COLUMNS) <= set(header):
                raise ValueError(f"{path}: expected a header with columns 'img' and 'rle_mask', got {header}")
            line = reader.line_num
            for fields in reader:
                start, line = line + 1, reader.line_num
                if fields:  # a blank line gives no fields
                    yield start, fields, header, lines.last.endswith(("\n", "\r"))
    except EOFError:
        raise ValueError(
            f"{path} is a truncated gzip file: it ends before the end of its compressed data (an interrupted copy?)"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"{path} is not a valid gzip file ({error})") from None
    except UnicodeDecodeError:
        where = _first_non_utf8_line(path, gzipped)
        at = f", line {where[0]}: byte {where[1]} is" if where else " is"
        raise ValueError(f"{path}{at} not UTF-8 text; save the file as UTF-8") from None
    except csv.Error as error:
        raise ValueError(f"{path}, line {line + 1}: not a valid CSV line ({error})") from None


def iter_rle_rows(
    path: str | os.PathLike, *, check_rle: bool = False, allow_cut_last_row: bool = False
) -> Iterator[RleRow]:
    """Each row of an `img,rle_mask` CSV (`.csv` or `.csv.gz`, plain or with a byte order mark), checked.

    Blank lines are skipped. Every row is checked for its number of fields, a non-empty image name and an image
    named only once, and with `check_rle` for a well-formed RLE string (see `carseg_hf.rle.rle_runs`).

    Args:
        path: The CSV file, with a header that has `img` and `rle_mask` columns.
        check_rle: Also check each row's RLE string.
        allow_cut_last_row: Yield a last row that lacks its line break (a cut-off file) unchecked, with `complete`
            False, for the caller to drop; without it such a row is read like any other (a file saved without a
            final line break).

    Yields:
        The rows in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: Naming the file, and the line where there is one: if the header lacks the columns, the text is
            not UTF-8, a line is not CSV, a `.gz` file is truncated or corrupt, or a row has fewer or more fields
            than the header, an empty image name, an image that appears twice or (with `check_rle`) a malformed
            RLE string.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RLE CSV {str(path)!r} does not exist")
    seen: set[str] = set()
    for line, fields, header, complete in _records(path):
        values = dict(zip(header, fields))
        name, rle = (values.get(column, "").strip() for column in RLE_CSV_COLUMNS)
        row = RleRow(line, name, rle, complete)
        if not complete and allow_cut_last_row:
            yield row
            return
        problem = _fields_problem(fields, header, row.name)
        if problem is None and row.name in seen:
            problem = f"image {row.name!r} appears twice"
        if problem is None and check_rle:
            problem = rle_problem(row.rle)
        if problem is not None:
            raise ValueError(f"{path}, line {line}: {problem}")
        seen.add(row.name)
        yield row


def read_rle_csv(path: str | os.PathLike) -> dict[str, str]:
    """Read `train_masks.csv` or a submission (`.csv` or `.csv.gz`) into `{image name: rle}`.

    Args:
        path: The CSV file, with a header that has `img` and `rle_mask` columns.

    Returns:
        A dict from image file name (as written, e.g. `0004d4463b50_01.jpg`) to its RLE string (not checked: see
        `carseg_hf.rle.rle_runs`), in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: Naming the file, and the line where there is one: as `iter_rle_rows` (without `check_rle`).
    """
    return {row.name: row.rle for row in iter_rle_rows(path)}
