"""The renderer's output folder: which files an earlier render left there, and swapping a finished render in.

The renderer writes its images and index files into a staging folder (`STAGING`, inside `--out`) and moves them into
`--out` only when every car is rendered. A run that fails or is interrupted while rendering therefore leaves the
earlier data set as it was. `--overwrite` replaces only what an earlier render wrote: the images its `metadata.jsonl`
lists, their masks and its index files. A folder that also holds other images (real photos, composites, reframes) is
refused.

Moving the files in (`swap_in`) takes a moment and cannot be atomic, since `train/` may hold other files. A run
interrupted then leaves a folder that a later `--overwrite` run still accepts and replaces: before anything is deleted
or moved, `metadata.jsonl` lists the earlier render's images and the new ones, and the new index files replace it
only once every image is in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from carseg_hf.atomic_files import write_atomic

#: Where a run renders before its images are moved into place; one left by an interrupted run is deleted.
STAGING = ".render-in-progress"
#: The index files a render writes (`dataset.write_index_files`), in the order `swap_in` moves them: the renderer's
#: `metadata.jsonl` last, since it tells which images of `train/` are the render's.
INDEX_FILES = ("train_masks.csv", "splits.json", "metadata.jsonl")
#: Suffixes of the images a Carvana-layout loader reads from `train/`.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Keys that every record of the renderer's `metadata.jsonl` has; other tools' `metadata.jsonl` files lack them.
RECORD_KEYS = ("img", "mesh")


def _train_images(out: Path) -> list[Path]:
    """The image files in `out/train`, sorted."""
    folder = out / "train"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def rendered_images(metadata: Path) -> set[str]:
    """The image names that a render's `metadata.jsonl` lists (empty when there is no such file).

    Raises:
        ValueError: If a line is not a JSON record of the renderer, naming the file and line.
    """
    if not metadata.is_file():
        return set()
    names = set()
    with open(metadata, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{metadata}, line {number}: not a JSON record ({error})") from None
            if not isinstance(record, dict) or not all(key in record for key in RECORD_KEYS):
                raise ValueError(
                    f"{metadata}, line {number}: not a record of the renderer (expected an object with keys "
                    f"{', '.join(RECORD_KEYS)}), so the folder holds no earlier render to overwrite"
                )
            names.add(str(record["img"]))
    return names


def earlier_render_files(out: Path) -> list[Path]:
    """The files of the earlier render in `out`: its images, their masks and its index files.

    Args:
        out: The renderer's `--out`.

    Returns:
        The files to delete before the new render moves in; empty when `out` holds no data set.

    Raises:
        ValueError: If `out` holds a data set that is not only an earlier render's: images in `train/` that no
            render's `metadata.jsonl` lists (real photos, composites, reframes), or a `train_masks.csv` without the
            renderer's `metadata.jsonl`.
    """
    images = _train_images(out)
    metadata = out / "metadata.jsonl"
    if not images and not metadata.is_file() and not (out / "train_masks.csv").is_file():
        return []
    listed = rendered_images(metadata)
    if foreign := [p.name for p in images if p.name not in listed]:
        raise ValueError(
            f"{out / 'train'} holds {len(foreign)} image(s) that no earlier render lists in {metadata}, e.g. "
            f"{', '.join(foreign[:3])} (real photos, composites or reframes); the renderer replaces only a data set "
            "it rendered itself: render into another --out, or delete them"
        )
    if not metadata.is_file():
        raise ValueError(
            f"{out / 'train_masks.csv'} has no metadata.jsonl beside it, so it is not the index of an earlier "
            "render; render into another --out, or delete it"
        )
    masks = [out / "train_masks" / f"{p.stem}_mask.gif" for p in images]
    return images + [m for m in masks if m.is_file()] + [out / n for n in INDEX_FILES if (out / n).is_file()]


def start_staging(out: Path) -> Path:
    """Make an empty staging folder `out/STAGING` with `train/` and `train_masks/`, and return it."""
    staging = out / STAGING
    if staging.is_dir() and not staging.is_symlink():  # left by an interrupted run; nothing else writes there
        shutil.rmtree(staging)
    staging.unlink(missing_ok=True)
    for sub in ("train", "train_masks"):
        (staging / sub).mkdir(parents=True)
    return staging


def swap_in(staging: Path, out: Path, earlier: list[Path]) -> None:
    """Replace the earlier render in `out` with the finished one in `staging`, then drop `staging`.

    First `out/metadata.jsonl` is rewritten to list the earlier render's images and the new ones. Then the earlier
    render's images and masks are deleted, the new images and masks moved in, and the new index files moved in,
    `metadata.jsonl` last (`INDEX_FILES`). At every step `out/metadata.jsonl` lists every rendered image that
    `train/` holds, so that a swap interrupted at any point leaves a folder that `earlier_render_files` accepts.

    Args:
        staging: From `start_staging`, holding the complete new render and its index files
            (`dataset.write_index_files`).
        out: The renderer's `--out`.
        earlier: From `earlier_render_files`; its index files are replaced by the new ones, not deleted.
    """
    metadata = out / "metadata.jsonl"
    listing = metadata.read_text(encoding="utf-8", errors="replace") if metadata.is_file() else ""
    listing += ("\n" if listing and not listing.endswith("\n") else "") + (staging / metadata.name).read_text("utf-8")
    write_atomic(metadata, lambda tmp: tmp.write_text(listing, encoding="utf-8"))
    replaced = {out / name for name in INDEX_FILES}
    for path in earlier:
        if path not in replaced:
            path.unlink(missing_ok=True)
    for sub in ("train", "train_masks"):
        (out / sub).mkdir(exist_ok=True)
        for path in sorted((staging / sub).iterdir()):
            os.replace(path, out / sub / path.name)
    for name in INDEX_FILES:
        os.replace(staging / name, out / name)
    shutil.rmtree(staging)
