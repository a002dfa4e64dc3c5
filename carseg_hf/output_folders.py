"""Checking a command's output before anything is written: every command that writes a folder or a file asks here."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def output_folder_problem(folder: str | os.PathLike, option: str) -> str | None:
    """Why `folder` cannot be created or used as an output folder, or None: it, or a folder above it, is a file.

    Args:
        folder: The output folder, existing or not.
        option: The option that named it, for the message (e.g. `--out`).
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        return f"{option} {str(folder)!r} is a file; expected a folder"
    above = next((parent for parent in path.parents if parent.exists()), None)
    if above is not None and not above.is_dir():
        return f"{option} {str(folder)!r} lies under {str(above)!r}, which is a file; expected a folder"
    return None


def output_file_problem(
    path: str | os.PathLike, option: str, expected: str = "the name of a file to write"
) -> str | None:
    """Why the file `path` cannot be written or replaced, or None.

    Refused: a folder, a path under a file, a read-only file (treated as protected, even for a user such as root whom
    the file system would let replace it), and a folder this user may not write in.

    Args:
        path: The file to write, existing or not; its folder may not exist yet.
        option: What names the file, for the message (e.g. `--out` or "the ONNX file").
        expected: What `path` should be, for the message when it is a folder.

    Returns:
        `"cannot write OPTION PATH: REASON"`, or None.
    """
    path = Path(path)
    reason = None
    if path.is_dir():
        reason = f"it is a folder; expected {expected}"
    elif (problem := output_folder_problem(path.parent, "its folder")) is not None:
        reason = problem
    elif path.exists() and _read_only(path):
        mode_text = stat.filemode(path.stat().st_mode)
        reason = f"the file is read-only (mode {mode_text}); make it writable (chmod u+w) or choose another path"
    elif (folder := next((p for p in path.parents if p.exists()), None)) is not None and not os.access(
        folder, os.W_OK | os.X_OK
    ):
        reason = f"no permission to write in the folder {folder}"
    return None if reason is None else f"cannot write {option} {path}: {reason}"


def _read_only(path: Path) -> bool:
    """Whether the file has no write permission bit, or this user may not write it."""
    mode = path.stat().st_mode
    return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)
