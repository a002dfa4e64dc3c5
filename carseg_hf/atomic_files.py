"""Writing a file so that it is either absent, as it was, or whole: save to a temporary name beside it, then rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, save: Callable[[Path], object], tmp_name: str | None = None) -> None:
    """Call `save(tmp)` on a temporary file beside `path`, then rename it into place.

    An interrupted or failed write leaves `path` as it was (a rename within one folder is atomic), and the temporary
    file is removed whatever happens.

    Args:
        path: The file to write.
        save: Writes the content to the path it is given.
        tmp_name: The temporary file's name in the same folder; by default `.<name>.<pid>.tmp`.
    """
    path = Path(path)
    tmp = path.with_name(tmp_name or f".{path.name}.{os.getpid()}.tmp")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
