"""Reading `img,rle_mask` CSVs: Kaggle's `train_masks.csv` and submissions (`.csv` or `.csv.gz`).

Every error names the file, and the line where there is one: a row with fewer or more fields than the header (an
empty mask is written `name,`, with an empty field after the comma), text that is not UTF-8, a truncated or corrupt
gzip file. `read_rle_csv` is the reader; `iter_rle_rows` gives each row with its line, for a caller that decides
itself what to do with a bad row (`carseg_hf.submission.SubmissionWriter` continuing a finished submission).
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

#: The columns every `img,rle_mask` CSV has.
RLE_CSV_COLUMNS = ("img", "rle_mask")


@dataclass(frozen=True)
class RleRow:
    """One row of an `img,rle_mask` CSV.

    Attributes:
        line: The line the row starts on (the header is line 1).
        name: The `img` value, stripped of surrounding spaces.
        rle: The `rle_mask` value, stripped of surrounding spaces (not checked: see `carseg_hf.rle.rle_runs`).
        problem: What is wrong with the row's fields (their count, an empty name), or None.
        complete: Whether the row ends with a line break; only the file's last row can lack one (a cut-off file, or
            one saved without a final line break).
    """

    line: int
    name: str
    rle: str
    problem: str | None
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


def _row(line: int, fields: list[str], header: list[str], complete: bool) -> RleRow:
    """The row of a record, with what is wrong with its fields."""
    values = dict(zip(header, fields))
    name, rle = (values.get(column, "").strip() for column in RLE_CSV_COLUMNS)
    problem = None
    if len(fields) != len(header):
        problem = f"expected {len(header)} fields {','.join(header)}, got {len(fields)}"
        if len(fields) < len(header):
            problem += " (an empty mask is written `name,`, with an empty field after the comma)"
    elif not name:
        problem = "empty image name"
    return RleRow(line, name, rle, problem, complete)


def iter_rle_rows(path: str | os.PathLike) -> Iterator[RleRow]:
    """Each row of an `img,rle_mask` CSV (`.csv` or `.csv.gz`, plain or with a byte order mark); blank lines skipped.

    Args:
        path: The CSV file, with a header that has `img` and `rle_mask` columns.

    Yields:
        The rows in file order; a row with the wrong number of fields comes with its `problem`, not an error.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: Naming the file: if the header lacks the columns, the text is not UTF-8 (with the line), a line
            is not CSV (with the line), or a `.gz` file is truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RLE CSV {str(path)!r} does not exist")
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
                    yield _row(start, fields, header, lines.last.endswith(("\n", "\r")))
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


def read_rle_csv(path: str | os.PathLike) -> dict[str, str]:
    """Read `train_masks.csv` or a submission (`.csv` or `.csv.gz`) into `{image name: rle}`.

    Args:
        path: The CSV file, with a header that has `img` and `rle_mask` columns.

    Returns:
        A dict from image file name (as written, e.g. `0004d4463b50_01.jpg`) to its RLE string (not checked: see
        `carseg_hf.rle.rle_runs`), in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: Naming the file and line: as `iter_rle_rows`, and if a row has fewer or more fields than the
            header, has an empty image name, or names an image that appears twice.
    """
    rows: dict[str, str] = {}
    for row in iter_rle_rows(path):
        if row.problem is not None:
            raise ValueError(f"{path}, line {row.line}: {row.problem}")
        if row.name in rows:
            raise ValueError(f"{path}, line {row.line}: image {row.name!r} appears twice")
        rows[row.name] = row.rle
    return rows
