"""Kaggle submission files (`img,rle_mask` CSVs, `.csv` or `.csv.gz`): an atomic, resumable writer and a reader.

`SubmissionWriter` never leaves a half-written submission: rows go to a temporary file beside the target, renamed
into place only when every row is written. With the settings that produce the rows it is also resumable, as
`carseg predict` uses it: rows go first to a journal, `<submission>.partial`, flushed to disk after every batch, and
a rerun with the same settings continues it (see `SubmissionWriter`). `read_rle_csv` (from `carseg_hf.rle_csv`) reads
a submission or Kaggle's `train_masks.csv`. The strings themselves are encoded, checked and decoded by `carseg_hf.rle`.
"""

from __future__ import annotations

import csv
import gzip
import inspect
import io
import os
import stat
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .atomic_files import write_atomic
from .predict_record import OutputCheck, check_outputs, read_record, submission_record_path, write_record
from .rle import is_rle_string, rle_problem
from .rle_csv import allow_long_csv_fields, iter_rle_rows
from .rle_csv import read_rle_csv as read_rle_csv  # re-exported: `carseg_hf.submission.read_rle_csv` is documented

#: The first line of every submission and journal.
SUBMISSION_HEADER = "img,rle_mask\n"


def _is_read_only(path: Path) -> bool:
    """Whether a file has no write permission bit, or this user may not write it."""
    return not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)


def check_submission_target(path: str | os.PathLike) -> None:
    """Refuse a submission path that cannot be (re)placed: a folder, a file under a file, or a read-only file.

    A read-only submission (mode 0444, or one this user may not write) is treated as protected, even for a user such
    as root whom the file system would let replace it.

    Args:
        path: Where the submission goes.

    Raises:
        ValueError: Naming the path, what is wrong with it and what to do.
    """
    path = Path(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"cannot write the submission {path}: {parent} is a file, not a folder; choose another path"
                )
            break
    if path.is_dir():
        raise ValueError(
            f"cannot write the submission {path}: it is a folder; expected a FILE.csv or FILE.csv.gz path"
        )
    if path.exists() and _is_read_only(path):
        raise ValueError(
            f"cannot write the submission {path}: the file is read-only (mode {stat.filemode(path.stat().st_mode)}); "
            "make it writable (chmod u+w) or choose another path"
        )


def prepare_submission_target(path: str | os.PathLike) -> None:
    """Check a submission path with `check_submission_target`, then create its folder."""
    check_submission_target(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def journal_path_for(submission: str | os.PathLike) -> Path:
    """The journal of a resumable submission: `FILE.csv` -> `FILE.csv.partial`."""
    submission = Path(submission)
    return submission.with_name(submission.name + ".partial")


def _jpg_name(image_name: str) -> str:
    """Give a bare image id the `.jpg` extension that Kaggle expects."""
    name = os.path.basename(str(image_name))
    return name if os.path.splitext(name)[1] else f"{name}.jpg"


def _caller_stacklevel() -> int:
    """The `stacklevel` of a `warnings.warn` call in this module that names the first frame outside it.

    The caller's line is then the user's `write`, `write_rows`, `finalize` or `SubmissionWriter(...)` (or the end of
    its `with` block), however many of this module's methods lie between.
    """
    here = inspect.currentframe()  # None only on Pythons without frames: the warning then names this module
    frame, level = (here.f_back if here else None), 1  # the function that calls `warnings.warn`
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _csv_row(name: str, rle: str) -> bytes:
    """One `img,rle_mask` line, quoted as the csv module quotes it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([name, rle])
    return buffer.getvalue().encode("utf-8")


class SubmissionWriter:
    """Write `img,rle_mask` rows to a Kaggle submission atomically; given the rows' settings, resumably.

    Plain use, a `with` block: rows go to a temporary file beside `path`, which is renamed to `path` only when the
    block ends without an exception; an interrupted run leaves no half-written submission (and an older submission
    at `path` intact), and the temporary file is removed whatever happens. A path ending in `.gz` (e.g.
    `submission.csv.gz`) is gzip-compressed.

    Resumable use, with `settings` (as `carseg predict` uses it): rows go to a journal, `<path>.partial`, an
    uncompressed `img,rle_mask` CSV made durable (`fsync`) by every `write_rows` call. The settings are recorded in
    `<path>.carseg.json` (see `carseg_hf.predict_record`), which stays beside the finished submission. An existing
    journal, or without one a finished submission, made with the same settings is continued: its names are in
    `done`, and an incomplete last journal line (the process died while writing it) is cut off. `finalize` (or the
    end of a `with` block without an exception) writes the submission from the journal, in the same atomic way, and
    deletes the journal; `close` (or an exception) keeps the journal for the next run.

    A path that cannot be replaced (a read-only file, a folder, a file under a file) is refused with a `ValueError`
    before anything is written: when the `with` block starts in plain use, at construction in resumable use.

    Example:
        ```python
        with SubmissionWriter("submission.csv.gz") as writer:
            writer.write("0004d4463b50_01", rle_encode(mask))
        ```

    Args:
        path: Where the submission goes.
        settings: The settings that produce the rows (`BatchPredictor.settings_record`), for resumable use; None
            for plain use.
        overwrite: In resumable use, start a new journal instead of continuing an existing one.

    Attributes:
        path: The submission.
        journal_path: The journal of resumable use.
        done: The `img` names written (plain use) or in the journal (resumable use).
        count: The rows written to the submission file itself.

    Raises:
        SettingsChangedError: In resumable use, if the journal or the submission holds rows made with other (or
            unrecorded) settings and `overwrite` is not set.
    """

    def __init__(
        self, path: str | os.PathLike, settings: dict[str, Any] | None = None, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        self.journal_path = journal_path_for(self.path)
        self.resumable = settings is not None
        self.done: set[str] = set()
        self.count = 0
        self._tmp_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._file: IO[str] | None = None
        self._raw: IO[bytes] | None = None  # the file under a gzip stream
        self._writer = None
        self._journal: IO[bytes] | None = None
        self._warned_name = False
        if settings is not None:
            self._open_journal(settings, overwrite)

    @staticmethod
    def output_check(submission: str | os.PathLike, settings: dict[str, Any]) -> OutputCheck:
        """The submission as `check_outputs` compares it: its record, and whether it or its journal exists."""
        submission = Path(submission)
        recorded = read_record(submission_record_path(submission))
        has_rows = journal_path_for(submission).exists() or submission.exists()
        return OutputCheck(f"the submission {submission}", recorded, has_rows, settings)

    # ----- plain use -----

    def __enter__(self) -> SubmissionWriter:
        if not self.resumable:
            prepare_submission_target(self.path)
            self._open_output()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.resumable:
            self._close_output(commit=exc_type is None)
        elif exc_type is None:
            self.finalize(self.done)
        else:
            self.close()

    def write(self, image_name: str, rle: str) -> None:
        """Add one row (in resumable use, durable before returning).

        Args:
            image_name: The image's file name or id; `.jpg` is appended when it has no extension.
            rle: The Kaggle RLE string of its mask (`""` for an empty mask).

        Raises:
            ValueError: If the writer is not open, the RLE is not a well-formed Kaggle RLE string (digits and spaces,
                an even count of numbers, starts and lengths of at least 1, sorted runs that do not overlap; see
                `carseg_hf.rle.rle_runs`), or the image was already written.

        Warns:
            UserWarning: Once per writer, for the first name that does not end in `.jpg`: Kaggle's image ids are
                `<car_id>_<NN>.jpg`, so such a row (`.JPG`, `.jpeg`, `.png`) would not match them.
        """
        self.write_rows([(image_name, rle)])

    def write_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        """Add rows: to the submission's temporary file, or in resumable use to the journal, durable before returning.

        Raises:
            ValueError: As `write`; no row of `rows` is written then.
        """
        if (self._journal if self.resumable else self._writer) is None:
            where = "after close" if self.resumable else "outside its `with` block"
            raise ValueError(f"SubmissionWriter.write called {where}")
        batch: set[str] = set()
        checked = []
        for name, rle in rows:
            problem = rle_problem(rle)
            if problem is not None:
                raise ValueError(f"RLE for {str(name)!r}: {problem}")
            checked.append((self._checked_name(name, batch, self.done), rle))
        if self.resumable:
            self._journal.write(b"".join(_csv_row(name, rle) for name, rle in checked))
            self._journal.flush()
            os.fsync(self._journal.fileno())
        else:
            self._writer.writerows(checked)
            self.count += len(checked)
        self.done.update(name for name, _ in checked)

    def _checked_name(self, image_name: str, seen: set[str], written: Collection[str] = frozenset()) -> str:
        """The row's `img` value, after checking the image is neither in `seen` nor in `written`.

        The name is added to `seen`; the first name not ending in `.jpg` is warned about, at the user's line.
        """
        name = _jpg_name(image_name)
        if name in seen or name in written:
            raise ValueError(f"image {name!r} was already written to {self.path}; each image needs exactly one row")
        seen.add(name)
        if not name.endswith(".jpg") and not self._warned_name:
            self._warned_name = True
            warnings.warn(
                f"the submission {self.path} names an image {name!r}, which does not end in '.jpg': Kaggle's image "
                "ids are <car_id>_<NN>.jpg, so its rows would not match them; rename such photos to .jpg for Kaggle "
                "(warned once)",
                stacklevel=_caller_stacklevel(),
            )
        return name

    def _open_output(self) -> None:
        """Open the temporary file of the submission and write the header."""
        if self.path.name.lower().endswith(".gz"):
            self._raw = open(self._tmp_path, "wb")
            # the gzip header names the submission (`sub.csv`), not the temporary file it is written to
            compressed = gzip.GzipFile(filename=self.path.name, mode="wb", fileobj=self._raw)
            self._file = io.TextIOWrapper(compressed, encoding="utf-8", newline="")
        else:
            self._file = open(self._tmp_path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._file.write(SUBMISSION_HEADER)
        self.count = 0

    def _close_output(self, commit: bool) -> None:
        """Close the temporary file and, if `commit`, rename it into place; it is removed whatever happens."""
        assert self._file is not None
        self._file.close()
        if self._raw is not None:  # GzipFile does not close the file object it was given
            self._raw.close()
        self._file, self._writer, self._raw = None, None, None
        try:
            if commit:
                try:
                    os.replace(self._tmp_path, self.path)
                except OSError as error:
                    raise OSError(
                        f"could not move the finished submission into place at {self.path} ({error}); the file "
                        "was left as it was"
                    ) from error
        finally:
            self._tmp_path.unlink(missing_ok=True)  # a no-op after the rename

    # ----- resumable use -----

    def _open_journal(self, settings: dict[str, Any], overwrite: bool) -> None:
        """Check the submission against `settings`, record them, then continue or start the journal."""
        prepare_submission_target(self.path)  # a read-only or impossible target stops the run before it starts
        if not overwrite:
            check_outputs([self.output_check(self.path, settings)])
        write_record(submission_record_path(self.path), settings)
        if overwrite:
            self.journal_path.unlink(missing_ok=True)
        elif not self.journal_path.exists() and self.path.is_file():
            self._seed_journal_from_submission()
        if self.journal_path.exists():
            self._recover_journal()
        else:
            with open(self.journal_path, "wb") as handle:
                handle.write(SUBMISSION_HEADER.encode())
        self._journal = open(self.journal_path, "ab")

    def _seed_journal_from_submission(self) -> None:
        """Continue from a finished submission: its rows count as done (e.g. after fixing a failed image).

        Every row is checked as `write` checks it (see `carseg_hf.rle_csv.iter_rle_rows`). A last row without its
        line break was cut off (an interrupted copy, a full disk): it is dropped with a warning, so that its image is
        segmented again.

        Raises:
            ValueError: Naming the file and line of a bad row, or what is wrong with the file.
        """
        rows: dict[str, str] = {}
        try:
            for row in iter_rle_rows(self.path, check_rle=True, allow_cut_last_row=True):
                if row.complete:
                    rows[row.name] = row.rle
                    continue
                warnings.warn(
                    f"the submission {self.path} ends in a row cut off mid-line (line {row.line}, image "
                    f"{row.name[:60]!r}): the file was truncated; that row is dropped and its image segmented "
                    "again, with any image missing from the file",
                    stacklevel=_caller_stacklevel(),
                )
        except ValueError as error:
            raise ValueError(
                f"cannot continue the finished submission: {error}; delete it or pass --overwrite to start again"
            ) from None
        content = SUBMISSION_HEADER.encode() + b"".join(_csv_row(name, rle) for name, rle in rows.items())
        write_atomic(self.journal_path, lambda tmp: tmp.write_bytes(content), tmp_name=self.journal_path.name + ".tmp")

    def _recover_journal(self) -> None:
        """Read the names already done and cut an incomplete last line."""
        allow_long_csv_fields()
        with open(self.journal_path, "rb") as handle:
            header = handle.readline()
            if header != SUBMISSION_HEADER.encode():
                raise ValueError(
                    f"{self.journal_path} is not a carseg submission journal (header {header[:40]!r}); delete it or "
                    "pass --overwrite"
                )
            valid = len(header)
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                self.done.add(next(csv.reader([line.decode("utf-8")]))[0])
                valid += len(line)
        if valid != self.journal_path.stat().st_size:
            with open(self.journal_path, "r+b") as handle:
                handle.truncate(valid)

    def close(self) -> None:
        """Close the journal file, keeping it on disk."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def finalize(self, names: Collection[str]) -> tuple[int, int]:
        """Write the submission from every journal row, atomically, then delete the journal.

        Rows of images that are not among this run's inputs (a rerun on a subset) are kept: they were made with the
        same settings, which the record guarantees.

        Args:
            names: The `img` values of this run's inputs.

        Returns:
            The number of rows written, and how many of them are of images outside `names`.
        """
        self.close()
        allow_long_csv_fields()
        prepare_submission_target(self.path)
        self._open_output()
        kept, seen, committed = 0, set(), False
        try:
            with open(self.journal_path, encoding="utf-8", newline="") as handle:
                next(handle)  # the header
                for name, rle in csv.reader(handle):  # streamed: the journal may be larger than memory
                    if not is_rle_string(rle):  # `write_rows` checked it fully; this catches a damaged journal
                        raise ValueError(f"RLE for {name!r} must be a string of digits and spaces, got {rle[:40]!r}")
                    self._writer.writerow([self._checked_name(name, seen), rle])
                    self.count += 1
                    kept += name not in names
            committed = True
        finally:
            self._close_output(commit=committed)
        self.journal_path.unlink()
        return self.count, kept
