"""The demo's files on disk: per-request output folders, and the downloads and previews written there.

`TempCleaner` keeps them, and Gradio's empty upload leftovers, bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..overlay import save_mask_png

#: Age after which an empty `tmp*` file in Gradio's cache folder is a leftover: `gr.File(type="filepath")` opens a
#: temporary file there for every upload and never writes or deletes it (gradio 6.31), while an upload in progress
#: fills its own temporary file at once and renames it within the request.
EMPTY_LEFTOVER_AGE_S = 60.0


def request_dir(scratch_dir: str | os.PathLike) -> Path:
    """A fresh folder in the demo's scratch folder for one request's output files, so that requests never collide.

    The scratch folder itself is (re)created when missing, e.g. after a temp-folder cleaner removed it while the
    server was running.
    """
    Path(scratch_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="request-", dir=scratch_dir))


def write_mask_png(mask: np.ndarray, directory: str | os.PathLike, source_name: str | None = None) -> Path:
    """Write the predicted mask as a 0/255 PNG for download.

    Args:
        mask: `(height, width)` 0/1 mask.
        directory: The request's folder (see `request_dir`).
        source_name: The uploaded image's file name; the PNG is called `<stem>_mask.png` after it.

    Returns:
        The written file.
    """
    stem = Path(source_name).stem if source_name else "car"
    stem = re.sub(r"[^\w.-]+", "_", stem).strip("._")[:80] or "car"  # letters of any script; never a hidden file
    return save_mask_png(mask, Path(directory) / f"{stem}_mask.png")


def write_preview(image: Image.Image, directory: str | os.PathLike, name: str) -> str:
    """Write a picture for display as a JPEG file and return its path.

    Files, unlike PIL images, are copied into Gradio's cache atomically (gradio 6.31 rewrites the cached file of a
    returned PIL image in place, so two concurrent requests with the same output can serve a half-written file).

    Args:
        image: An RGB image.
        directory: The request's folder (see `request_dir`).
        name: File name without extension.

    Returns:
        The path of the JPEG.
    """
    path = Path(directory) / f"{name}.jpg"
    image.save(path, format="JPEG", quality=90)
    return str(path)


def prune_scratch(directory: str | os.PathLike, max_age_s: float = 600.0) -> int:
    """Delete entries of the scratch folder older than `max_age_s`, so that disk use does not grow with requests.

    Gradio copies returned files into its own cache before serving them, so old originals are no longer needed.

    Returns:
        The number of entries removed (0 when the folder does not exist; `request_dir` recreates it).
    """
    if not Path(directory).is_dir():
        return 0
    now = time.time()
    removed = 0
    for entry in Path(directory).iterdir():
        try:
            if now - entry.stat().st_mtime < max_age_s:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        except FileNotFoundError:  # removed by a concurrent request
            continue
    return removed


def prune_upload_leftovers(cache_dir: str | os.PathLike, min_age_s: float = EMPTY_LEFTOVER_AGE_S) -> int:
    """Delete the empty `tmp*` files that Gradio leaves at the top of its cache folder (one per uploaded file).

    Gradio's own `delete_cache` never sees them (they are in no component's file set). Only empty regular files
    named `tmp*` and older than `min_age_s` are touched; folders and files with content are Gradio's to manage.

    Args:
        cache_dir: Gradio's cache folder (`gr.Blocks().GRADIO_CACHE`, from `$GRADIO_TEMP_DIR`).
        min_age_s: Files younger than this are kept.

    Returns:
        The number of files removed (0 when the folder does not exist).
    """
    if not Path(cache_dir).is_dir():
        return 0
    now = time.time()
    removed = 0
    for entry in Path(cache_dir).glob("tmp*"):
        try:
            info = entry.lstat()
            if entry.is_file() and not entry.is_symlink() and info.st_size == 0 and now - info.st_mtime >= min_age_s:
                entry.unlink()
                removed += 1
        except FileNotFoundError:  # removed meanwhile
            continue
    return removed


class TempCleaner:
    """Keeps the demo's temporary files bounded: prunes them every `every_s` seconds, and all of them at `stop()`.

    It cleans the demo's scratch folder (per-request output folders older than `max_age_s`; the whole folder at
    `stop()`) and Gradio's empty upload leftovers (see `prune_upload_leftovers`). The timer is a daemon thread.
    """

    def __init__(self, scratch_dir: str | os.PathLike, cache_dir: str | os.PathLike, every_s: float, max_age_s: float):
        """Set up a cleaner; nothing runs before `start()`.

        Args:
            scratch_dir: The demo's scratch folder (see `request_dir`).
            cache_dir: Gradio's cache folder.
            every_s: Seconds between two cleanings.
            max_age_s: Age beyond which a request's output folder is deleted.
        """
        if every_s <= 0 or max_age_s < 0:
            raise ValueError(f"every_s must be > 0 and max_age_s >= 0, got {every_s} and {max_age_s}")
        self.scratch_dir, self.cache_dir = Path(scratch_dir), Path(cache_dir)
        self.every_s, self.max_age_s = every_s, max_age_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def clean(self) -> int:
        """Prune once; returns the number of entries removed."""
        return prune_scratch(self.scratch_dir, self.max_age_s) + prune_upload_leftovers(self.cache_dir)

    def start(self) -> None:
        """Start the timer thread (no-op when it is running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carseg-demo-cleaner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.clean()

    def stop(self) -> None:
        """Stop the timer, delete the whole scratch folder and the upload leftovers (at shutdown).

        Leftovers younger than `EMPTY_LEFTOVER_AGE_S` are kept even then: Gradio's cache may be shared with another
        server whose upload is still being written.
        """
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        shutil.rmtree(self.scratch_dir, ignore_errors=True)
        prune_upload_leftovers(self.cache_dir)
