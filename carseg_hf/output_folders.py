"""Checking a command's output folder before anything is written: every command that writes a folder asks here."""

from __future__ import annotations

import os
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
