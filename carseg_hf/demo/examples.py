"""Discovering the demo's bundled examples: `<id>_<NN>.jpg` renders, each with its mask when present."""

from __future__ import annotations

import os
import re
from pathlib import Path

_EXAMPLE_IMAGE = re.compile(r"^(?P<stem>[0-9A-Za-z]+_\d{2})\.(?:jpg|jpeg|png)$", re.IGNORECASE)


def find_examples(directory: str | os.PathLike) -> list[list[str | None]]:
    """Discover bundled examples: `<id>_<NN>.jpg` images, each with its `<id>_<NN>_mask.png` (or `.gif`) if present.

    Args:
        directory: The examples folder; a missing folder gives an empty list.

    Returns:
        Sorted `[image_path, mask_path_or_None]` rows, ready for `gr.Examples`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    rows = []
    for path in sorted(directory.iterdir()):
        match = _EXAMPLE_IMAGE.match(path.name)
        if match is None or not path.is_file():
            continue
        masks = [directory / f"{match['stem']}_mask.{ext}" for ext in ("png", "gif")]
        mask = next((str(m) for m in masks if m.is_file()), None)
        rows.append([str(path), mask])
    return rows
