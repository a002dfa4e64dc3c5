"""Distractor objects for copy-paste composites: Tux Paint's stamps, pasted into the scene as background.

A network trained on cars pasted onto photographs learns quickly that a bright, saturated, compact object in the
middle of a scene is the car. Pasting other objects next to it (animals, people, food, household objects, plants,
bins, signs, traffic cones, post boxes), always labelled background, teaches it that they are not.

The objects are the stamps of Debian's `tuxpaint-stamps-default` (photographs and drawings with an alpha channel;
GPL-2, `debian/copyright`, `Files: *`). Only the folders of `FOLDERS` are used: vehicles and military equipment are
left out, since some of them are cars or look like them. `python -m training.synthetic.distractors` downloads the
package with `apt-get download` and unpacks it with `dpkg -x` into the backgrounds cache
(`$CARSEG_BACKGROUNDS_DIR`, default `~/.cache/carseg/backgrounds`; about 160 MB).

Usage::

    stamps = load_stamps()  # every usable stamp, (h, w, 4) uint8 RGBA each
    frame = paste_distractors(background.astype(np.float32), stamps[:3], rng)  # before the car is pasted
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .backgrounds import backgrounds_dir
from .debian import fetch_cache_main, fetch_deb

PACKAGE = "tuxpaint-stamps-default"
STAMPS_DIR = "usr/share/tuxpaint/stamps"
#: Stamp folders used as distractors; "vehicles", "military", "space", "symbols" and "naturalforces" are left out.
FOLDERS = ("animals", "clothes", "food", "hobbies", "household", "people", "plants", "seasonal", "sports", "town")
LICENCE = "GPL-2 (debian/copyright of tuxpaint-stamps-default, Files: *)"
FETCH_HINT = (
    f"get them with `python -m training.synthetic.distractors` (runs `apt-get download {PACKAGE}` and `dpkg -x`; "
    "about 160 MB, Debian/Ubuntu only), or point CARSEG_BACKGROUNDS_DIR at a folder holding an unpacked "
    f"{PACKAGE}/ folder"
)


class StampsNotFoundError(FileNotFoundError):
    """Raised when the stamps are not unpacked where expected; the message says how to get them."""


def fetch_stamps(root: str | os.PathLike | None = None) -> bool:
    """Download and unpack the stamps package into `<root>/tuxpaint-stamps-default` unless it is there.

    The package counts as there when each folder of `FOLDERS` holds a stamp (a fetch moves the package into place
    only once it is complete).

    Returns:
        Whether the package was fetched (False when it was already there).

    Raises:
        RuntimeError: If apt-get or dpkg is missing or fails.
        StampsNotFoundError: If the package's folder is there but lacks stamps of some `FOLDERS` (a partial unpack
            of an earlier fetch), naming the folder to delete.
    """
    target = (Path(root) if root is not None else backgrounds_dir()) / PACKAGE
    if (target / "usr").exists():
        if empty := [f for f in FOLDERS if not any((target / STAMPS_DIR / f).rglob("*.png"))]:
            raise StampsNotFoundError(
                f"{target / STAMPS_DIR} has no stamps in {', '.join(empty)}: a partial unpack, perhaps of an "
                f"interrupted fetch; delete {target} and run `python -m training.synthetic.distractors` again"
            )
        return False
    fetch_deb(PACKAGE, target, hint="or set CARSEG_BACKGROUNDS_DIR")
    return True


def stamp_paths(root: str | os.PathLike | None = None) -> list[Path]:
    """The sorted PNG stamps of `FOLDERS` in the cache.

    Raises:
        StampsNotFoundError: If the package is not unpacked there or holds no stamp, with instructions.
    """
    stamps = (Path(root) if root is not None else backgrounds_dir()) / PACKAGE / STAMPS_DIR
    paths = sorted(p for folder in FOLDERS for p in (stamps / folder).rglob("*.png"))
    if not paths:
        raise StampsNotFoundError(f"no PNG stamps under {str(stamps)!r}; {FETCH_HINT}")
    return paths


def load_stamp(path: str | os.PathLike, max_side: int = 512) -> np.ndarray:
    """One stamp as `(height, width, 4)` uint8 RGBA, shrunk to at most `max_side` pixels per side.

    Raises:
        ValueError: If the file has no transparent pixel (it would paste as a rectangle), naming it.
    """
    image = Image.open(path).convert("RGBA")
    image.thumbnail((max_side, max_side), Image.LANCZOS)
    rgba = np.asarray(image, dtype=np.uint8)
    if rgba[..., 3].min() == 255:
        raise ValueError(f"{path}: the stamp has no transparent pixel; expected an object on a transparent ground")
    return rgba


def load_stamps(root: str | os.PathLike | None = None, max_side: int = 384) -> list[np.ndarray]:
    """Every usable stamp of the cache, loaded (`load_stamp`); stamps without transparency are skipped.

    Raises:
        StampsNotFoundError: If the package is not unpacked there, or none of its stamps is usable.
    """
    stamps = []
    for path in stamp_paths(root):
        try:
            stamps.append(load_stamp(path, max_side))
        except ValueError:
            continue  # an opaque rectangle would teach nothing about object outlines
    if not stamps:
        raise StampsNotFoundError(f"none of the stamps under {root or backgrounds_dir()} has a transparent ground")
    return stamps


def paste_distractors(frame: np.ndarray, stamps: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Alpha-blend each stamp into the frame at a random size, side and place.

    Args:
        frame: The scene, `(height, width, 3)` float32 in [0, 255]; not modified.
        stamps: RGBA objects, `(h, w, 4)` uint8 each (`load_stamp`).
        rng: Source of every random choice.

    Returns:
        The new frame, `(height, width, 3)` float32. Objects may be cut by the frame's edges.
    """
    out = frame.copy()
    height, width = frame.shape[:2]
    for stamp in stamps:
        size = float(rng.uniform(0.08, 0.45)) * height  # the object's height in the frame
        scale = size / stamp.shape[0]
        stamp_height, stamp_width = max(int(stamp.shape[0] * scale), 2), max(int(stamp.shape[1] * scale), 2)
        image = Image.fromarray(stamp).resize((stamp_width, stamp_height), Image.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        rgba = np.asarray(image, dtype=np.float32)  # (stamp_height, stamp_width, 4)
        left = int(rng.uniform(-0.3, 1.0) * width - 0.2 * stamp_width)
        top = int(rng.uniform(0.3, 1.05) * height) - stamp_height  # standing on the ground, or above it
        y0, y1 = max(top, 0), min(top + stamp_height, height)
        x0, x1 = max(left, 0), min(left + stamp_width, width)
        if y0 >= y1 or x0 >= x1:
            continue
        patch = rgba[y0 - top : y1 - top, x0 - left : x1 - left]
        alpha = patch[..., 3:] / 255.0  # (h, w, 1)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1.0 - alpha) + patch[..., :3] * alpha
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m training.synthetic.distractors`: fetch the stamps and count them.

    Returns:
        0 on success; 2 for a `--root` (or `--dir`) that is a file or a partly unpacked package (the message says
        what to delete); 1 if apt-get or dpkg is missing or fails (`debian.fetch_cache_main`).
    """

    def fetch(root: Path) -> list[str]:
        fetched = fetch_stamps(root)
        return [
            f"{'fetched' if fetched else 'found'} {PACKAGE}: {len(stamp_paths(root))} stamps in {', '.join(FOLDERS)}"
        ]

    return fetch_cache_main(
        argv,
        prog="python -m training.synthetic.distractors",
        description=__doc__.split("\n")[0],
        options=("--root", "--dir"),
        default=backgrounds_dir(),
        variable="CARSEG_BACKGROUNDS_DIR",
        fetch=fetch,
        not_found_error=StampsNotFoundError,
    )


if __name__ == "__main__":
    raise SystemExit(main())
