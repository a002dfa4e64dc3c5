"""Writing a file so that it is either absent, as it was, or whole: save to a temporary name beside it, then rename.

`write_atomic` writes one file; `write_files_atomically` writes several that belong together (a model's config and
weights, a data set's index files), renaming them only once all are saved.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path


def _temporary(path: Path) -> Path:
    """The default temporary file beside `path`: `.<name>.<pid>.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


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
    tmp = path.with_name(tmp_name) if tmp_name else _temporary(path)
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_files_atomically(writes: Mapping[str | os.PathLike, Callable[[Path], object]]) -> None:
    """Write several files so that a failed save leaves every one of them as it was.

    Each file is saved under a temporary name beside it; only when all are saved are they renamed into place, one
    right after another, in the order given. The temporary files are removed whatever happens.

    Args:
        writes: `{path: save}`, where `save(tmp)` writes the content of `path` to the temporary file `tmp`.
    """
    temporaries: dict[Path, Path] = {}
    try:
        for path, save in writes.items():
            path = Path(path)
            temporaries[path] = _temporary(path)
            save(temporaries[path])
        for path, tmp in temporaries.items():
            os.replace(tmp, path)
    finally:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
