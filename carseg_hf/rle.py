"""Kaggle Carvana run-length encoding: encoder, decoder, a GPU encoder and a streaming submission writer.

The format: pixels are flattened row by row (row-major), numbered from 1, and each run of car pixels is written as
`start length`, so a mask is a string like `"1 3 10 5"`. An empty mask is the empty string.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
import torch

_RLE_TOKENS = re.compile(r"^[0-9 \t]*$")


def _runs_to_string(starts: np.ndarray, lengths: np.ndarray) -> str:
    """Interleave 1-indexed starts and lengths into the Kaggle string."""
    pairs = np.empty(2 * len(starts), dtype=np.int64)
    pairs[0::2] = starts
    pairs[1::2] = lengths
    return " ".join(map(str, pairs.tolist()))


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask in Kaggle's run-length format.

    Args:
        mask: A `(height, width)` array; any nonzero value is car.

    Returns:
        `"start length start length ..."` with 1-indexed, row-major starts; `""` for an empty mask.

    Raises:
        ValueError: If the mask is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D (height, width) mask, got shape {mask.shape}")
    flat = np.zeros(mask.size + 2, dtype=np.int8)
    flat[1:-1] = mask.reshape(-1) != 0  # (height * width + 2,) padded with background
    boundaries = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 1-indexed positions where a run starts or ends
    starts = boundaries[0::2]
    lengths = boundaries[1::2] - starts
    return _runs_to_string(starts, lengths)


def _as_batch(masks: torch.Tensor, caller: str) -> torch.Tensor:
    """`(batch, height, width)` view of a 2-D or 3-D mask tensor."""
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)  # (1, height, width)
    if masks.dim() != 3:
        raise ValueError(f"{caller} expects (batch, height, width) or (height, width), got {tuple(masks.shape)}")
    return masks


def _run_boundaries(masks: torch.Tensor) -> torch.Tensor:
    """Where each mask changes value, as `(batch, height * width + 1)` bool; entry `i` is 1-indexed pixel `i + 1`."""
    flat = (masks != 0).reshape(masks.shape[0], -1)  # (batch, height * width) bool
    padded = torch.nn.functional.pad(flat.to(torch.uint8), (1, 1))  # (batch, height * width + 2)
    return padded[:, 1:] != padded[:, :-1]  # (batch, height * width + 1)


def _strings_from_boundaries(counts: Sequence[int], positions: np.ndarray) -> list[str]:
    """Split the concatenated 1-indexed boundaries of a batch (`counts[i]` for image i) into RLE strings."""
    encoded, offset = [], 0
    for count in counts:
        boundaries = positions[offset : offset + count]
        offset += count
        starts = boundaries[0::2]
        encoded.append(_runs_to_string(starts, boundaries[1::2] - starts))
    return encoded


def rle_encode_torch(masks: torch.Tensor) -> list[str]:
    """Encode masks on their own device; only the run boundaries are copied to the host.

    This waits for the device twice (for the boundary counts and their positions). `rle_encode_torch_async` does
    the same work without waiting.

    Args:
        masks: A `(batch, height, width)` or `(height, width)` tensor (bool or integer, any device); nonzero is car.

    Returns:
        One Kaggle RLE string per mask.

    Raises:
        ValueError: If the tensor is not 2-D or 3-D.
    """
    changes = _run_boundaries(_as_batch(masks, "rle_encode_torch"))  # (batch, height * width + 1) bool
    counts = changes.sum(dim=1).cpu().tolist()  # boundaries per image
    positions = changes.nonzero()[:, 1].add_(1).cpu().numpy()  # (total boundaries,) 1-indexed, row-major per image
    return _strings_from_boundaries(counts, positions)


class PendingRLE:
    """The RLE strings of a batch whose boundaries are still being computed and copied; see `rle_encode_torch_async`.

    Args:
        masks: The `(batch, height, width)` masks, kept for the exact fallback.
        counts: `(batch,)` boundaries per image, on the host (pinned on CUDA), filled asynchronously.
        positions: `(capacity,)` int32 1-indexed boundaries of all images in order, then zeros, on the host.
        event: Recorded on the device after both copies, or None when the masks are on the CPU.
    """

    def __init__(
        self, masks: torch.Tensor, counts: torch.Tensor, positions: torch.Tensor, event: torch.cuda.Event | None
    ) -> None:
        self.masks = masks
        self.counts = counts
        self.positions = positions
        self.event = event
        self.overflowed: bool | None = None

    def result(self) -> list[str]:
        """Wait for the copies and build the strings (one per mask).

        When the batch has more boundaries than the buffer holds (very noisy masks), the exact synchronous encoder
        runs instead, so the result never depends on the capacity.
        """
        if self.event is not None:
            self.event.synchronize()
        counts = self.counts.tolist()
        self.overflowed = sum(counts) > self.positions.shape[0]
        if self.overflowed:
            return rle_encode_torch(self.masks)
        return _strings_from_boundaries(counts, self.positions.numpy())


def rle_encode_torch_async(masks: torch.Tensor, boundaries_per_row: int = 32) -> PendingRLE:
    """Start encoding masks on their device without waiting for it.

    The boundaries are compacted into a buffer of static size (`torch.nonzero_static`), and the buffer and the
    per-image counts are copied to pinned host memory with `non_blocking=True`, so nothing here waits for the
    device: a CUDA caller can queue the next batch's work before it asks for `result()`. Only
    `batch * height * boundaries_per_row` int32 positions cross to the host whatever the mask holds.

    Args:
        masks: A `(batch, height, width)` or `(height, width)` tensor (bool or integer, any device); nonzero is car.
        boundaries_per_row: The buffer's size per mask row; a car's mask row has 2 to 8 boundaries. A batch with
            more than the buffer holds is encoded again exactly by `PendingRLE.result`.

    Returns:
        A `PendingRLE`; its `result()` gives the same strings as `rle_encode_torch(masks)`.

    Raises:
        ValueError: If the tensor is not 2-D or 3-D, or `boundaries_per_row` is below 1.
    """
    if boundaries_per_row < 1:
        raise ValueError(f"boundaries_per_row must be >= 1, got {boundaries_per_row}")
    masks = _as_batch(masks, "rle_encode_torch_async")
    batch, height = masks.shape[:2]
    changes = _run_boundaries(masks)  # (batch, height * width + 1) bool
    counts = changes.sum(dim=1)  # (batch,) int64
    capacity = batch * height * boundaries_per_row
    # Row-major over (image, position), so each image's boundaries are contiguous; -1 fills the unused tail.
    found = torch.nonzero_static(changes, size=capacity, fill_value=-1)  # (capacity, 2) int64
    index_dtype = torch.int32 if changes.shape[1] < 2**31 else torch.int64
    positions = found[:, 1].to(index_dtype).add_(1)  # (capacity,) 1-indexed; the padding becomes 0
    (host_counts, host_positions), event = copy_to_host_async(counts, positions)
    return PendingRLE(masks, host_counts, host_positions, event)


def copy_to_host_async(*tensors: torch.Tensor) -> tuple[list[torch.Tensor], torch.cuda.Event | None]:
    """Start copying tensors of one device to host memory without waiting for the device.

    On CUDA the copies go to pinned memory with `non_blocking=True`, and an event is recorded after them on the
    current stream of the tensors' device; the host copies may be read once `event.synchronize()` returns. Elsewhere
    the copies are made at once and there is no event.

    Args:
        tensors: Tensors on one device.

    Returns:
        The host tensors, in order, and the event (None off CUDA).
    """
    device = tensors[0].device
    on_cuda = device.type == "cuda"
    copies = [
        torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=on_cuda).copy_(tensor, non_blocking=on_cuda)
        for tensor in tensors
    ]
    event = None
    if on_cuda:
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(device))  # the stream of the tensors' device, not the current device
    return copies, event


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode a Kaggle RLE string into a mask.

    Args:
        rle: `"start length ..."` with 1-indexed row-major starts; an empty (or blank) string is an empty mask.
        shape: `(height, width)` of the mask.

    Returns:
        A `(height, width)` uint8 array of 0 and 1.

    Raises:
        ValueError: If the string holds something other than integers, an odd count of numbers, a start below 1,
            a length below 1, a run past the last pixel, or runs that overlap or are not sorted.
    """
    height, width = (int(v) for v in shape)
    if height < 1 or width < 1:
        raise ValueError(f"rle_decode needs a positive (height, width), got {shape}")
    total = height * width
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        rle = ""
    if not isinstance(rle, str):
        raise ValueError(f"an RLE mask must be a string, got {type(rle).__name__}")
    if not _RLE_TOKENS.match(rle):
        bad = re.sub(r"[0-9 \t]", "", rle)[:10]
        raise ValueError(f"malformed RLE string: only digits and spaces are allowed, found {bad!r} in {rle[:60]!r}")
    numbers = np.array(rle.split(), dtype=np.int64)
    if numbers.size % 2:
        raise ValueError(f"malformed RLE string: {numbers.size} numbers, expected an even count of start/length pairs")
    starts, lengths = numbers[0::2], numbers[1::2]
    if numbers.size == 0:
        return np.zeros((height, width), dtype=np.uint8)
    if starts.min() < 1:
        raise ValueError(f"malformed RLE string: run start {int(starts.min())} is below 1 (starts are 1-indexed)")
    if lengths.min() < 1:
        raise ValueError(f"malformed RLE string: run length {int(lengths.min())} is below 1")
    ends = starts + lengths - 1  # 1-indexed last pixel of each run
    if ends.max() > total:
        index = int(np.argmax(ends > total))
        raise ValueError(
            f"RLE run {int(starts[index])} {int(lengths[index])} ends at pixel {int(ends[index])}, past the last "
            f"pixel {total} of a {height}x{width} mask; is the shape right?"
        )
    if starts.size > 1:
        bad = np.flatnonzero(starts[1:] <= ends[:-1])
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"RLE runs overlap or are not sorted: run {int(starts[i])} {int(lengths[i])} is followed by "
                f"{int(starts[i + 1])} {int(lengths[i + 1])}"
            )
    delta = np.zeros(total + 1, dtype=np.int8)
    delta[starts - 1] = 1
    delta[ends] -= 1
    return np.cumsum(delta[:-1], dtype=np.int8).astype(np.uint8).reshape(height, width)


def _is_gzip_path(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _jpg_name(image_name: str) -> str:
    """Give a bare image id the `.jpg` extension that Kaggle expects."""
    name = os.path.basename(str(image_name))
    return name if os.path.splitext(name)[1] else f"{name}.jpg"


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


class SubmissionWriter:
    """Stream `img,rle_mask` rows to a Kaggle submission, atomically.

    Rows go to a temporary file beside `path`, which is renamed to `path` only when the `with` block ends without an
    exception; an interrupted run leaves no half-written submission (and an older submission at `path` intact), and
    the temporary file is removed whatever happens. A path that cannot be replaced (a read-only file, a folder, a
    file under a file) is refused with a `ValueError` before anything is written.
    A path ending in `.gz` (e.g. `submission.csv.gz`) is gzip-compressed.

    Example:
        ```python
        with SubmissionWriter("submission.csv.gz") as writer:
            writer.write("0004d4463b50_01", rle_encode(mask))
        ```

    Args:
        path: Where the submission goes.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.count = 0
        self._names: set[str] = set()
        self._tmp_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._file: IO[str] | None = None
        self._writer = None

    def __enter__(self) -> SubmissionWriter:
        prepare_submission_target(self.path)
        if _is_gzip_path(self.path):
            self._file = gzip.open(self._tmp_path, "wt", newline="", encoding="utf-8")
        else:
            self._file = open(self._tmp_path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(["img", "rle_mask"])
        return self

    def write(self, image_name: str, rle: str) -> None:
        """Add one row.

        Args:
            image_name: The image's file name or id; `.jpg` is appended when it has no extension.
            rle: The Kaggle RLE string of its mask (`""` for an empty mask).

        Raises:
            ValueError: If the writer is not open, the RLE is not a string of digits and spaces, or the image was
                already written.
        """
        if self._writer is None:
            raise ValueError("SubmissionWriter.write called outside its `with` block")
        if not isinstance(rle, str) or not _RLE_TOKENS.match(rle):
            raise ValueError(f"RLE for {image_name!r} must be a string of digits and spaces, got {str(rle)[:40]!r}")
        name = _jpg_name(image_name)
        if name in self._names:
            raise ValueError(f"image {name!r} was already written to {self.path}; each image needs exactly one row")
        self._names.add(name)
        self._writer.writerow([name, rle])
        self.count += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        assert self._file is not None
        self._file.close()
        self._file, self._writer = None, None
        try:
            if exc_type is None:
                try:
                    os.replace(self._tmp_path, self.path)
                except OSError as error:
                    raise OSError(
                        f"could not move the finished submission into place at {self.path} ({error}); the file "
                        "was left as it was"
                    ) from error
        finally:
            self._tmp_path.unlink(missing_ok=True)  # a no-op after the rename


def allow_long_csv_fields() -> None:
    """Let the csv module read RLE strings longer than its default 128 KiB field limit (noisy masks have them)."""
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(2**30)


def read_rle_csv(path: str | os.PathLike) -> dict[str, str]:
    """Read `train_masks.csv` or a submission (`.csv` or `.csv.gz`) into `{image name: rle}`.

    Args:
        path: The CSV file, with a header that has `img` and `rle_mask` columns.

    Returns:
        A dict from image file name (as written, e.g. `0004d4463b50_01.jpg`) to its RLE string.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the header lacks the columns, or an image appears twice.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RLE CSV {str(path)!r} does not exist")
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    allow_long_csv_fields()
    raw = gzip.open(path, "rb") if gzipped else open(path, "rb")
    rows: dict[str, str] = {}
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        reader = csv.DictReader(text)
        fields = reader.fieldnames or []
        if "img" not in fields or "rle_mask" not in fields:
            raise ValueError(f"{path}: expected a header with columns 'img' and 'rle_mask', got {fields}")
        for line, row in enumerate(reader, start=2):
            name = (row["img"] or "").strip()
            if not name:
                raise ValueError(f"{path}, line {line}: empty image name")
            if name in rows:
                raise ValueError(f"{path}, line {line}: image {name!r} appears twice")
            rows[name] = (row["rle_mask"] or "").strip()
    return rows
